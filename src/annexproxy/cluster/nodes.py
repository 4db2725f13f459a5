"""Open a `Storage` for a proxied node from its address, and log its changes at the gateway.

A node given by a local path is opened directly (its objects, journal and locks: no
subprocess per request); a node behind an annex+http server with our HTTP client; a
node over ssh is reached with our P2P client through
``ssh HOST git-annex-shell p2pstdio DIR GATEWAYUUID --uuid NODEUUID`` (the same command
git-annex runs). `GatewayLogged` wraps a node so that the gateway's own location log
records what the node gained or lost (clusters.md 6.1 and 9).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from annexproxy.branch.paths import key_log_path
from annexproxy.cluster.topology import NodeAddress, is_local_url
from annexproxy.errors import ConfigError, PartialRemoval
from annexproxy.keys import Key
from annexproxy.server.repository import LocalRepository, open_repository
from annexproxy.special.chunking import CHUNK_LOG, chunk_size_of
from annexproxy.storage.base import (
    ContentLock,
    ObjectSource,
    Others,
    Storage,
    Upload,
    as_shared_verification,
    as_spool_sharing,
    upload_offset,
)
from annexproxy.storage.p2pnode import P2PNodeStorage, command_opener
from annexproxy.uuids import RepoUUID, is_cluster_uuid

if TYPE_CHECKING:
    from annexproxy.cluster.export import ExportState
    from annexproxy.special.backend import LocalSettings
    from annexproxy.special.storage import ChunkLog

Recorder = Callable[[Key, str, bool], Awaitable[None]]


def _ssh_target(url: str) -> tuple[str, str, str | None]:
    """Split an ssh URL into (host with user, path, port)."""
    if url.startswith(("ssh://", "git+ssh://", "ssh+git://")):
        rest = url.split("://", 1)[1]
        hostpart, _, path = rest.partition("/")
        port = None
        if ":" in hostpart:
            hostpart, port = hostpart.rsplit(":", 1)
        path = "/" + path
        if path.startswith("/~"):
            path = path[1:]
        return hostpart, path, port
    host, _, path = url.partition(":")
    return host, path, None


def ssh_command(address: NodeAddress, gateway: RepoUUID) -> list[str]:
    """The command that opens a P2P connection to an ssh node (as git-annex runs it)."""
    host, path, port = _ssh_target(address.url)
    if os.environ.get("GIT_ANNEX_USE_GIT_SSH") and os.environ.get("GIT_SSH_COMMAND"):
        ssh = shlex.split(os.environ["GIT_SSH_COMMAND"])
    else:
        ssh = ["ssh"]
    if port:
        ssh += ["-p", port]
    remote = " ".join(
        [
            address.shell,
            "'p2pstdio'",
            shlex.quote(path),
            shlex.quote(gateway),
            "--uuid",
            shlex.quote(address.uuid),
        ]
    )
    return [*ssh, *address.ssh_options, host, remote]


def _local_path(url: str, base: Path) -> Path:
    path = Path(url.removeprefix("file://")).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


class RepositoryChunkLog:
    """Chunk logs (``<key>.log.cnk``) kept in the gateway repository's branch."""

    def __init__(self, repository: LocalRepository) -> None:
        """Read and write through ``repository``'s journal."""
        self._repository = repository

    def _path(self, key: Key) -> str:
        branchhash1 = self._repository.journal.settings.branchhash1
        return key_log_path(key, CHUNK_LOG, branchhash1=branchhash1)

    async def read(self, key: Key) -> bytes:
        """The chunk log of ``key``."""
        return await self._repository.read_log(self._path(key))

    async def change(self, key: Key, change: Callable[[bytes], bytes]) -> None:
        """Rewrite the chunk log of ``key`` under the journal lock."""
        await self._repository.change_log(self._path(key), change)


async def open_special(
    address: NodeAddress,
    stack: AsyncExitStack,
    *,
    base: Path,
    chunk_log: ChunkLog | None,
    annexdir: Path | None = None,
    local: LocalSettings | None = None,
    exports: ExportState | None = None,
) -> Storage:
    """Open a special remote node (directory, S3, external) as a storage.

    Uploads to it lock ``<annexdir>/transfer/upload/<uuid>/lck.<keyfile>`` (git-annex's
    upload transfer lock) when the gateway's ``annexdir`` is given. ``local`` is the
    gateway's settings (fsync, annex.diskreserve). An ``exporttree=yes`` remote keeps
    keys under the file names of its current export (``exports``).

    Raises:
        ConfigError: its type is not supported or its configuration is incomplete.
    """
    # Imported here: a gateway without special remotes need not load their code.
    from annexproxy.special.exportbackend import ExportTreeBackend
    from annexproxy.special.registry import open_backend, open_export_actions
    from annexproxy.special.storage import SpecialRemoteStorage

    special = address.special
    assert special is not None
    lock_dir = None if annexdir is None else annexdir / "transfer" / "upload" / address.uuid
    if special.exporttree:
        if exports is None:
            raise ConfigError(f"special remote {special.name!r} is an export: open it at a gateway")
        actions = open_export_actions(special, stack, base=base)
        exported = ExportTreeBackend(actions, exports.locator(address.uuid))
        return SpecialRemoteStorage(address.uuid, exported, lock_dir=lock_dir)
    backend = await open_backend(special, stack, base=base, local=local)
    return SpecialRemoteStorage(
        address.uuid,
        backend,
        chunk_size=chunk_size_of(special),
        chunk_log=chunk_log,
        lock_dir=lock_dir,
    )


async def open_node(
    address: NodeAddress,
    gateway: RepoUUID,
    stack: AsyncExitStack,
    *,
    base: Path,
    bypass: tuple[RepoUUID, ...] = (),
    chunk_log: ChunkLog | None = None,
    annexdir: Path | None = None,
    local: LocalSettings | None = None,
    exports: ExportState | None = None,
) -> Storage:
    """Open the node's storage; its resources are closed with ``stack``.

    A relative path is taken relative to the gateway repository ``base`` (as git does).
    ``bypass`` lists the gateways the node must not route through (sent as BYPASS).
    A special remote's chunk logs are kept in ``chunk_log`` (the gateway's branch), its
    upload locks below the gateway's ``annexdir``; it obeys the gateway's ``local``
    settings.

    Raises:
        ConfigError: the node's annex+http URL is malformed.
        RepositoryError: a local node is not a usable repository.
    """
    if address.special is not None:
        return await open_special(
            address,
            stack,
            base=base,
            chunk_log=chunk_log,
            annexdir=annexdir,
            local=local,
            exports=exports,
        )
    url = address.url
    if is_local_url(url) and not address.annex_url:
        path = _local_path(url, base)
        repository = await stack.enter_async_context(open_repository(path, commit_after=1.0))
        return repository.storage
    if address.annex_url:
        # git-annex's own gateway cannot proxy to annex+http nodes; we can (issue 6).
        # Imported here: aiohttp's client costs 0.3 s of start-up that ssh sessions
        # (one annexproxy-shell process each) should not pay when no node needs it.
        from annexproxy.storage.httpnode import HttpNodeStorage

        http = HttpNodeStorage(address.uuid, address.annex_url, client_uuid=gateway, bypass=bypass)
        stack.push_async_callback(http.aclose)
        return http
    opener = command_opener(
        ssh_command(address, gateway), expected_uuid=address.uuid, bypass=bypass
    )
    node = P2PNodeStorage(address.uuid, opener)
    stack.push_async_callback(node.aclose)
    return node


class _LoggedUpload:
    def __init__(self, inner: Upload, on_stored: Callable[[Others], Awaitable[None]]) -> None:
        self._inner = inner
        self._on_stored = on_stored
        self._deferred = False
        self._unlogged: Others | None = None

    @property
    def offset(self) -> int:
        return self._inner.offset

    @property
    def already_have(self) -> Others | None:
        return self._inner.already_have

    async def write(self, data: bytes) -> None:
        await self._inner.write(data)

    def hash_elsewhere(self) -> bool:
        inner = as_shared_verification(self._inner)
        return inner is not None and inner.hash_elsewhere()

    def share_spool(self, group: object) -> int | None:
        inner = as_spool_sharing(self._inner)
        return None if inner is None else inner.share_spool(group)

    def confirm_hash(self, matched: bool) -> None:
        inner = as_shared_verification(self._inner)
        if inner is not None:
            inner.confirm_hash(matched)

    async def commit(self, *, sender_valid: bool) -> Others:
        others = await self._inner.commit(sender_valid=sender_valid)
        if self._deferred:
            self._unlogged = others
        else:
            await self._on_stored(others)
        return others

    def defer_logging(self) -> None:
        self._deferred = True

    async def log_stored(self) -> None:
        unlogged, self._unlogged = self._unlogged, None
        if unlogged is not None:
            await self._on_stored(unlogged)


class GatewayLogged:
    """A node's storage whose content changes are also logged at the gateway."""

    def __init__(self, inner: Storage, record: Recorder) -> None:
        """Wrap ``inner``; ``record(key, uuid, present)`` writes the gateway's log."""
        self._inner = inner
        self._record = record

    @property
    def uuid(self) -> RepoUUID:
        """The node's UUID."""
        return self._inner.uuid

    async def checkpresent(self, key: Key) -> bool:
        """Ask the node."""
        return await self._inner.checkpresent(key)

    def retrieve(self, key: Key, offset: int = 0) -> AbstractAsyncContextManager[ObjectSource]:
        """Read from the node."""
        return self._inner.retrieve(key, offset)

    @asynccontextmanager
    async def upload(self, key: Key, associated_file: str | None = None) -> AsyncIterator[Upload]:
        """Upload to the node; a successful commit is logged at the gateway."""

        async def stored(others: Others) -> None:
            for uuid in (self._inner.uuid, *others):
                if not is_cluster_uuid(uuid):  # a relay to another gateway answers for one
                    await self._record(key, uuid, True)

        async with self._inner.upload(key, associated_file) as upload:
            yield _LoggedUpload(upload, stored)

    async def upload_offset(
        self, key: Key, associated_file: str | None = None
    ) -> tuple[int | None, Others]:
        """Ask the node where an upload would resume."""
        return await upload_offset(self._inner, key, associated_file)

    async def lock_content(self, key: Key) -> ContentLock:
        """Lock on the node."""
        return await self._inner.lock_content(key)

    async def remove(self, key: Key, *, before: int | None = None) -> Others:
        """Remove from the node; log it gone at the gateway."""
        try:
            others = await self._inner.remove(key, before=before)
        except PartialRemoval as exc:  # a cluster (relay) removed it from some nodes
            for uuid in exc.others:
                if not is_cluster_uuid(uuid):
                    await self._record(key, uuid, False)
            raise
        for uuid in (self._inner.uuid, *others):
            if not is_cluster_uuid(uuid):
                await self._record(key, uuid, False)
        return others

    async def timestamp(self) -> int:
        """The node's clock."""
        return await self._inner.timestamp()
