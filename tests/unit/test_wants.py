"""`Wants` and the `wants`/`matchexpression` CLI on a repository whose logs we write.

The repository is made with ``git init`` plus ``annex.uuid`` and an annex directory (no
git-annex needed); its configuration and location logs are written to the journal with
our own log writers. What git-annex answers is checked by the interop tier.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from annexproxy.branch.git_plumbing import GitPlumbing
from annexproxy.branch.journal import Journal, vector_clock
from annexproxy.branch.logs import descriptions, groups, maxsize, wanted
from annexproxy.branch.logs.timestamps import Timestamp
from annexproxy.cli.main import main
from annexproxy.errors import ConfigError, ExpressionSyntaxError
from annexproxy.keys import Key
from annexproxy.server.matchexpression import match_expression
from annexproxy.server.wants import Wants, key_of_log_path
from annexproxy.uuids import RepoUUID

HERE = "11111111-1111-4111-8111-111111111111"
ALPHA = RepoUUID("22222222-2222-4222-8222-222222222222")
BRAVO = RepoUUID("33333333-3333-4333-8333-333333333333")
BIG = Key.parse("SHA256E-s2000000--" + "a" * 64 + ".mp3")
SMALL = Key.parse("SHA256E-s10--" + "b" * 64 + ".txt")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def _describe(uuid: str, text: str, now: Timestamp) -> Callable[[bytes], bytes]:
    return lambda content: descriptions.set_description(content, uuid, text, now)


def _group(uuid: str, now: Timestamp) -> Callable[[bytes], bytes]:
    return lambda content: groups.set_groups(content, uuid, ["pool"], now)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    _git(path, "init", "-q")
    _git(path, "config", "annex.uuid", HERE)
    _git(path, "config", "remote.alpha.annex-uuid", ALPHA)
    _git(path, "config", "remote.alpha.url", "/nowhere")
    (path / ".git" / "annex").mkdir()
    with GitPlumbing(path) as plumbing:
        journal = Journal(plumbing.annexdir, plumbing)
        now = vector_clock()
        for uuid, text in ((HERE, "main"), (ALPHA, "alpha"), (BRAVO, "bravo disk")):
            journal.modify(descriptions.PATH, _describe(uuid, text, now))
        for uuid in (ALPHA, BRAVO):
            journal.modify(groups.PATH, _group(uuid, now))
        journal.modify(
            wanted.PREFERRED_PATH,
            lambda c: wanted.set_expression(c, ALPHA, "largerthan=1MB", now),
        )
        journal.modify(
            wanted.PREFERRED_PATH,
            lambda c: wanted.set_expression(c, BRAVO, "balanced=pool", now),
        )
        journal.modify(maxsize.PATH, lambda c: maxsize.set_maxsize(c, BRAVO, 10**9, now))
        journal.record_presence(BIG, BRAVO, True)
    return path


@pytest.fixture
def wants(repo: Path) -> Iterator[Wants]:
    with Wants.open(repo) as opened:
        yield opened


def test_names_resolve_like_git_annex(wants: Wants) -> None:
    assert wants.resolve("here") == HERE
    assert wants.resolve("alpha") == ALPHA  # remote name
    assert wants.resolve("bravo disk") == BRAVO  # description
    assert wants.resolve(BRAVO) == BRAVO
    with pytest.raises(ConfigError, match="no repository named 'nope'"):
        wants.resolve("nope")


def test_want_get_and_drop_read_the_journal(wants: Wants) -> None:
    assert wants.want_get(ALPHA, BIG, "x.mp3")
    assert not wants.want_get(ALPHA, SMALL, "x.txt")
    assert wants.want_drop(ALPHA, SMALL, "x.txt")
    assert not wants.want_get(wants.here, BIG)  # no expression: not wanted
    assert wants.locations(BIG) == {BRAVO}
    assert wants.want_get(BRAVO, BIG)  # balanced: present counts
    assert wants.sizes.size_of(BRAVO) == 2_000_000
    assert wants.sizes.size_of(ALPHA) == 0


def test_note_location_updates_cache_and_sizes(wants: Wants) -> None:
    assert wants.sizes.size_of(ALPHA) == 0
    assert wants.locations(BIG) == {BRAVO}  # now cached
    wants.journal.record_presence(BIG, ALPHA, True)
    assert wants.locations(BIG) == {BRAVO}  # the cache does not see writes by itself
    wants.note_location(BIG, ALPHA, present=True)
    assert wants.locations(BIG) == {ALPHA, BRAVO}
    assert wants.sizes.size_of(ALPHA) == 2_000_000
    wants.note_location(BIG, ALPHA, present=False)
    assert wants.sizes.size_of(ALPHA) == 0


def test_refresh_sees_new_expressions_and_locations(wants: Wants) -> None:
    assert not wants.want_get(ALPHA, SMALL, "x.txt")
    assert wants.sizes.size_of(ALPHA) == 0
    now = vector_clock()
    wants.journal.modify(
        wanted.PREFERRED_PATH, lambda c: wanted.set_expression(c, ALPHA, "include=*.txt", now)
    )
    wants.journal.record_presence(SMALL, ALPHA, True)
    assert wants.refresh()
    assert wants.want_get(ALPHA, SMALL, "x.txt")
    assert wants.locations(SMALL) == {ALPHA}
    assert wants.sizes.size_of(ALPHA) == 10
    assert not wants.refresh()  # nothing changed in the configuration


def test_key_of_log_path() -> None:
    assert key_of_log_path("aaa/bbb/" + str(SMALL) + ".log") == SMALL
    assert key_of_log_path("aaa/bbb/not-a-key.log") is None


@pytest.mark.parametrize(
    ("expression", "data", "matched"),
    [
        ("include=*.mp3", {"file": "a.mp3"}, True),
        ("include=*.mp3", {"file": "a.txt"}, False),
        ("include=*.mp3 and", {"file": "a.mp3"}, True),
        ("", {"file": "a.mp3"}, True),
        ("largerthan=1mb", {"size": 1_000_001}, True),
        ("largerthan=1mb", {"key": BIG, "size": 10}, True),  # the key's size wins
        ("include=* or present", {"file": "a"}, True),  # present never evaluated
        ("copies=1", {"key": BIG}, True),
        ("copies=2", {"key": BIG}, False),
    ],
)
def test_match_expression(
    wants: Wants, expression: str, data: dict[str, object], matched: bool
) -> None:
    assert match_expression(wants, expression, **data) is matched  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("expression", "data", "message"),
    [
        ("largerthan=1mb", {}, "without size data"),
        ("largerthan=1mb", {"file": "a"}, "without size data"),
        ("present", {"size": 10}, "without key data"),
        ("include=*.mp3", {"key": BIG}, "without file data"),
        ("smallerthan=1mb", {"key": Key.parse("WORM--foo")}, "without size data"),
    ],
)
def test_match_expression_missing_data(
    wants: Wants, expression: str, data: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        match_expression(wants, expression, **data)  # type: ignore[arg-type]


def test_match_expression_syntax_error(wants: Wants) -> None:
    with pytest.raises(ExpressionSyntaxError):
        match_expression(wants, "include=*.mp3 frob", file="a.mp3")


def _cli(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    monkeypatch.chdir(repo)
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    code = exited.value.code
    assert isinstance(code, int)
    return code, out, err


def test_cli_wants(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(repo, monkeypatch, capsys, "wants", "--repo", "alpha", "--key", str(BIG)) == (
        0,
        "true\n",
        "",
    )
    code, out, _ = _cli(
        repo, monkeypatch, capsys, "wants", "--drop", "--repo", "alpha", "--key", str(BIG)
    )
    assert (code, out) == (0, "false\n")


def test_cli_wants_batch(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = f"alpha\t{BIG}\tx.mp3\n{ALPHA}\t{SMALL}\t\nbravo disk\t{SMALL}\n"
    monkeypatch.setattr("sys.stdin", _Lines(lines))
    code, out, _ = _cli(repo, monkeypatch, capsys, "wants", "--batch")
    assert (code, out.split()) == (0, ["true", "false", "false"])


def test_cli_unknown_repository(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(repo, monkeypatch, capsys, "wants", "--repo", "nope", "--key", str(BIG))
    assert code == 1
    assert out == ""
    assert err == (
        "annexproxy: there is no repository named 'nope' "
        "(give a remote name, a UUID or a description)\n"
    )


def test_cli_bad_key(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _cli(repo, monkeypatch, capsys, "wants", "--repo", "alpha", "--key", "junk")
    assert code == 1
    assert err.startswith("annexproxy: not a git-annex key")


def test_cli_matchexpression_caret(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(
        repo, monkeypatch, capsys, "matchexpression", "include=*.mp3 frob", "--file", "a"
    )
    assert (code, out) == (42, "")
    assert err.splitlines() == [
        'annexproxy: bad expression: Parse failure: near "frob"',
        "    include=*.mp3 frob",
        "                  ^^^^",
    ]


def test_cli_matchexpression_exit_codes(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        _cli(repo, monkeypatch, capsys, "matchexpression", "include=*.mp3", "--file", "a.mp3")[0]
        == 0
    )
    assert (
        _cli(repo, monkeypatch, capsys, "matchexpression", "include=*.mp3", "--file", "a")[0] == 1
    )
    code, _, err = _cli(repo, monkeypatch, capsys, "matchexpression", "largerthan=1mb")
    assert (code, err) == (42, "annexproxy: cannot match this expression without size data\n")
    code, _, err = _cli(repo, monkeypatch, capsys, "matchexpression", "anything", "--size", "x")
    assert code == 1
    assert "not a size" in err


class _Lines:
    """A stdin stand-in with ``readline``."""

    def __init__(self, text: str) -> None:
        self._lines = text.splitlines(keepends=True)

    def readline(self) -> str:
        return self._lines.pop(0) if self._lines else ""
