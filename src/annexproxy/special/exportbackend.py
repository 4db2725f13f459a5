"""Keys on an ``exporttree=yes annexobjects=yes`` remote, as git-annex's gateway keeps them.

`ExportTreeBackend` is a `RemoteBackend` (so `SpecialRemoteStorage` adds verification,
upload locks and ALREADY-HAVE on top) whose objects live under exported file names
(git-annex ``Remote/Helper/ExportImport.hs`` and ``Annex/Proxy.hs``):

* a key of the current export (``locations`` names its files) is stored at each of its
  file names not yet there; any other key in the annexobjects area
  ``.git/annex/objects/<hashdirlower><kf>/<kf>``;
* presence and reads try the key's exported files first, then the annexobjects area;
* a removal deletes only the annexobjects copy, and is refused for a key of the current
  export (only exporting a tree without it removes it).

Not chunked and not encrypted: git-annex refuses encryption with exporttree=yes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from annexproxy.errors import KeyNotPresent, StorageError
from annexproxy.keys import Key
from annexproxy.special.backend import StoreSession
from annexproxy.special.exportactions import ExportActions
from annexproxy.special.exporttree import annexobject_location

Locator = Callable[[Key], Awaitable[list[str]]]
"""The file names a key has in the remote's current export (none: not exported)."""

IN_EXPORT = (
    "This key is part of the exported tree, so can only be removed by exporting a tree "
    "that does not include it."
)


class _Session:
    """Writes the first target; the commit copies it to the others."""

    def __init__(
        self, actions: ExportActions, targets: list[str], size: int | None, stack: AsyncExitStack
    ) -> None:
        self._actions = actions
        self._targets = targets
        self._size = size
        self._stack = stack
        self._first: StoreSession | None = None

    async def open(self) -> None:
        first = self._actions.store(self._targets[0], self._size)
        self._first = await self._stack.enter_async_context(first)

    async def write(self, data: bytes) -> None:
        assert self._first is not None
        await self._first.write(data)

    async def commit(self) -> None:
        assert self._first is not None
        await self._first.commit()
        for other in self._targets[1:]:
            async with self._actions.store(other, self._size) as copy:
                async for piece in self._actions.retrieve(self._targets[0]):
                    await copy.write(piece)
                await copy.commit()


class ExportTreeBackend:
    """A `RemoteBackend` over an export remote's file names."""

    def __init__(self, actions: ExportActions, locations: Locator) -> None:
        """Keep objects in ``actions``; ``locations`` gives a key's exported names."""
        self.actions = actions
        self._locations = locations
        self._found: dict[Key, str] = {}

    async def _where(self, name: Key) -> str | None:
        """The first place the key is found: an exported file, else the annexobjects area."""
        for location in [*await self._locations(name), annexobject_location(name)]:
            if await self.actions.present(location):
                self._found[name] = location
                return location
        self._found.pop(name, None)
        return None

    @asynccontextmanager
    async def store(self, name: Key, size: int | None) -> AsyncIterator[_Session]:
        """Store at the key's exported names not yet there, else in the annexobjects area."""
        exported = await self._locations(name)
        targets = [loc for loc in exported if not await self.actions.present(loc)]
        if not exported:
            targets = [annexobject_location(name)]
        if not targets:
            raise StorageError(f"{name} is already at all its exported names")
        async with AsyncExitStack() as stack:
            session = _Session(self.actions, targets, size, stack)
            await session.open()
            yield session

    async def retrieve(self, name: Key, offset: int = 0) -> AsyncIterator[bytes]:
        """Read the key from where it is found."""
        location = await self._where(name)
        if location is None:
            raise KeyNotPresent(f"{name} is not on the export remote", key=str(name))
        async for piece in self.actions.retrieve(location, offset):
            yield piece

    def local_path(self, name: Key) -> Path | None:
        """The local file found by the last presence check, for sendfile."""
        location = self._found.get(name)
        return None if location is None else self.actions.local_path(location)

    async def present(self, name: Key) -> bool:
        """Whether the key is at one of its exported names or in the annexobjects area."""
        return await self._where(name) is not None

    async def remove(self, name: Key) -> None:
        """Delete the annexobjects copy; refused for keys of the current export.

        Raises:
            StorageError: the key is part of the exported tree, or deleting failed.
        """
        if await self._locations(name):
            raise StorageError(IN_EXPORT)
        self._found.pop(name, None)
        await self.actions.remove(annexobject_location(name))

    async def aclose(self) -> None:
        """Nothing to release."""
