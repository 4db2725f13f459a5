"""The repositories a server serves, by UUID: one repository, or every one below directories.

`ServedRepositories` opens each repository once (object store wired to its journal, see
`annexproxy.server.repository`) and keeps it open for the server's lifetime. With
``--directory`` it finds git-annex repositories below the given directories (nested
folders included, not inside other repositories, symlinks not followed) and looks again,
at most once per `RESCAN_INTERVAL`, when asked for a UUID it does not know.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from annexproxy.cluster.gateway import GatewayTargets
from annexproxy.errors import AnnexProxyError, ConfigError
from annexproxy.server.repository import open_repository, read_repository_uuid
from annexproxy.storage.base import Storage

RESCAN_INTERVAL = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ServedRepository:
    """One repository being served, or a node or cluster it proxies (``storage``)."""

    path: Path
    storage: Storage


def find_repositories(top: Path) -> Iterator[Path]:
    """Yield git-annex repositories at or below ``top`` (not inside other repositories)."""
    pending = [top]
    while pending:
        directory = pending.pop()
        if read_repository_uuid(directory) is not None and _is_repository_top(directory):
            yield directory
            continue
        with contextlib.suppress(OSError), os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False) and entry.name != ".git":
                    pending.append(Path(entry.path))


def _is_repository_top(directory: Path) -> bool:
    # A non-bare repository has .git here; a bare one has its config and objects here.
    return (directory / ".git").exists() or (
        (directory / "config").is_file() and (directory / "objects").is_dir()
    )


class ServedRepositories:
    """Repositories by UUID, opened on demand and closed with the server."""

    def __init__(
        self,
        *,
        repositories: Sequence[Path] = (),
        directories: Sequence[Path] = (),
        clock: Callable[[], float] = time.monotonic,
        commit_after: float | None = 1.0,
    ) -> None:
        """Serve the given repositories and every repository below ``directories``.

        Location changes are committed to each repository's git-annex branch
        ``commit_after`` seconds after they pause.
        """
        self._commit_after = commit_after
        self._paths = [Path(p).resolve() for p in repositories]
        self._directories = [Path(d).resolve() for d in directories]
        self._clock = clock
        self._by_uuid: dict[str, ServedRepository] = {}
        self._targets: dict[Path, GatewayTargets] = {}
        self._stack = AsyncExitStack()
        self._last_scan = float("-inf")

    async def __aenter__(self) -> ServedRepositories:
        await self._scan(force=True)
        if not self._by_uuid:
            where = ", ".join(str(p) for p in [*self._paths, *self._directories])
            raise ConfigError(f"no git-annex repository to serve in {where}; run `git annex init`")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    def all(self) -> list[ServedRepository]:
        """Every repository served so far."""
        return list(self._by_uuid.values())

    async def get(self, uuid: str, bypass: Sequence[str] = ()) -> ServedRepository | None:
        """The repository, proxied node or cluster with ``uuid``.

        Unknown UUIDs make the directories be scanned again (at most once per interval)
        and each gateway's proxy configuration be read again. ``bypass`` lists gateways
        a cluster must not route through (the request's ``bypass`` parameters).
        """
        found = self._by_uuid.get(uuid)
        if found is None and self._directories:
            await self._scan(force=False)
            found = self._by_uuid.get(uuid)
        if found is not None:
            return found
        for path, targets in self._targets.items():
            storage = await targets.target(uuid, bypass)
            if storage is not None:
                return ServedRepository(path=path, storage=storage)
        return None

    def gateway(self, path: Path) -> GatewayTargets | None:
        """The routing of the repository served from ``path`` (None: not served)."""
        return self._targets.get(path)

    async def refresh(self) -> None:
        """Look for new repositories below the directories (at most once per interval).

        Raises:
            RepositoryError: an explicitly given repository cannot be opened.
        """
        if self._directories:
            await self._scan(force=False)

    async def _scan(self, *, force: bool) -> None:
        now = self._clock()
        if not force and now - self._last_scan < RESCAN_INTERVAL:
            return
        self._last_scan = now
        known = {r.path for r in self._by_uuid.values()}
        candidates = list(self._paths)
        for top in self._directories:
            candidates.extend(find_repositories(top))
        for path in candidates:
            if path in known:
                continue
            try:
                local = await self._stack.enter_async_context(
                    open_repository(path, commit_after=self._commit_after)
                )
            except AnnexProxyError:
                if path in self._paths:
                    raise
                continue
            storage = local.storage
            self._by_uuid.setdefault(storage.uuid, ServedRepository(path=path, storage=storage))
            self._targets[path] = GatewayTargets(local, self._stack)
