"""Benchmark: 100,000 want-get questions (repository, key) on a 16-node pool.

Builds a bare repository whose ``refs/heads/git-annex`` (one ``git fast-import`` commit)
holds 16 repositories in group ``pool`` with maxsizes, a mix of preferred content
expressions (``sizebalanced=pool:2``, ``balanced=pool``, ``fullysizebalanced=...``, a
plain expression), and location logs for every key (a third of the keys already on one
or two nodes). Then opens it with `annexproxy.server.wants.Wants` and asks
``want_get(node, key, file)`` for every (node, key): 16 x 6,250 = 100,000 questions,
each key's location log read once from the branch, repository sizes computed once from
every location log. Prints the time of each phase.

Usage: ``python bench/wants.py [--keys N] [--nodes M]``. Not a test.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import tempfile
import time
from pathlib import Path

from annexproxy.branch.journal import vector_clock
from annexproxy.branch.logs import descriptions, groups, maxsize, wanted
from annexproxy.keys import Key
from annexproxy.server.wants import Wants
from annexproxy.uuids import RepoUUID

HERE = "aa6440a6-0cfc-4c73-8f0a-5927cb981038"
EXPRESSIONS = [
    "sizebalanced=pool:2",
    "balanced=pool",
    "fullysizebalanced=pool:lackingcopies",
    "(include=*.bin and copies=pool:1) or largerthan=5MB",
]


def node_uuid(i: int) -> str:
    """The i-th node's UUID."""
    return f"{hashlib.md5(str(i).encode()).hexdigest()[:8]}-1111-4222-8333-{i:012x}"


def key_of(i: int) -> Key:
    """The i-th key (sizes from 1 kB to about 10 MB)."""
    digest = hashlib.sha256(str(i).encode()).hexdigest()
    return Key.parse(f"SHA256E-s{1000 + (i * 7919) % 10_000_000}--{digest}.bin")


def config_logs(nodes: list[str]) -> dict[str, bytes]:
    """uuid.log, group.log, preferred-content.log and maxsize.log for the pool."""
    now = vector_clock()
    uuid_log = descriptions.set_description(b"", HERE, "gateway", now)
    group_log, pref_log, max_log = b"", b"", b""
    for i, uuid in enumerate(nodes):
        uuid_log = descriptions.set_description(uuid_log, uuid, f"node{i}", now)
        group_log = groups.set_groups(group_log, uuid, ["pool"], now)
        pref_log = wanted.set_expression(pref_log, uuid, EXPRESSIONS[i % len(EXPRESSIONS)], now)
        max_log = maxsize.set_maxsize(max_log, uuid, (20 + i) * 10**9, now)
    return {
        descriptions.PATH: uuid_log,
        groups.PATH: group_log,
        wanted.PREFERRED_PATH: pref_log,
        maxsize.PATH: max_log,
    }


def build(repo: Path, nodes: list[str], keys: int) -> None:
    """A bare repository with the configuration and one location log per key."""
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "config", "annex.uuid", HERE], check=True)
    (repo / "annex").mkdir()
    proc = subprocess.Popen(
        ["git", "-C", str(repo), "fast-import", "--quiet"], stdin=subprocess.PIPE
    )
    assert proc.stdin is not None
    out = proc.stdin
    files = list(config_logs(nodes).items())
    for mark, (_path, blob) in enumerate(files, 1):
        out.write(b"blob\nmark :%d\ndata %d\n%s\n" % (mark, len(blob), blob))
    out.write(b"commit refs/heads/git-annex\n")
    out.write(b"committer bench <bench@localhost> 1795623909 +0000\ndata 6\nupdate\n")
    for mark, (path, _blob) in enumerate(files, 1):
        out.write(b"M 100644 :%d %s\n" % (mark, path.encode()))
    for i in range(keys):
        key = key_of(i)
        holders = [nodes[i % len(nodes)], nodes[(i * 5 + 1) % len(nodes)]][: 1 + i % 2]
        lines = b"" if i % 3 else b"".join(b"1795623909s 1 %s\n" % u.encode() for u in holders)
        if not lines:
            continue
        path = key.hashdir_lower() + key.keyfile() + ".log"
        out.write(b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(lines), lines))
    out.write(b"\n")
    out.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")


def main() -> None:
    """Build, then time the phases."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=6250)
    parser.add_argument("--nodes", type=int, default=16)
    args = parser.parse_args()
    nodes = [node_uuid(i) for i in range(args.nodes)]
    keys = [key_of(i) for i in range(args.keys)]
    with tempfile.TemporaryDirectory(prefix="annexproxy-bench-wants-") as tmp:
        repo = Path(tmp) / "repo.git"
        build(repo, nodes, args.keys)
        start = time.perf_counter()
        with Wants.open(repo) as wants:
            opened = time.perf_counter()
            wants.sizes.size_of(RepoUUID(nodes[0]))
            sized = time.perf_counter()
            wanted_count = 0
            for i, key in enumerate(keys):
                file = f"dir{i % 10}/file{i}.bin"
                for node in nodes:
                    wanted_count += wants.want_get(RepoUUID(node), key, file)
            done = time.perf_counter()
    questions = len(keys) * len(nodes)
    print(f"{questions} questions, {len(nodes)} nodes, {len(keys)} keys: {wanted_count} wanted")
    print(f"open (config, compile):      {opened - start:8.3f} s")
    print(f"sizes from location logs:    {sized - opened:8.3f} s")
    print(
        f"questions:                   {done - sized:8.3f} s ({questions / (done - sized):,.0f}/s)"
    )
    print(f"total:                       {done - start:8.3f} s")


if __name__ == "__main__":
    main()
