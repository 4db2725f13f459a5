"""What git-annex keeps in the private journal (annex.private) is read like git-annex reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from annexproxy.branch.git_plumbing import GitPlumbing
from annexproxy.branch.journal import Journal
from annexproxy.branch.view import BranchView
from annexproxy.testing.realannex import AnnexRepo, run

pytestmark = pytest.mark.interop


def test_private_repository_and_remote_are_seen(tmp_path: Path) -> None:
    path = tmp_path / "private"
    run(["git", "init", "-q", str(path)], tmp_path)
    repo = AnnexRepo(path=path, uuid="", bare=False, env={})
    repo.git("config", "annex.private", "true")
    repo.annex("init", "-q", "secret place")
    (tmp_path / "dir").mkdir()
    repo.annex(
        "initremote", "-q", "--private", "hidden", "type=directory",
        f"directory={tmp_path / 'dir'}", "encryption=none",
    )  # fmt: skip
    uuid = repo.git("config", "annex.uuid").stdout.strip()
    hidden = repo.git("config", "remote.hidden.annex-uuid").stdout.strip()
    assert list((repo.annexdir / "journal-private").iterdir())
    with GitPlumbing(path) as plumbing:
        view = BranchView(plumbing, Journal(plumbing.annexdir, plumbing))
        config = view.config()
    assert config.descriptions.get(uuid) == "secret place"
    assert config.remotes[hidden]["type"] == "directory"
    # Nothing private reached the branch itself.
    assert hidden not in repo.git("show", "git-annex:remote.log", check=False).stdout
