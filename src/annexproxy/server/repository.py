"""Open a local git-annex repository for serving: its object store wired to its journal.

The object store (`AnnexRepoStorage`) reports every presence change; this module points
that at the repository's own location log, written through git-annex's journal under its
lock (branch.md 11 and 13 A), so git-annex reads our changes as its own, and commits the
journal to the git-annex branch (`BranchCommitter`), as git-annex-shell does when it exits.
A gateway also records here what its proxied nodes gained or lost (`record`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from annexproxy.branch.configmemo import ConfigMemo
from annexproxy.branch.git_plumbing import GitPlumbing
from annexproxy.branch.journal import Journal
from annexproxy.branch.presence_batch import PresenceBatch
from annexproxy.branch.view import BranchView, RecentSiblings
from annexproxy.errors import AnnexProxyError
from annexproxy.keys import Key
from annexproxy.server.branch_committer import BranchCommitter
from annexproxy.storage.annexrepo import AnnexRepoStorage


@dataclass(slots=True, kw_only=True)
class LocalRepository:
    """An open repository: object store, branch access, journal and committer."""

    path: Path
    plumbing: GitPlumbing
    journal: Journal
    committer: BranchCommitter
    storage: AnnexRepoStorage
    siblings: RecentSiblings = field(default_factory=RecentSiblings)
    config_memo: ConfigMemo = field(default_factory=ConfigMemo)
    presence: PresenceBatch = field(init=False)

    def __post_init__(self) -> None:
        self.presence = PresenceBatch(self.journal)

    async def record(self, key: Key, uuid: str, present: bool) -> None:
        """Log in this repository's location log that ``uuid`` has ``key`` or not.

        Changes made at the same time are written together (`PresenceBatch`).

        Raises:
            RepositoryError: the journal cannot be written.
        """
        await self.presence.record(key, uuid, present)
        self.committer.changed()

    async def read_log(self, path: str) -> bytes:
        """A branch file as readers see it (journal, branch, siblings); ``b""`` if none.

        Raises:
            RepositoryError: git or the journal cannot be read.
        """
        return await asyncio.to_thread(lambda: self.view().read(path) or b"")

    async def change_log(self, path: str, change: Callable[[bytes], bytes]) -> None:
        """Rewrite a branch file through the journal under its lock; commit it soon.

        Raises:
            RepositoryError: the journal cannot be written.
        """
        await asyncio.to_thread(self.journal.modify, path, change)
        self.committer.changed()

    def view(self) -> BranchView:
        """A fresh view of the branch with the journal on top.

        The branch tip is read now; sibling refs may be up to a second old
        (`RecentSiblings`).

        Raises:
            RepositoryError: the refs cannot be read.
        """
        return BranchView(
            self.plumbing,
            self.journal,
            recent_siblings=self.siblings,
            config_memo=self.config_memo,
        )


@asynccontextmanager
async def open_repository(
    path: Path, *, commit_after: float | None = None
) -> AsyncIterator[LocalRepository]:
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
            await repo.record(key, storage.uuid, present)

        storage = AnnexRepoStorage.open(path, presence_log=log_presence)
        repo = LocalRepository(
            path=Path(path),
            plumbing=plumbing,
            journal=journal,
            committer=committer,
            storage=storage,
        )
        try:
            yield repo
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
