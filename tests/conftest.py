"""Shared fixtures: hypothesis profiles, a clean git environment, temporary repositories,
the test external remote program (interop/testdir_remote.py) on PATH."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from annexproxy.testing.realannex import (
    GIT_ENV,
    AnnexRepo,
    install_external_program,
    make_annex_repo,
)

TESTDIR_REMOTE = Path(__file__).parent / "interop" / "testdir_remote.py"

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("deep", max_examples=5000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: a worker per CPU, and at least two (tests mostly wait on processes)."""
    return max(2, os.cpu_count() or 1)


@pytest.fixture(scope="session", autouse=True)
def _private_gnupg_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """gpg (encrypted special remotes) uses a throwaway home; its agent is stopped after."""
    home = tmp_path_factory.mktemp("gnupg-home")
    home.chmod(0o700)
    old = os.environ.get("GNUPGHOME")
    os.environ["GNUPGHOME"] = str(home)
    yield
    subprocess.run(["gpgconf", "--kill", "all"], check=False, capture_output=True)
    if old is None:
        del os.environ["GNUPGHOME"]
    else:
        os.environ["GNUPGHOME"] = old


@pytest.fixture(autouse=True)
def _git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in GIT_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def annex_repo_factory(tmp_path: Path) -> Callable[..., AnnexRepo]:
    """Make git-annex repositories below the test's temporary directory."""

    def make(name: str = "repo", *, bare: bool = False, description: str = "") -> AnnexRepo:
        return make_annex_repo(tmp_path / name, description or name, bare=bare)

    return make


@pytest.fixture
def program_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put ``git-annex-remote-testdir`` on PATH (for git-annex and for us)."""
    wrapper = install_external_program(tmp_path / "bin", "testdir", TESTDIR_REMOTE)
    monkeypatch.setenv("PATH", f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}")
    return wrapper
