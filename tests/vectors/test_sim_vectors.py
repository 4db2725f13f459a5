"""Every sim vector of shared/spec/vectors/sims (vectors/README.md section 3), exactly.

Two ways: the pure session API (history and notes), and the real ``annexproxy sim``
command run at the top of a fresh git-annex repository, as the vectors were made
(stdout, stderr and exit status of ``sim start FILE``, then ``sim show``).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from annexproxy.sim import show, start
from annexproxy.testing.realannex import AnnexRepo

SIMS = Path(__file__).resolve().parents[3] / "shared" / "spec" / "vectors" / "sims"
NAMES = sorted(p.stem for p in SIMS.glob("*.sim"))


def _read(name: str, suffix: str) -> str:
    return (SIMS / f"{name}{suffix}").read_text(encoding="utf-8")


def test_vectors_exist() -> None:
    assert len(NAMES) >= 4


@pytest.mark.parametrize("name", NAMES)
def test_session_reproduces_history_and_notes(name: str) -> None:
    notes: list[str] = []
    state = start(_read(name, ".sim"), initial_seed=0, note=notes.append, visit=lambda *a: 0)
    assert show(state) == _read(name, ".show")
    expected_stdout = "".join(f"\n  {n}\n" for n in ["Sim started.", *notes])
    assert expected_stdout == _read(name, ".stdout")
    assert state.failed == (_read(name, ".rc").strip() == "1")


@pytest.mark.interop
@pytest.mark.parametrize("name", NAMES)
def test_cli_matches_recorded_output(
    name: str, annex_repo_factory: Callable[..., AnnexRepo]
) -> None:
    repo = annex_repo_factory("simhost")
    started = subprocess.run(
        ["annexproxy", "sim", "start", str(SIMS / f"{name}.sim")],
        cwd=repo.path,
        capture_output=True,
        text=True,
        check=False,
    )
    shown = subprocess.run(
        ["annexproxy", "sim", "show"], cwd=repo.path, capture_output=True, text=True, check=False
    )
    ended = subprocess.run(
        ["annexproxy", "sim", "end"], cwd=repo.path, capture_output=True, text=True, check=False
    )
    assert started.stdout == _read(name, ".stdout")
    assert started.stderr == _read(name, ".stderr")
    assert f"{started.returncode}\n" == _read(name, ".rc")
    assert shown.stdout == _read(name, ".show")
    assert ended.stdout == "\n  Sim ended.\n"
