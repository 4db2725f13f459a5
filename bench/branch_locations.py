"""Benchmark: read the locations of 10,000 keys from a git-annex branch of 1,000,000 keys.

Builds (once, cached in the given directory) a bare repository whose
``refs/heads/git-annex`` holds one location log per key, written with
``git fast-import``, then opens it with `BranchView` and reads the present UUIDs of
10,000 random keys (cluster membership derived), reporting wall time and peak memory
(the process's maximum resident set size, which includes libgit2's allocations).

Usage: ``python bench/branch_locations.py [DIR] [--keys N] [--sample M] [--rounds R]``.
Not a test: run it by hand and read the numbers.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import resource
import statistics
import subprocess
import time
from pathlib import Path

from annexproxy.branch.git_plumbing import GitPlumbing
from annexproxy.branch.journal import Journal
from annexproxy.branch.view import BranchView
from annexproxy.keys import Key

NODES = [f"{i:08x}-0cfc-4c73-8f0a-5927cb981038" for i in (1, 2, 3)]
CLUSTER = "ac26f79d-a0df-892f-a81a-20d2273c7f59"
GATEWAY = "aa6440a6-0cfc-4c73-8f0a-5927cb981038"


def key_of(i: int) -> Key:
    """The i-th key of the benchmark branch."""
    digest = hashlib.sha256(str(i).encode()).hexdigest()
    return Key.parse(f"SHA256E-s{1000 + i}--{digest}.bin")


def build(repo: Path, count: int) -> None:
    """Create the repository with ``count`` location logs in one fast-import commit."""
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "config", "annex.uuid", GATEWAY], check=True)
    (repo / "annex").mkdir()
    blobs = [
        b"1795623909s 1 %s\n" % NODES[0].encode(),
        b"1795623909s 1 %s\n1795623909s 1 %s\n" % (NODES[0].encode(), NODES[1].encode()),
        b"1795623909s 0 %s\n1795623910s 1 %s\n" % (NODES[1].encode(), NODES[2].encode()),
    ]
    cluster = b"1795623867s %s %s\n" % (CLUSTER.encode(), " ".join(NODES).encode())
    proc = subprocess.Popen(
        ["git", "-C", str(repo), "fast-import", "--quiet"], stdin=subprocess.PIPE
    )
    assert proc.stdin is not None
    out = proc.stdin
    for mark, blob in enumerate([*blobs, cluster], 1):
        out.write(b"blob\nmark :%d\ndata %d\n%s\n" % (mark, len(blob), blob))
    message = b"update"
    out.write(b"commit refs/heads/git-annex\n")
    out.write(b"committer bench <bench@localhost> 1795623909 +0000\n")
    out.write(b"data %d\n%s\n" % (len(message), message))
    out.write(b"M 100644 :4 cluster.log\n")
    for i in range(count):
        key = key_of(i)
        path = key.hashdir_lower() + key.keyfile() + ".log"
        out.write(b"M 100644 :%d %s\n" % (1 + i % 3, path.encode()))
    out.write(b"\n")
    out.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")


def main() -> None:
    """Build if needed, then time the reads."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", nargs="?", default="/tmp/annexproxy-bench-branch")
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    repo = Path(args.dir) / f"repo-{args.keys}"
    if not repo.exists():
        started = time.perf_counter()
        repo.parent.mkdir(parents=True, exist_ok=True)
        build(repo, args.keys)
        print(f"built {args.keys} keys in {time.perf_counter() - started:.1f} s")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for seed in range(args.rounds):
        # A fresh repository handle per round: libgit2's object cache starts cold (the
        # operating system's page cache does not), and a new sample of keys each time.
        sample = random.Random(42 + seed).sample(range(args.keys), args.sample)
        keys = [key_of(i) for i in sample]
        started = time.perf_counter()
        with GitPlumbing(repo) as plumbing:
            view = BranchView(plumbing, Journal(plumbing.annexdir, plumbing))
            config = view.config()
            found = sum(len(uuids) for uuids in view.present_many(keys, config).values())
        times.append(time.perf_counter() - started)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    elapsed = statistics.median(times)
    print(
        f"read locations of {args.sample} keys of {args.keys}: median {elapsed:.3f} s "
        f"({1e6 * elapsed / args.sample:.1f} us/key) over {args.rounds} rounds "
        f"({', '.join(f'{t:.3f}' for t in times)}), {found} UUIDs incl. derived clusters "
        f"in the last; peak RSS {rss_after / 1024:.1f} MB (before reading "
        f"{rss_before / 1024:.1f} MB)"
    )


if __name__ == "__main__":
    main()
