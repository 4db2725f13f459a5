"""The resolved branch configuration, remembered between the views of one repository.

A server reads the configuration logs (clusters, trust, preferred content, ...) on
every request, each time through a fresh `BranchView`. `ConfigMemo` keeps what the last
read found: the configuration files as the branch tip holds them (while the tip stays,
no tree is walked again) and the `BranchConfig` parsed from the files as a reader sees
them (while none of them changed, in the branch, a journal or a sibling, nothing is
parsed again, and the same object is handed out).

The files as a reader sees them (journal and siblings included) are read again when the
tip, the unmerged siblings or this process's journal writes of top-level files changed,
and otherwise at most every `max_age` seconds: git-annex run by hand in the repository
may change a configuration log in the journal at any time, and a second's delay in
seeing that is far fresher than git-annex's own server, which reads its configuration
once. (Without this, every request looked for 26 journal files that are almost never
there.)

Safe to share between threads: state is replaced whole, never changed in place.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

from annexproxy.branch.logs.snapshot import BranchConfig

Contents = tuple[bytes | None, ...]


class ConfigMemo:
    """The configuration files of the latest tip, and the latest resolved configuration."""

    def __init__(self, max_age: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        """Read the journal's configuration files again after ``max_age`` s at the latest."""
        self._max_age = max_age
        self._clock = clock
        self._tip_files: tuple[str, dict[str, bytes | None]] | None = None
        self._last: tuple[Contents, BranchConfig] | None = None
        self._read: tuple[Hashable, float, Contents] | None = None

    def contents(self, state: Hashable, read: Callable[[], Contents]) -> Contents:
        """The files as read in ``state`` within `max_age`, else ``read()`` (and kept).

        ``state`` is whatever must be equal for an earlier read to stand: the tip, the
        unmerged siblings, the journal's count of top-level writes.
        """
        now = self._clock()
        held = self._read
        if held is not None and held[0] == state and now - held[1] < self._max_age:
            return held[2]
        contents = read()
        self._read = (state, now, contents)
        return contents

    def at_tip(self, tip: str, path: str, read: Callable[[], bytes | None]) -> bytes | None:
        """The file ``path`` in commit ``tip``: remembered, else ``read()`` (and kept)."""
        held = self._tip_files
        if held is None or held[0] != tip:
            held = (tip, {})
            self._tip_files = held
        files = held[1]
        if path in files:
            return files[path]
        content = read()
        files[path] = content
        return content

    def resolve(self, contents: Contents) -> BranchConfig:
        """The configuration of these files (`CONFIG_PATHS` order), parsed if new."""
        last = self._last
        if last is not None and last[0] == contents:
            return last[1]
        config = BranchConfig.from_contents(contents)
        self._last = (contents, config)
        return config
