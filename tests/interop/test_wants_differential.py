"""`annexproxy wants --batch` against `git annex find --want-get-by` / `--want-drop-by`.

Hypothesis draws a few repository networks (3-8 directory special remotes with random
UUIDs, groups, trust, maxsizes, numcopies, a groupwanted expression, an
``annex.numcopies`` gitattribute, keys attached to files with ``fromkey`` and locations
recorded with ``setpresentkey``, *here* included without content) and, per network,
several rounds of random expressions (one per repository, balanced-family terms
included; one round with ``--rebalance``). Each round asks both programs about every
(repository, file) and requires zero disagreements. Everything stays in the journal
(``annex.alwayscommit=false``), so the journal overlay is exercised too.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annexproxy.testing.realannex import annex_env, shell_program

pytestmark = pytest.mark.interop

HERE_UUID = "5e7e0000-1111-4222-8333-444455556666"
GROUPS = ["pool", "g1", "g2", "backup", "archive", "client", "transfer", "unwanted"]
SIZES = [0, 1, 999, 1000, 65536, 10**6, 5 * 10**6, 10**8, 10**9, 4 * 10**9]
MAXSIZES = ["0", "2MB", "200MB", "2GB", "9GB", "30GB"]
DIRS = ["", "d1/", "public/", "d1/sub/", "media/"]
EXTS = [".txt", ".mp3", ".iso", ""]
TRUSTS = ["semitrust", "semitrust", "semitrust", "untrust", "trust", "dead"]
TERMS = [
    "anything",
    "nothing",
    "present",
    "standard",
    "groupwanted",
    "inpreferreddir",
    "securehash",
    "inbackend=WORM",
    "include=*.txt",
    "exclude=d1/*",
    "include=*/*.mp3",
    "largerthan=1MB",
    "smallerthan=100kB",
    "copies=1",
    "copies=2",
    "copies=pool:1",
    "copies=trusted:1",
    "copies=semitrusted+:2",
    "lackingcopies=1",
    "approxlackingcopies=1",
    "inallgroup=g1",
    "onlyingroup=pool",
    "metadata=tag=x",
    "balanced=pool",
    "balanced=pool:2",
    "fullybalanced=pool",
    "sizebalanced=pool",
    "sizebalanced=pool:2",
    "fullysizebalanced=pool:lackingcopies",
    "balanced=g1",
]
BALANCED = [t for t in TERMS if "balanced=" in t]


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda a, b: f"{a} and {b}", children, children),
        st.builds(lambda a, b: f"{a} or {b}", children, children),
        st.builds(lambda a: f"not {a}", children),
        st.builds(lambda a: f"({a})", children),
    )


EXPRESSIONS = st.recursive(st.sampled_from(TERMS), _combine, max_leaves=4)
BALANCED_EXPRESSIONS = st.one_of(
    st.sampled_from(BALANCED),
    st.builds(lambda a, b: f"{a} and {b}", st.sampled_from(BALANCED), EXPRESSIONS),
    st.builds(lambda a, b: f"{a} or {b}", EXPRESSIONS, st.sampled_from(BALANCED)),
)


@dataclass(frozen=True)
class Remote:
    name: str
    uuid: str
    groups: tuple[str, ...]
    trust: str
    maxsize: str | None


@dataclass(frozen=True)
class Network:
    remotes: tuple[Remote, ...]
    numcopies: int
    groupwanted: str
    files: tuple[tuple[str, str], ...]  # (file, key)
    locations: tuple[tuple[str, tuple[str, ...]], ...]  # (key, uuids)


@st.composite
def networks(draw: st.DrawFn) -> Network:
    count = draw(st.integers(3, 8))
    uuids = draw(st.lists(st.uuids(version=4), min_size=count, max_size=count, unique=True))
    remotes = tuple(
        Remote(
            name=f"r{i}",
            uuid=str(uuid),
            groups=tuple(draw(st.lists(st.sampled_from(GROUPS), max_size=2, unique=True))),
            trust=draw(st.sampled_from(TRUSTS)),
            maxsize=draw(st.one_of(st.none(), st.sampled_from(MAXSIZES))),
        )
        for i, uuid in enumerate(uuids)
    )
    files = []
    for i in range(30):
        size = draw(st.sampled_from(SIZES))
        ext = draw(st.sampled_from(EXTS))
        path = f"{draw(st.sampled_from(DIRS))}f{i}{ext}"
        kind = draw(st.sampled_from(["SHA256E", "SHA256E", "WORM", "URL"]))
        if kind == "SHA256E":
            key = f"SHA256E-s{size}--{i:064x}{ext}"
        elif kind == "WORM":
            key = f"WORM-s{size}-m1700000000--f{i}{ext}"
        else:
            key = f"URL--http&c%%example.org%f{i}{ext}"
        files.append((path, key))
    holders = [r.uuid for r in remotes] + [HERE_UUID]
    locations = tuple(
        (key, tuple(draw(st.lists(st.sampled_from(holders), max_size=4, unique=True))))
        for _, key in files
    )
    return Network(
        remotes=remotes,
        numcopies=draw(st.integers(1, 3)),
        groupwanted=draw(EXPRESSIONS),
        files=tuple(files),
        locations=locations,
    )


def _run(
    args: list[str], cwd: Path, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        args,
        cwd=cwd,
        env=annex_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc


GA = ["git", "-c", "annex.alwayscommit=false", "annex"]


def _parallel(repo: Path, commands: list[list[str]]) -> list[subprocess.CompletedProcess[str]]:
    with ThreadPoolExecutor(max_workers=3) as pool:
        return list(pool.map(lambda c: _run(c, repo), commands))


def build(top: Path, net: Network) -> Path:
    repo = top / "main"
    repo.mkdir()
    _run(["git", "init", "-q"], repo)
    _run(["git", "config", "annex.uuid", HERE_UUID], repo)
    _run(["git", "annex", "init", "-q", "main"], repo)
    for remote in net.remotes:
        directory = top / f"sr-{remote.name}"
        directory.mkdir()
        _run(
            [
                *GA,
                "initremote",
                remote.name,
                "type=directory",
                f"directory={directory}",
                "encryption=none",
                f"uuid={remote.uuid}",
            ],
            repo,
        )
    trust = [
        [*GA, remote.trust, *(["--force"] if remote.trust == "trust" else []), remote.name]
        for remote in net.remotes
        if remote.trust != "semitrust"
    ]
    _parallel(repo, trust)  # before groups: dead leaves its groups
    settings_ = [[*GA, "numcopies", str(net.numcopies)]]
    settings_.append([*GA, "groupwanted", "g1", net.groupwanted])
    for remote in net.remotes:
        settings_ += [[*GA, "group", remote.name, group] for group in remote.groups]
        if remote.maxsize is not None:
            settings_.append([*GA, "maxsize", remote.name, remote.maxsize])
    _parallel(repo, settings_)
    (repo / ".gitattributes").write_text("media/* annex.numcopies=3\nd1/sub/* annex.numcopies=1\n")
    lines = "".join(f"{key} {path}\n" for path, key in net.files)
    _run([*GA, "fromkey", "--batch", "--force"], repo, stdin=lines)
    _run(["git", "add", "-A"], repo)
    _run(["git", "commit", "-q", "-m", "files"], repo)
    present = "".join(f"{key} {u} 1\n" for key, uuids in net.locations for u in uuids)
    if present:
        _run([*GA, "setpresentkey", "--batch"], repo, stdin=present)
    return repo


def _find(repo: Path, option: str, who: str, rebalance: bool) -> tuple[str, str, set[str]]:
    extra = ["--rebalance"] if rebalance else []
    proc = _run([*GA, "find", *extra, "--json", f"{option}={who}"], repo)
    return option, who, {json.loads(line)["file"] for line in proc.stdout.splitlines() if line}


def compare_round(repo: Path, net: Network, expressions: dict[str, str], rebalance: bool) -> int:
    _parallel(repo, [[*GA, "wanted", who, expr] for who, expr in expressions.items()])
    jobs = [(o, w) for w in expressions for o in ("--want-get-by", "--want-drop-by")]
    with ThreadPoolExecutor(max_workers=3) as pool:
        found = list(pool.map(lambda job: _find(repo, job[0], job[1], rebalance), jobs))
    expected = {(option, who): files for option, who, files in found}
    questions = [(who, path, key) for who in expressions for path, key in net.files]
    batch = "".join(f"{who}\t{key}\t{path}\n" for who, path, key in questions)
    flags = ["--rebalance"] if rebalance else []
    compared = 0
    for option, drop in (("--want-get-by", []), ("--want-drop-by", ["--drop"])):
        proc = _run([shell_program("annexproxy"), "wants", "--batch", *drop, *flags], repo, batch)
        answers = proc.stdout.splitlines()
        assert len(answers) == len(questions)
        disagreements = [
            (who, expressions[who], path, key, answer)
            for (who, path, key), answer in zip(questions, answers, strict=True)
            if (answer == "true") != (path in expected[(option, who)])
        ]
        assert disagreements == [], (option, rebalance)
        compared += len(questions)
    return compared


def test_wants_agrees_with_git_annex_find() -> None:
    total = [0]

    @settings(max_examples=3)
    @given(data=st.data(), net=networks())
    def check(data: st.DataObject, net: Network) -> None:
        with tempfile.TemporaryDirectory(prefix="annexproxy-wants-") as tmp:
            repo = build(Path(tmp), net)
            names = [r.name for r in net.remotes]
            for round_ in range(3):
                strategy = EXPRESSIONS if round_ == 0 else BALANCED_EXPRESSIONS
                expressions = {n: data.draw(strategy) for n in names}
                if round_ == 0:
                    expressions["here"] = data.draw(EXPRESSIONS)
                total[0] += compare_round(repo, net, expressions, rebalance=round_ == 2)

    check()
    print(f"wants differential: {total[0]} (repo, file) answers compared, 0 disagreements")
    assert total[0] >= 1000
