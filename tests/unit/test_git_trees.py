"""GitPlumbing's tree reading and adjusting, checked against git itself.

`tree_entries` lists what ``git ls-tree -r`` lists, in the same order (an export fills
files in that order); `tree_without` leaves entries out the way git-annex's tree
adjustment does, keeping subtrees it emptied; `rev_tree` resolves ``ref:subdir``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from annexproxy.branch.git_plumbing import GitPlumbing
from annexproxy.errors import RepositoryError
from annexproxy.testing.realannex import annex_env


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, env=annex_env(), capture_output=True, text=True, check=True
    ).stdout


def _repo(tmp_path: Path) -> tuple[Path, str]:
    repo = tmp_path / "r"
    _git(tmp_path, "init", "-q", "-b", "main", str(repo))
    for name in ("a", "a.b", "a-c", "d/e", "d/f/g", "d.x", "z/only"):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(name * 3)
    os.symlink("d/e", repo / "link")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "tree")
    return repo, _git(repo, "rev-parse", "HEAD^{tree}").strip()


def test_entries_in_ls_tree_order(tmp_path: Path) -> None:
    repo, tree = _repo(tmp_path)
    with GitPlumbing(repo) as plumbing:
        got = [(p, f"{m:06o}", s) for p, m, s, _ in plumbing.tree_entries(tree, 100)]
        contents = {p: c for p, _, _, c in plumbing.tree_entries(tree, 3)}
    expected = [
        (line.split("\t")[1], line.split()[0], line.split()[2])
        for line in _git(repo, "ls-tree", "-r", tree).splitlines()
    ]
    assert got == expected
    assert contents["link"] == b"d/e"
    assert contents["a"] == b"aaa"
    assert contents["d/f/g"] is None  # larger than the limit


def test_tree_without_keeps_emptied_subtrees(tmp_path: Path) -> None:
    repo, tree = _repo(tmp_path)
    with GitPlumbing(repo) as plumbing:
        adjusted = plumbing.tree_without(tree, ["link", "z/only", "d/f/g"])
        assert plumbing.tree_without(tree, []) == tree
        assert plumbing.rev_tree("main:d") == _git(repo, "rev-parse", "main:d").strip()
        assert plumbing.rev_tree("main:nothing") is None
    listing = _git(repo, "ls-tree", "-r", "-t", adjusted)
    paths = [line.split("\t")[1] for line in listing.splitlines()]
    assert "link" not in paths
    assert "z/only" not in paths
    assert "z" in paths  # an empty tree, as git-annex leaves it
    assert "d/f" in paths
    assert "d/e" in paths


def test_unknown_tree_is_a_repository_error(tmp_path: Path) -> None:
    repo, _ = _repo(tmp_path)
    with GitPlumbing(repo) as plumbing, pytest.raises(RepositoryError, match="no tree"):
        list(plumbing.tree_entries("1" * 40, 10))
