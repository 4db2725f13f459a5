"""Benchmark annexproxy against git-annex's own gateway on loopback (issue 9, item 1).

``python bench/run.py [--quick | --tiny] [--reps N] [--no-ssh] [--no-fsync] [--only S ...]
[--keep]``

Builds one temporary directory (scene.py): node1 with the content, a 3-node cluster, a
gateway repository set up by real git-annex, and clients. Serves node1 and the gateway
with both ``git annex p2phttp`` and ``annexproxy serve`` (and, over the fakessh stand-in,
``git-annex-shell`` and ``annexproxy-shell``), runs every scenario's variants
alternately (round-robin within each repetition, after unrecorded warm-ups), and prints
one table of medians with ratios, the raw limits of the same run, and issue 9's targets.
Records go to ``results.jsonl`` (``--out``). Not a test: nothing here asserts timings.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cases
import report
import scene as scenes

MODES = {
    "full": scenes.Sizes(
        big_mb=512,
        conc_clients=8,
        conc_mb=128,
        small_count=1000,
        small_kb=10,
        branch_keys=1_000_000,
        branch_sample=10_000,
        reps=3,
        warmup=1,
        conc_reps=7,
        huge_mb=4096,
        sizes_reps=1,
    ),
    "quick": scenes.Sizes(
        big_mb=128,
        conc_clients=8,
        conc_mb=16,
        small_count=100,
        small_kb=10,
        branch_keys=100_000,
        branch_sample=10_000,
        reps=2,
        warmup=0,
        huge_mb=512,
        sizes_reps=1,
    ),
    "tiny": scenes.Sizes(
        big_mb=2,
        conc_clients=2,
        conc_mb=1,
        small_count=5,
        small_kb=10,
        branch_keys=2_000,
        branch_sample=200,
        reps=1,
        warmup=0,
        settle=0.0,
        huge_mb=3,
    ),
}
SCENARIOS = ("limits", "key", "big", "cluster", "small", "conc", "sizes", "branch")
BUILDERS = {
    "limits": cases.limit_cases,
    "key": cases.key_cases,
    "big": cases.big_cases,
    "cluster": cases.cluster_cases,
    "small": cases.small_cases,
    "conc": cases.conc_cases,
    "sizes": cases.sizes_cases,
}


def say(text: str) -> None:
    """Progress on stderr, with the time."""
    print(time.strftime("[%H:%M:%S] ") + text, file=sys.stderr, flush=True)


def run_scenario(scene: scenes.Scene, name: str, out: list[dict[str, object]], sink: Path) -> None:
    """All variants of one scenario, round-robin, warm-ups first (recorded as rep < 0)."""
    variants = BUILDERS[name](scene)
    for rep in range(-scene.sizes.warmup_of(name), scene.sizes.reps_of(name)):
        for case in variants:
            rec = cases.measure(scene, case, rep)
            out.append(rec)
            with sink.open("a") as f:
                f.write(json.dumps(rec) + "\n")
            srv = (
                f" srv {rec['srv_user']}u+{rec['srv_sys']}s rss {rec['srv_rss_mb']}MB"
                if "srv_user" in rec
                else ""
            )
            bad = f" PROBLEM: {rec['problem']}" if rec["problem"] else ""
            say(f"  {case.scenario} [{case.impl}] rep {rep}: {rec['wall']:.2f} s{srv}{bad}")


def run_branch(scene: scenes.Scene, sink: Path) -> dict[str, float] | None:
    """bench/branch_locations.py: build once (unrecorded run), then the median of the runs."""
    script = Path(__file__).resolve().parent / "branch_locations.py"
    argv = [
        sys.executable,
        str(script),
        str(scene.top / "branch"),
        "--keys",
        str(scene.sizes.branch_keys),
        "--sample",
        str(scene.sizes.branch_sample),
    ]
    found = []
    for rep in range(-1, scene.sizes.reps):
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        m = re.search(r": (?:median )?([0-9.]+) s .*peak RSS ([0-9.]+) MB", proc.stdout)
        rec = {
            "scenario": "branch locations",
            "impl": cases.AP,
            "rep": rep,
            "rc": proc.returncode,
            "stdout": proc.stdout.strip(),
        }
        with sink.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        say(f"  branch rep {rep}: {proc.stdout.strip().splitlines()[-1:] or proc.stderr[-300:]}")
        if m and rep >= 0:
            found.append((float(m.group(1)), float(m.group(2))))
    if not found:
        return None
    found.sort()
    seconds, rss = found[len(found) // 2]
    return {
        "seconds": seconds,
        "rss_mb": rss,
        "keys": float(scene.sizes.branch_keys),
        "sample": float(scene.sizes.branch_sample),
    }


def render(
    scene: scenes.Scene,
    records: list[dict[str, object]],
    branch: dict[str, float] | None,
    notes: list[str],
) -> str:
    """The whole printed report."""
    s = scene.sizes
    summary = report.summarize(records)
    lines = [
        f"## annexproxy vs git-annex {notes[0]} gateway: medians of {s.reps} runs "
        f"(+{s.warmup} warm-up), alternating"
        + (
            f"; the concurrency rows {s.reps_of('conc')} runs"
            if s.reps_of("conc") != s.reps
            else ""
        ),
        "",
        "gw CPU = user+sys of the serving process and its children (node1's server for the"
        " 'direct' rows; over ssh, the server-side shell processes, from GNU time); gw RSS ="
        " peak RSS of the serving process (over ssh: largest server-side process).",
        "",
        *report.main_table(summary),
    ]
    if branch:
        lines += [
            "",
            f"branch (annexproxy, bench/branch_locations.py): locations of "
            f"{branch['sample']:.0f} keys of {branch['keys']:.0f}: {branch['seconds']:.3f} s, "
            f"peak RSS {branch['rss_mb']:.0f} MB",
        ]
    lines += ["", "### Raw limits (same run, same object)", "", *report.limits_table(summary)]
    lines += ["", "### Issue 9 targets", "", *report.targets(summary, branch)]
    lines += [
        "",
        "### Checks",
        "",
        *(report.problems(records) or ["- every run passed its check"]),
        *(f"- {n}" for n in notes[1:]),
    ]
    return "\n".join(lines)


def main() -> int:
    """Parse options, build, run, print, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick",
        action="store_const",
        dest="mode",
        const="quick",
        help="128 MiB objects, 100 small files, 100k-key branch, 2 runs (~5 min)",
    )
    mode.add_argument(
        "--tiny",
        action="store_const",
        dest="mode",
        const="tiny",
        help="smoke mode for the test: tiny data, 1 run",
    )
    parser.add_argument(
        "--reps", type=int, help="recorded repetitions of every scenario (default by mode)"
    )
    parser.add_argument("--warmup", type=int, help="unrecorded warm-up runs (default by mode)")
    parser.add_argument("--no-ssh", action="store_true", help="skip the ssh (fakessh) variants")
    parser.add_argument(
        "--no-fsync",
        action="store_true",
        help="nodes set annexproxy.fsync=false: objects stored as durably as git-annex does",
    )
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, help="run only these scenarios")
    parser.add_argument("--dir", type=Path, help="parent of the temporary directory")
    parser.add_argument("--out", type=Path, help="also write records and the report here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    sizes = MODES[args.mode or "full"]
    if args.reps is not None or args.warmup is not None:
        sizes = scenes.Sizes(
            **{
                **{f: getattr(sizes, f) for f in sizes.__slots__},
                "reps": args.reps if args.reps is not None else sizes.reps,
                "conc_reps": 0 if args.reps is not None else sizes.conc_reps,
                "sizes_reps": 0 if args.reps is not None else sizes.sizes_reps,
                "warmup": args.warmup if args.warmup is not None else sizes.warmup,
            }
        )
    ssh = not args.no_ssh and shutil.which("time", path="/usr/bin:/bin") is not None
    os.environ.setdefault("BENCH_ORIG_PATH", os.environ.get("PATH", ""))
    top = Path(tempfile.mkdtemp(prefix="annexproxy-bench-", dir=args.dir)).resolve()
    sink = (args.out or top) / "results.jsonl"
    sink.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    cases.set_subreaper()
    scene = None
    try:
        scenes.prepare_environment(top)
        version = subprocess.run(
            ["git-annex", "version", "--raw"], capture_output=True, text=True, check=False
        ).stdout.strip()
        say(f"building the scene in {top} ({args.mode or 'full'} mode)")
        scene = scenes.build(top, sizes, ssh=ssh, fsync=not args.no_fsync)
        notes = [version, *scenes.check_remotes(scene)]
        if args.no_fsync:
            notes.append("nodes with annexproxy.fsync=false (no fsync, as git-annex)")
        if not ssh:
            notes.append("ssh variants skipped (--no-ssh, or no /usr/bin/time)")
        records: list[dict[str, object]] = []
        branch = None
        for name in args.only or SCENARIOS:
            say(f"scenario {name}")
            if name == "branch":
                branch = run_branch(scene, sink)
            else:
                run_scenario(scene, name, records, sink)
        notes.append(
            f"harness wall time {time.monotonic() - started:.0f} s; machine: "
            f"{os.cpu_count()} CPUs, load at end {os.getloadavg()[0]:.1f}"
        )
        text = render(scene, records, branch, notes)
        print(text)
        if args.out:
            (args.out / "report.md").write_text(text + "\n")
        failed = any(r.get("problem") for r in records)
        return 1 if failed else 0
    finally:
        if scene is not None:
            scenes.stop_servers(scene)
        if args.keep:
            say(f"kept {top}")
        else:
            subprocess.run(["chmod", "-R", "u+w", str(top)], check=False)
            shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
