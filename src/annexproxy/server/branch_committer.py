"""Commit a served repository's journal to its git-annex branch promptly.

git-annex's ``p2phttp`` commits its journal once no change has been in progress for a
second, so under steady load it never does. `BranchCommitter` commits about `idle`
seconds after changes stop, at most `max_delay` after the first one, and once more when
the server closes, so other users see uploads and removals with a plain ``git fetch``.
Every commit rewrites the branch's root tree and the trees above each changed log, so
under steady load a longer `max_delay` saves work. Commits run in a worker thread: they
wait for ``journal.lck``, which git-annex may hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from annexproxy.branch.commit import commit_journal
from annexproxy.branch.git_plumbing import GitPlumbing
from annexproxy.branch.journal import Journal
from annexproxy.errors import AnnexProxyError

log = logging.getLogger("annexproxy.branch")


class BranchCommitter:
    """Debounced journal commits for one repository."""

    def __init__(
        self,
        plumbing: GitPlumbing,
        journal: Journal,
        *,
        idle: float | None = 1.0,
        max_delay: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Commit ``idle`` s after the last change (None: only when closed)."""
        self._plumbing = plumbing
        self._journal = journal
        self._idle = idle
        self._max_delay = max_delay
        self._clock = clock
        self._first: float | None = None
        self._last = 0.0
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def changed(self) -> None:
        """Note a journal change; a commit follows once changes pause."""
        now = self._clock()
        self._last = now
        if self._first is None:
            self._first = now
        if self._idle is not None and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._wait_and_commit())

    async def _wait_and_commit(self) -> None:
        assert self._idle is not None
        while self._first is not None:
            due = min(self._last + self._idle, self._first + self._max_delay)
            delay = due - self._clock()
            if delay <= 0:
                await self.commit()
                return
            await asyncio.sleep(delay)

    async def commit(self) -> None:
        """Commit the journal now (changes made meanwhile are picked up next time)."""
        async with self._lock:
            self._first = None
            try:
                result = await asyncio.to_thread(commit_journal, self._plumbing, self._journal)
            except AnnexProxyError as exc:
                log.warning("could not commit the git-annex journal: %s", exc)
                return
            if result.commit is not None:
                log.info("committed %d log(s) to git-annex", len(result.committed_files))

    async def aclose(self) -> None:
        """Stop waiting and commit whatever the journal holds."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.commit()
