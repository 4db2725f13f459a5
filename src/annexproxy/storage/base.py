"""The storage interface every backend implements (local repository, P2P node, HTTP node, ...).

It is deliberately small: presence, streamed retrieval, resumable verified upload, content
locks, removal (optionally bounded by a deadline on the backend's clock) and that clock.
Backends convert foreign exceptions into `annexproxy.errors.StorageError` subclasses.
This module holds the protocol types, and `upload_offset`, which asks a backend where an
upload would resume; it does no I/O itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol, cast

from annexproxy.keys import Key
from annexproxy.uuids import RepoUUID

PresenceLog = Callable[[Key, bool], Awaitable[None]]
"""Awaited by a storage after content of a key was stored (True) or removed (False);
a served repository points it at its location log."""

Others = tuple[RepoUUID, ...]
"""UUIDs other than the addressed repository that an operation also affected (the
-PLUS lists of wire.md 2.3: cluster nodes that got or lost the content)."""


class ObjectSource(Protocol):
    """An object opened for reading.

    ``length`` is the number of bytes that will be sent (object size minus the offset).
    When ``fd`` is not None it is an open descriptor of a local file holding the object:
    the bytes are those at ``[offset, offset+length)`` and a transport may send them with
    sendfile. It reads with explicit offsets (``pread``, ``sendfile``), and the source
    closes it. Since the file is already open, removing the object meanwhile (a drop)
    does not cut the read short. Otherwise a transport iterates `chunks`.
    """

    @property
    def length(self) -> int:
        """Bytes to send, from ``offset`` to the end of the object."""
        ...

    @property
    def offset(self) -> int:
        """Where in the object the bytes start."""
        ...

    @property
    def fd(self) -> int | None:
        """An open descriptor of a local file holding the object; None if there is none."""
        ...

    def chunks(self, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        """Yield the bytes in order, at most ``chunk_size`` at a time.

        Raises:
            StorageError: reading failed part way.
        """
        ...

    def unchanged(self) -> bool:
        """After sending: True if the content certainly did not change while it was read."""
        ...


class Upload(Protocol):
    """An upload of one key in progress. Exclusive per key while open.

    ``offset`` bytes are already held from an earlier interrupted upload (PUT-FROM offset).
    Leaving the context without `commit` keeps the partial bytes for a later resume,
    unless they were found to be wrong.
    """

    @property
    def offset(self) -> int:
        """Bytes already held; the sender continues from here."""
        ...

    @property
    def already_have(self) -> Others | None:
        """Not None when the content is already there (send nothing); lists others holding it."""
        ...

    async def write(self, data: bytes) -> None:
        """Append bytes to the partial content.

        Raises:
            StorageError: the bytes could not be written (disk full, ...).
        """
        ...

    async def commit(self, *, sender_valid: bool) -> Others:
        """Verify the whole content against the key, make it durable and present.

        Args:
            sender_valid: the sender said VALID. Hashing backends are verified anyway;
                for keys that cannot be verified by hash, False means failure.

        Returns:
            Other UUIDs that now hold the content too (cluster nodes).

        Raises:
            VerificationFailed: size or hash mismatch; the partial content is discarded.
            StorageError: it could not be made durable.
        """
        ...


class SpoolSharing(Protocol):
    """An `Upload` whose spool files may be shared with other uploads of one fan-out.

    A fan-out gives every upload it feeds the same bytes; uploads told the same group
    before any byte arrived may then keep one spool file between them instead of one
    each (uploads fed by different clients must never share: their bytes may differ).
    """

    def share_spool(self, group: object) -> int | None:
        """Share spools with the other uploads of ``group`` (call before any write).

        Returns None when this upload does not share (it does not spool, or bytes
        arrived already). Otherwise the most bytes it may be given in one write
        (`sys.maxsize`: any): a spool goes when its last current user is done with it,
        so no write may hold a whole chunk, or one store could finish a chunk's spool
        before another store of the group had opened it.
        """
        ...


class SharedVerification(Protocol):
    """An `Upload` that can leave hashing to its caller (a fan-out hashes once for all).

    After `hash_elsewhere` returned True the upload no longer hashes what it is given;
    its `commit` then stores the content only once `confirm_hash` said it matched (size
    is still checked), and `confirm_hash(False)` discards the partial content.
    """

    def hash_elsewhere(self) -> bool:
        """Stop hashing here if possible (nothing held yet); True when it did."""
        ...

    def confirm_hash(self, matched: bool) -> None:
        """The caller's verdict on the whole content's hash."""
        ...


def as_spool_sharing(upload: Upload) -> SpoolSharing | None:
    """``upload`` as a `SpoolSharing` when it is one, else None.

    A method check, not ``isinstance`` on a runtime protocol: that costs tens of
    microseconds per call, and this runs for every node of every upload.
    """
    return cast("SpoolSharing", upload) if hasattr(upload, "share_spool") else None


def as_shared_verification(upload: Upload) -> SharedVerification | None:
    """``upload`` as a `SharedVerification` when it is one, else None (see above)."""
    if hasattr(upload, "hash_elsewhere") and hasattr(upload, "confirm_hash"):
        return cast("SharedVerification", upload)
    return None


class DeferredLogging(Protocol):
    """An `Upload` whose commit may leave logging what it stored until `log_stored`.

    A fan-out defers the gateway's location logging of all its nodes and then logs them
    at once, so that the gateway writes the key's location log once, not once per node.
    """

    def defer_logging(self) -> None:
        """From now on `Upload.commit` stores without logging (call before committing)."""
        ...

    async def log_stored(self) -> None:
        """Log what the commit stored; nothing when it did not store.

        Raises:
            StorageError: the log could not be written.
        """
        ...


def as_deferred_logging(upload: Upload) -> DeferredLogging | None:
    """``upload`` as a `DeferredLogging` when it is one, else None (see above)."""
    if hasattr(upload, "defer_logging") and hasattr(upload, "log_stored"):
        return cast("DeferredLogging", upload)
    return None


class OffsetProbe(Protocol):
    """A `Storage` that can tell where an upload would resume without starting one.

    Starting an upload takes locks and opens the partial file (on a cluster, on every
    node); a client asking only for the offset (p2phttp ``putoffset``) need not pay that.
    """

    async def upload_offset(
        self, key: Key, associated_file: str | None = None
    ) -> tuple[int | None, Others]:
        """``(None, others)`` when the content is already there, else ``(offset, ())``.

        Raises:
            StorageError: an upload could not start.
        """
        ...


async def upload_offset(
    storage: Storage, key: Key, associated_file: str | None = None
) -> tuple[int | None, Others]:
    """Where an upload of ``key`` to ``storage`` would resume: `OffsetProbe.upload_offset`.

    Backends without a probe are asked by starting an upload and leaving it unused.

    Raises:
        StorageError: an upload could not start.
    """
    probe = getattr(storage, "upload_offset", None)
    if probe is not None:
        return await cast("OffsetProbe", storage).upload_offset(key, associated_file)
    async with storage.upload(key, associated_file) as upload:
        already = upload.already_have
        if already is not None:
            return None, already
        return upload.offset, ()


class ContentLock(Protocol):
    """A held lock that keeps one key's content present until released."""

    async def release(self) -> None:
        """Release the lock (idempotent)."""
        ...


class Storage(Protocol):
    """A place that holds git-annex objects and answers for one repository UUID."""

    @property
    def uuid(self) -> RepoUUID:
        """The repository UUID this storage answers for."""
        ...

    async def checkpresent(self, key: Key) -> bool:
        """Tell whether the content of ``key`` is present.

        Raises:
            StorageError: presence cannot be determined.
        """
        ...

    def retrieve(self, key: Key, offset: int = 0) -> AbstractAsyncContextManager[ObjectSource]:
        """Open the content of ``key`` for reading from ``offset``.

        Raises:
            KeyNotPresent: the content is not here.
        """
        ...

    def upload(
        self, key: Key, associated_file: str | None = None
    ) -> AbstractAsyncContextManager[Upload]:
        """Start (or resume) an upload of ``key``; waits while another upload of it runs.

        ``associated_file`` is informational (preferred content may look at it).

        Raises:
            StorageError: the upload cannot start.
        """
        ...

    async def lock_content(self, key: Key) -> ContentLock:
        """Lock the content of ``key`` present (a drop proof for a client).

        Raises:
            KeyNotPresent: nothing to lock.
            ContentLocked: it is being removed.
        """
        ...

    async def remove(self, key: Key, *, before: int | None = None) -> Others:
        """Remove the content of ``key``; absent content is not an error.

        Args:
            key: the key to remove.
            before: only remove while `timestamp` is still below this value.

        Returns:
            Other UUIDs the content was removed from too (cluster nodes).

        Raises:
            ContentLocked: the content is locked (by a LOCKCONTENT or a retention time).
            PartialRemoval: it failed, but was removed from some other UUIDs.
            StorageError: the deadline passed or the removal failed.
        """
        ...

    async def timestamp(self) -> int:
        """The backend's monotonic clock in whole seconds (GETTIMESTAMP)."""
        ...
