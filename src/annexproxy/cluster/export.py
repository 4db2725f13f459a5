"""Exporting a tree to an ``exporttree=yes`` special remote the gateway proxies.

Owns the composition git-annex's ``git annex export`` / ``post-receive`` performs for a
proxied export remote (``Command/Export.hs``, clusters.md 8), on top of the pure plan of
`annexproxy.special.exporttree` and the remote's `ExportActions`:

1. ``export.log`` records the beginning (old tree plus the new one in progress) and the
   new tree is grafted into the git-annex branch as ``export.tree`` in a ``graft``
   commit followed by a ``graft cleanup`` commit, so it stays reachable;
2. temporary names left by an interrupted export are deleted; changed files are renamed
   to temporary names, files no longer wanted are moved to the annexobjects area (or
   deleted), then renamed files reach their new names;
3. ``export.log`` names the new tree (if nothing failed so far);
4. every file of the tree not on the remote is sent: from the annexobjects area by a
   rename, from the gateway's own annex, from another copy on the remote itself, or for
   a non-annexed file from its git blob. Anything else is "not available": keys are not
   fetched from cluster nodes, as with git-annex.

`ExportState` also answers, for the gateway's storage of the remote, which file names a
key has in the current export (``export.log`` of this gateway, tree read once per tree).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from annexproxy.branch.git_plumbing import BRANCH_REF, GitPlumbing
from annexproxy.branch.journal import vector_clock
from annexproxy.branch.logs import export as exportlog
from annexproxy.errors import AnnexProxyError, RepositoryError, StorageError
from annexproxy.keys import Key
from annexproxy.server.repository import LocalRepository
from annexproxy.special.exportactions import ExportActions
from annexproxy.special.exportbackend import Locator
from annexproxy.special.exporttree import (
    MAX_POINTER,
    ExportTree,
    Move,
    Removal,
    TreeItem,
    annexobject_location,
    export_key,
    is_git_sha_key,
    locations_of,
    plan_export,
    temp_location,
)
from annexproxy.storage.contentlock import holding_exclusive
from annexproxy.storage.hashing import verifier_for
from annexproxy.uuids import RepoUUID

GRAFT_POINT = "export.tree"
_TREE_CACHE = 4
_GRAFT_ATTEMPTS = 20
_Chunks = AsyncIterator[bytes]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportOutcome:
    """One step of an export, as git-annex reports it (``export exportsr c.dat ok``)."""

    action: str  # "export", "unexport" or "rename"
    item: str
    ok: bool
    note: str | None = None

    def line(self, remote: str) -> str:
        """The line git-annex prints for this step."""
        note = f" ({self.note})" if self.note else ""
        return f"{self.action} {remote} {self.item}{note} {'ok' if self.ok else 'failed'}"


def read_export_tree(plumbing: GitPlumbing, tree: str) -> dict[str, Key]:
    """The exported file names of ``tree`` and their keys (submodules etc. left out).

    Raises:
        RepositoryError: the tree cannot be read.
    """
    found: dict[str, Key] = {}
    for path, mode, sha, content in plumbing.tree_entries(tree, MAX_POINTER):
        key = export_key(TreeItem(path=path, mode=mode, sha=sha), content)
        if key is not None:
            found[path] = key
    return found


async def filter_export(
    plumbing: GitPlumbing, tree: str, wanted: Callable[[Key, str], Awaitable[bool]] | None
) -> str:
    """The tree to export: ``tree`` without what git-annex leaves out (``filterExport``).

    Submodules and symlinks that are not annexed are left out, and annexed files the
    remote's preferred content does not want (``wanted``: None when it has none).
    Files in git are always exported.

    Raises:
        RepositoryError: the tree cannot be read or written.
    """
    entries = await asyncio.to_thread(lambda: list(plumbing.tree_entries(tree, MAX_POINTER)))
    excluded = []
    for path, mode, sha, content in entries:
        key = export_key(TreeItem(path=path, mode=mode, sha=sha), content)
        if key is None or (
            wanted is not None and not is_git_sha_key(key) and not await wanted(key, path)
        ):
            excluded.append(path)
    if not excluded:
        return tree
    return await asyncio.to_thread(plumbing.tree_without, tree, excluded)


def graft_export_tree(plumbing: GitPlumbing, local: LocalRepository, tree: str) -> str:
    """Graft ``tree`` as ``export.tree`` into the git-annex branch (``graft``, ``graft cleanup``).

    Returns:
        The new branch tip (the cleanup commit, whose tree is the old tip's).

    Raises:
        RepositoryError: there is no git-annex branch, or it kept moving.
    """
    with local.journal.locked():
        for _ in range(_GRAFT_ATTEMPTS):
            tip = plumbing.resolve_ref(BRANCH_REF)
            if tip is None:
                raise RepositoryError(f"{plumbing.gitdir} has no git-annex branch")
            # git-annex commits with `git commit-tree -m`, which ends the message with LF.
            grafted = plumbing.commit(plumbing.graft_tree(tip, GRAFT_POINT, tree), [tip], "graft\n")
            cleanup = plumbing.commit(plumbing.tree_of(tip), [grafted], "graft cleanup\n")
            if plumbing.update_ref(BRANCH_REF, cleanup, tip):
                return cleanup
    raise RepositoryError(f"{BRANCH_REF} kept moving while grafting {tree}; try again")


class ExportState:
    """The exports of one gateway repository: current trees and their file names."""

    def __init__(self, local: LocalRepository) -> None:
        """Read ``local``'s ``export.log`` and trees."""
        self.local = local
        self._trees: dict[str, tuple[ExportTree, dict[Key, list[str]]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def own(self) -> RepoUUID:
        """The gateway's UUID (the exporter in ``export.log``)."""
        return self.local.storage.uuid

    async def tree(self, tree: str) -> tuple[ExportTree, dict[Key, list[str]]]:
        """A tree's exported names, and the names of each key (cached per tree).

        Raises:
            RepositoryError: the tree cannot be read.
        """
        cached = self._trees.get(tree)
        if cached is None:
            names: dict[str, Key] = {}
            if tree != exportlog.EMPTY_TREE:  # git knows it without storing it
                names = await asyncio.to_thread(read_export_tree, self.local.plumbing, tree)
            cached = (names, locations_of(names))
            if len(self._trees) >= _TREE_CACHE:
                self._trees.pop(next(iter(self._trees)))
            self._trees[tree] = cached
        return cached

    async def current(self, remote: str) -> str | None:
        """The tree the remote holds, as this gateway knows it (None: nothing exported).

        Raises:
            RepositoryError: the branch cannot be read.
        """
        content = await self.local.read_log(exportlog.PATH)
        return exportlog.current_tree(content, self.own, remote)

    @asynccontextmanager
    async def exclusive(self, remote: str) -> AsyncIterator[None]:
        """Be the only export to ``remote`` from this repository (git-annex's too).

        Holds git-annex's export database lock, ``annex/export/<uuid>/exportdb.lck``,
        which ``git annex export`` and ``post-receive`` hold while they export.

        Raises:
            StorageError: the lock file cannot be created or locked.
        """
        lock = self._locks.setdefault(remote, asyncio.Lock())
        async with lock:
            path = self.local.journal.annexdir / "export" / remote / "exportdb.lck"
            async with holding_exclusive(path):
                yield

    def locator(self, remote: str) -> Locator:
        """The file names a key has in ``remote``'s current export."""

        async def locations(key: Key) -> list[str]:
            tree = await self.current(remote)
            if tree is None:
                return []
            return list((await self.tree(tree))[1].get(key, []))

        return locations


class Exporter:
    """One export of a tree to one remote through its `ExportActions`."""

    def __init__(
        self, state: ExportState, remote: RepoUUID, actions: ExportActions, *, annexobjects: bool
    ) -> None:
        """Export to ``remote`` (its UUID) with ``actions``."""
        self._state = state
        self._local = state.local
        self._remote = remote
        self._actions = actions
        self._annexobjects = annexobjects
        self.outcomes: list[ExportOutcome] = []

    def _note(self, action: str, item: str, ok: bool, note: str | None = None) -> bool:
        self.outcomes.append(ExportOutcome(action=action, item=item, ok=ok, note=note))
        return ok

    @property
    def failed(self) -> int:
        """How many steps failed."""
        return sum(not o.ok for o in self.outcomes)

    @property
    def all_filled(self) -> bool:
        """Whether every file of the tree reached the remote (no ``export`` step failed)."""
        return all(o.ok for o in self.outcomes if o.action == "export")

    async def run(self, tree: str) -> list[ExportOutcome]:
        """Export ``tree`` (steps 1-4 of the module docstring); return what was done.

        Raises:
            RepositoryError: the gateway's branch cannot be read or written.
        """
        own, remote = self._state.own, self._remote
        content = await self._local.read_log(exportlog.PATH)
        mine = exportlog.parse_export_log(content).get(exportlog.ExportParticipants(own, remote))
        old_trees = exportlog.exported_trees(content, remote)
        await self._local.change_log(
            exportlog.PATH,
            lambda c: exportlog.record_beginning(c, own, remote, tree, vector_clock()),
        )
        await asyncio.to_thread(graft_export_tree, self._local.plumbing, self._local, tree)
        new, _ = await self._state.tree(tree)
        olds = [(await self._state.tree(t))[0] for t in old_trees]
        incomplete = [(await self._state.tree(t))[0] for t in (mine.incomplete if mine else ())]
        plan = plan_export(olds, new, annexobjects=self._annexobjects, incomplete=incomplete)
        for key in plan.recover:
            if await self._present(temp_location(key)):
                await self._remove("unexport", temp_location(key))
        for move in plan.to_temp:
            await self._rename(move)
        for step in (*plan.disposals, *plan.unexports):
            if isinstance(step, Move):
                await self._rename(step, dispose=True)
            else:
                await self._unexport(step, new)
        for move in plan.from_temp:
            if await self._present(move.source):
                await self._rename(move)
        if self.failed == 0:
            await self._local.change_log(
                exportlog.PATH,
                lambda c: exportlog.record_underway(
                    c, own, remote, old_trees, tree, vector_clock()
                ),
            )
        for path, key in plan.fill:
            if not await self._present(path):
                await self._send(path, key, new)
        self._local.committer.changed()
        return self.outcomes

    async def _present(self, location: str) -> bool:
        try:
            return await self._actions.present(location)
        except StorageError:
            return False

    async def _remove(self, action: str, location: str) -> bool:
        try:
            await self._actions.remove(location)
        except StorageError as exc:
            return self._note(action, location, False, str(exc))
        return self._note(action, location, True)

    async def _rename(self, move: Move, *, dispose: bool = False) -> bool:
        """Rename; a failed rename deletes the source instead (``performRename``)."""
        item = move.source if dispose else f"{move.source} -> {move.dest}"
        try:
            await self._actions.rename(move.source, move.dest)
        except StorageError:
            return await self._remove("unexport", move.source)
        return self._note("unexport" if dispose else "rename", item, True)

    async def _unexport(self, removal: Removal, new: ExportTree) -> None:
        """Delete a file; log keys gone that are nowhere else on the remote."""
        if not await self._remove("unexport", removal.path):
            return
        names = locations_of(new)
        for key in removal.keys:
            if is_git_sha_key(key):
                continue
            places = [*names.get(key, []), annexobject_location(key)]
            if not any([await self._present(p) for p in places]):
                await self._local.record(key, self._remote, False)

    async def _send(self, path: str, key: Key, new: ExportTree) -> None:
        """Put ``key`` at ``path``; report it (``performExport``)."""
        try:
            if is_git_sha_key(key):
                data = await asyncio.to_thread(self._local.plumbing.read_blob, key.name)
                await self._store(path, _once(data), len(data))
                self._note("export", path, True)
                return
            note = await self._send_annexed(path, key, new)
        except AnnexProxyError as exc:
            self._note("export", path, False, str(exc))
            return
        if note is not None:
            self._note("export", path, False, note)
            return
        await self._local.record(key, self._remote, True)
        self._note("export", path, True)

    async def _send_annexed(self, path: str, key: Key, new: ExportTree) -> str | None:
        """Send annexed content; None when sent, else why not."""
        logged = self._remote in await asyncio.to_thread(self._local.view().present, key)
        objects = annexobject_location(key)
        if self._annexobjects and logged and await self._present(objects):
            with contextlib.suppress(StorageError):
                await self._actions.rename(objects, path)
                return None
        storage = self._local.storage
        if await storage.checkpresent(key):
            async with storage.retrieve(key) as source:
                await self._store(path, source.chunks(), key.size)
            return None
        if logged:
            others = [p for p in locations_of(new).get(key, []) if p != path]
            for source_path in [*others, objects]:
                if await self._present(source_path):
                    await self._copy_verified(source_path, path, key)
                    return None
        return "not available"

    async def _copy_verified(self, source: str, dest: str, key: Key) -> None:
        """Copy a file on the remote to another name, checking its content is ``key``'s."""
        verifier = verifier_for(key)
        size = 0

        async def pieces() -> _Chunks:
            nonlocal size
            async for piece in self._actions.retrieve(source):
                size += len(piece)
                if verifier is not None:
                    verifier.update(piece)
                yield piece

        async with self._actions.store(dest, key.size) as session:
            async for piece in pieces():
                await session.write(piece)
            if (key.size is not None and size != key.size) or (
                verifier is not None and not verifier.matches()
            ):
                raise StorageError(f"{source} on the remote does not hold {key}")
            await session.commit()

    async def _store(self, location: str, pieces: _Chunks, size: int | None) -> None:
        async with self._actions.store(location, size) as session:
            async for piece in pieces:
                await session.write(piece)
            await session.commit()


async def _once(data: bytes) -> _Chunks:
    yield data
