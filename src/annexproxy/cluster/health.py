"""Which cluster nodes failed recently, so that reads try healthy nodes first.

A node that failed a request is *suspect* for `SUSPECT_SECONDS` (or until it succeeds
again): GET and CHECKPRESENT still use it, but after the healthy nodes that have the
key, so one dead node does not cost every request a failed attempt. Shared by all
requests of one gateway. Pure bookkeeping: the clock is injected.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from annexproxy.uuids import RepoUUID

SUSPECT_SECONDS = 30.0


class NodeHealth:
    """Recent failures per node."""

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, window: float = SUSPECT_SECONDS
    ) -> None:
        """Forget a failure after ``window`` seconds of ``clock``."""
        self._clock = clock
        self._window = window
        self._failed_at: dict[RepoUUID, float] = {}

    def failed(self, uuid: RepoUUID) -> None:
        """Note that ``uuid`` failed a request just now."""
        self._failed_at[uuid] = self._clock()

    def succeeded(self, uuid: RepoUUID) -> None:
        """Note that ``uuid`` answered a request: it is healthy again."""
        self._failed_at.pop(uuid, None)

    def suspect(self, uuid: RepoUUID) -> bool:
        """Whether ``uuid`` failed within the window."""
        since = self._failed_at.get(uuid)
        if since is None:
            return False
        if self._clock() - since >= self._window:
            del self._failed_at[uuid]
            return False
        return True
