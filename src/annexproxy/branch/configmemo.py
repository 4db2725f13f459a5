"""The resolved branch configuration, remembered between the views of one repository.

A server reads the configuration logs (clusters, trust, preferred content, ...) on
every request, each time through a fresh `BranchView`. `ConfigMemo` keeps what the last
read found: the configuration files as the branch tip holds them (while the tip stays,
no tree is walked again) and the `BranchConfig` parsed from the files as a reader sees
them (while none of them changed, in the branch, a journal or a sibling, nothing is
parsed again, and the same object is handed out). Journal files are still read on
every call: git-annex may change them at any time.

Safe to share between threads: state is replaced whole, never changed in place.
"""

from __future__ import annotations

from collections.abc import Callable

from annexproxy.branch.logs.snapshot import BranchConfig

Contents = tuple[bytes | None, ...]


class ConfigMemo:
    """The configuration files of the latest tip, and the latest resolved configuration."""

    def __init__(self) -> None:
        self._tip_files: tuple[str, dict[str, bytes | None]] | None = None
        self._last: tuple[Contents, BranchConfig] | None = None

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
