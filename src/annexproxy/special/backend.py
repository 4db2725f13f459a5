"""The primitive operations of one special remote, on whole stored objects.

A stored object is named by a key: the object's own key, a chunk key (``-S..-C..``) or
an encrypted key (``GPGHMACSHA256--..``). Backends know nothing of chunking, encryption
or verification; `annexproxy.special.storage` layers those on top. Backends convert their
own exceptions into `annexproxy.errors.StorageError` subclasses. No I/O here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from annexproxy.keys import Key
from annexproxy.space.reserve import DEFAULT_DISK_RESERVE


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalSettings:
    """What the gateway repository's own git config asks of the backends it opens."""

    fsync: bool = True
    """``annexproxy.fsync``: sync stored objects to disk before reporting them stored."""
    disk_reserve: int = DEFAULT_DISK_RESERVE
    """``annex.diskreserve``: free space spooling must leave on the gateway's disk."""


class StoreSession(Protocol):
    """One object being stored. Nothing is visible under its name until `commit`.

    Leaving the context without `commit` discards what was written (an aborted
    multipart upload, a deleted temp file, ...).
    """

    async def write(self, data: bytes) -> None:
        """Append bytes to the object.

        Raises:
            StorageError: the bytes could not be written.
        """
        ...

    async def commit(self) -> None:
        """Make the object present under its name, durably.

        Raises:
            StorageError: it could not be stored.
        """
        ...


class RemoteBackend(Protocol):
    """A special remote's store/retrieve/checkpresent/remove on named objects."""

    def store(self, name: Key, size: int | None) -> AbstractAsyncContextManager[StoreSession]:
        """Start storing the object ``name`` of ``size`` bytes (None: unknown).

        Raises:
            StorageError: the store cannot start (remote unreachable, ...).
        """
        ...

    def retrieve(self, name: Key, offset: int = 0) -> AsyncIterator[bytes]:
        """Yield the object's bytes from ``offset``, in order.

        Raises:
            KeyNotPresent: there is no such object.
            StorageError: reading failed part way.
        """
        ...

    def local_path(self, name: Key) -> Path | None:
        """A local file holding the object (for sendfile), or None."""
        ...

    async def present(self, name: Key) -> bool:
        """Tell whether the object is stored.

        Raises:
            StorageError: presence cannot be determined.
        """
        ...

    async def remove(self, name: Key) -> None:
        """Remove the object; an absent object is not an error.

        Raises:
            StorageError: it could not be removed.
        """
        ...

    async def aclose(self) -> None:
        """Release connections and processes."""
        ...


@runtime_checkable
class SharedStore(Protocol):
    """A backend that spools stores and can keep one spool for a group of them."""

    def store_shared(
        self, name: Key, size: int | None, group: object
    ) -> AbstractAsyncContextManager[StoreSession]:
        """As `RemoteBackend.store`, sharing the spool with the other stores of ``group``.

        Every store of a group is given the same bytes of ``name`` in the same order
        (one fan-out); the first to get a range writes it, the others skip it.

        Raises:
            StorageError: the store cannot start.
        """
        ...
