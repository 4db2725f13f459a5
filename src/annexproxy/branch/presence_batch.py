"""Location-log changes from the event loop, written in batches (group commit).

A gateway logs every node that gained or lost a key: a fan-out to three nodes makes three
changes to one location log within a few milliseconds, and concurrent clients make more.
`PresenceBatch` queues changes and writes them together, one journal write per key for
everything queued meanwhile, in arrival order. The file written is the one the changes
made one by one would leave (`Journal.record_presences`).

A journal write is a few small-file system calls, less than a trip to a worker thread
costs, so a batch is written on the event loop when the journal lock is free; only keys
whose write would wait for the lock (git-annex or our committer holds it) go to a worker
thread.
"""

from __future__ import annotations

import asyncio

from annexproxy.branch.journal import Journal
from annexproxy.errors import RepositoryError
from annexproxy.keys import Key


class PresenceBatch:
    """The queue of location-log changes of one journal, and its writer task."""

    def __init__(self, journal: Journal) -> None:
        """Write the changes to ``journal``."""
        self._journal = journal
        self._pending: dict[Key, _KeyChanges] = {}
        self._writer: asyncio.Task[None] | None = None

    async def record(self, key: Key, uuid: str, present: bool) -> None:
        """Log that ``uuid`` has ``key`` (or not); return once it is in the journal.

        A cancelled caller does not withdraw its change.

        Raises:
            UUIDFormatError: ``uuid`` is not a UUID (checked before queueing, so a bad
                change never fails another one).
            RepositoryError: the UUID is private here, or the journal cannot be written.
        """
        if self._journal.loggable_uuid(uuid) is None:
            return
        loop = asyncio.get_running_loop()
        queued = self._pending.get(key)
        if queued is None:
            queued = self._pending[key] = _KeyChanges(loop.create_future())
        queued.changes.append((uuid, present))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_all())
        await asyncio.shield(queued.written)

    async def _write_all(self) -> None:
        await asyncio.sleep(0)  # changes made in the same moment join the first batch
        while self._pending:
            batch, self._pending = self._pending, {}
            try:
                busy, failures = self._write(batch, wait=False)
                if busy:
                    waiting = {key: batch[key] for key in busy}
                    _, more = await asyncio.to_thread(self._write, waiting, wait=True)
                    failures.update(more)
            except BaseException:
                for queued in batch.values():
                    if not queued.written.done():
                        queued.written.cancel()
                raise
            for key, queued in batch.items():
                failure = failures.get(key)
                if failure is None:
                    queued.written.set_result(None)
                else:
                    queued.written.set_exception(failure)

    def _write(
        self, batch: dict[Key, _KeyChanges], *, wait: bool
    ) -> tuple[list[Key], dict[Key, Exception]]:
        """Write each key's changes.

        Returns:
            The keys not written because the journal lock was taken (only when ``wait``
            is False), and the error of each key whose write failed.
        """
        busy: list[Key] = []
        failures: dict[Key, Exception] = {}
        for key, queued in batch.items():
            try:
                written = self._journal.record_presences(key, queued.changes, wait=wait)
            except Exception as exc:  # the waiters of this key re-raise it
                failures[key] = exc
                continue
            if written is None:  # the lock was taken; a waiting write never says so
                if wait:
                    failures[key] = RepositoryError(f"{key}: the journal lock was not taken")
                else:
                    busy.append(key)
        return busy, failures


class _KeyChanges:
    """The changes queued for one key, and the future their callers wait on."""

    __slots__ = ("changes", "written")

    def __init__(self, written: asyncio.Future[None]) -> None:
        self.changes: list[tuple[str, bool]] = []
        self.written = written
