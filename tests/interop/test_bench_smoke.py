"""The benchmark harness runs end to end in its tiny mode (so that it cannot rot).

Only checks that bench/run.py builds its scene, runs every scenario against both
gateways and prints its table with every check passing. It asserts no timings: the
benchmark is a script (issue 9), this test only proves the script works.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.interop, pytest.mark.slow]

RUN = Path(__file__).resolve().parents[2] / "bench" / "run.py"


def test_bench_tiny_mode_runs(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(RUN),
            "--tiny",
            "--dir",
            str(tmp_path),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = proc.stdout
    assert "| scenario | git-annex wall s |" in table
    for row in (
        "curl key",
        "via gateway",
        "copy --to 3-node cluster",
        "nodes without fsync (git-annex's durability)",
        "clients x",
        "object size: copy --to 3-node cluster 3 MiB",
        "object size: curl key 3 MiB from a node",
        "peak RSS by object size",
        "branch",
    ):
        assert row in table, row
    assert "every run passed its check" in table
    assert "NOT AVAILABLE" not in table
    assert (tmp_path / "out" / "results.jsonl").stat().st_size > 0
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith("annexproxy-bench-")]
    assert leftovers == []  # the temporary directory was removed
