"""Open a local git-annex repository for serving: its object store wired to its journal.

The object store (`AnnexRepoStorage`) reports every presence change; this module points
that at the repository's own location log, written through git-annex's journal under its
lock (branch.md 11 and 13 A), so git-annex reads our changes as its own, and commits the
journal to the git-annex branch (`BranchCommitter`), as git-annex-shell does when it exits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from annexproxy.branch.git_plumbing import GitPlumbing
from annexproxy.branch.journal import Journal
from annexproxy.errors import AnnexProxyError
from annexproxy.keys import Key
from annexproxy.server.branch_committer import BranchCommitter
from annexproxy.storage.annexrepo import AnnexRepoStorage


@asynccontextmanager
async def open_repository(
    path: Path, *, commit_after: float | None = None
) -> AsyncIterator[AnnexRepoStorage]:
    """Open the repository at ``path`` for serving; location changes go to its journal.

    The journal is committed to the git-annex branch ``commit_after`` seconds after
    changes pause (never, with None, until closing) and when the repository is closed.

    Raises:
        RepositoryError: ``path`` is not a usable git-annex repository.
    """
    plumbing = GitPlumbing(path)
    try:
        journal = Journal(plumbing.annexdir, plumbing)
        committer = BranchCommitter(plumbing, journal, idle=commit_after)

        async def log_presence(key: Key, present: bool) -> None:
            await journal.arecord_presence(key, storage.uuid, present)
            committer.changed()

        storage = AnnexRepoStorage.open(path, presence_log=log_presence)
        try:
            yield storage
        finally:
            await committer.aclose()
    finally:
        plumbing.close()


def read_repository_uuid(path: Path) -> str | None:
    """The ``annex.uuid`` of the repository at ``path``, or None if it has none."""
    try:
        with GitPlumbing(path) as plumbing:
            return plumbing.read_settings().uuid
    except AnnexProxyError:
        return None
