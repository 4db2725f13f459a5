"""The README's first command: `annexproxy demo --run` runs to the end on a fresh machine."""

from __future__ import annotations

import subprocess

import pytest

from annexproxy.testing.realannex import annex_env, shell_program

pytestmark = [pytest.mark.interop, pytest.mark.slow]


def test_demo_runs_every_step() -> None:
    result = subprocess.run(
        [shell_program("annexproxy"), "demo", "--run"],
        capture_output=True,
        text=True,
        env=annex_env(),
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All steps worked" in result.stdout
    assert "gateway to cluster: origin-demo" in result.stdout
    assert "git annex copy --to origin-demo ." in result.stdout
    placement = result.stdout.split("Where each file went", 1)[1]
    assert "-> node" in placement
    assert "(nowhere)" not in placement
