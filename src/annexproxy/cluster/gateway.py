"""The storages one gateway repository serves, by UUID: its own, proxied nodes, clusters.

`GatewayTargets.target` answers the routing question of wire.md 4.2: the repository's own
UUID gives its object store; a proxied node's UUID gives that node (its changes logged at
the gateway too); a cluster UUID gives a `ClusterStorage` over the reachable nodes and the
other gateways of the cluster that the client's BYPASS list does not exclude. What
is proxied is read from the git config and the branch (`build_topology`) and read again
when an unknown UUID is asked for, so `updateproxy`, `updatecluster` and pushed branch
changes take effect without a restart. Nodes are opened on first use and stay open.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from annexproxy.cluster.clusterstore import ClusterStorage, Wants
from annexproxy.cluster.export import ExportState
from annexproxy.cluster.health import NodeHealth
from annexproxy.cluster.nodes import GatewayLogged, RepositoryChunkLog, open_node
from annexproxy.cluster.topology import NodeAddress, Topology, build_topology
from annexproxy.errors import AnnexProxyError
from annexproxy.keys import Key
from annexproxy.server.repository import LocalRepository
from annexproxy.special.backend import LocalSettings
from annexproxy.storage.base import Storage
from annexproxy.uuids import RepoUUID

if TYPE_CHECKING:
    from annexproxy.server.wants import Wants as PreferredWants

log = logging.getLogger("annexproxy.gateway")
REFRESH_INTERVAL = 2.0


class GatewayTargets:
    """Routing from a requested UUID to the storage that answers for it."""

    def __init__(
        self,
        local: LocalRepository,
        stack: AsyncExitStack,
        *,
        wants: Wants | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Serve ``local`` and what it proxies; node resources are closed with ``stack``."""
        self._local = local
        self._stack = stack
        self._wants = wants
        self._clock = clock
        self._topology: Topology | None = None
        self._loaded_at = float("-inf")
        self._nodes: dict[RepoUUID, Storage] = {}
        self._open_errors: dict[RepoUUID, str] = {}  # why a node could not be opened
        self._relays: dict[tuple[RepoUUID, RepoUUID, tuple[RepoUUID, ...]], Storage] = {}
        self._health = NodeHealth()
        self._lock = asyncio.Lock()
        self._preferred: PreferredWants | None = None
        self._preferred_at = float("-inf")
        self.exports = ExportState(local)

    @property
    def local(self) -> LocalRepository:
        """The gateway repository."""
        return self._local

    @property
    def own(self) -> RepoUUID:
        """The gateway repository's UUID."""
        return self._local.storage.uuid

    def _read_topology(self) -> Topology:
        view = self._local.view()
        return build_topology(self._local.plumbing.config_entries(), view.config())

    async def topology(self, *, refresh: bool = False) -> Topology:
        """The current topology (read again when asked to and the last read is old).

        Raises:
            RepositoryError: the config or branch cannot be read.
        """
        now = self._clock()
        if self._topology is None or (refresh and now - self._loaded_at >= REFRESH_INTERVAL):
            self._topology = await asyncio.to_thread(self._read_topology)
            self._loaded_at = now
        return self._topology

    async def target(self, uuid: str, bypass: Sequence[str] = ()) -> Storage | None:
        """The storage serving ``uuid``, or None if this gateway does not serve it.

        ``bypass`` is the client's BYPASS list: other gateways of a cluster listed there
        are not routed through (wire.md 4.7).

        Raises:
            RepositoryError: the gateway's config or branch cannot be read.
        """
        if uuid == self.own:
            return self._local.storage
        topology = await self.topology()
        if uuid not in topology.nodes and uuid not in topology.clusters:
            topology = await self.topology(refresh=True)
        if uuid in topology.nodes:
            return await self._node(RepoUUID(uuid), topology)
        if uuid in topology.clusters:
            return await self._cluster(RepoUUID(uuid), topology, tuple(map(RepoUUID, bypass)))
        return None

    async def _node(self, uuid: RepoUUID, topology: Topology) -> Storage | None:
        async with self._lock:
            if uuid not in self._nodes:
                try:
                    inner = await open_node(
                        topology.nodes[uuid],
                        self.own,
                        self._stack,
                        base=self._local.path,
                        chunk_log=RepositoryChunkLog(self._local),
                        annexdir=self._local.journal.annexdir,
                        local=self._local_settings(),
                        exports=self.exports,
                    )
                except AnnexProxyError as exc:
                    log.warning("cannot open node %s: %s", topology.describe(uuid), exc)
                    self._open_errors[uuid] = str(exc)
                    return None
                self._open_errors.pop(uuid, None)
                self._nodes[uuid] = GatewayLogged(inner, self._record)
            return self._nodes[uuid]

    def _local_settings(self) -> LocalSettings:
        """What the gateway repository's git config asks of special remote backends."""
        config = self._local.storage.layout.config
        return LocalSettings(fsync=config.fsync, disk_reserve=config.disk_reserve)

    async def _cluster(
        self, uuid: RepoUUID, topology: Topology, bypass: tuple[RepoUUID, ...]
    ) -> Storage:
        nodes: dict[RepoUUID, Storage] = {}
        for node in sorted(topology.clusters[uuid]):
            storage = await self._node(node, topology)
            if storage is not None:
                nodes[node] = storage
        relays: dict[RepoUUID, Storage] = {}
        # Ours first, then the client's: what the other gateway passes on (wire.md 4.7).
        onward = tuple(dict.fromkeys((self.own, *bypass)))
        for address in topology.relays.get(uuid, ()):
            if address.via is None or address.via in bypass:
                continue
            relay = await self._relay(address, onward)
            if relay is not None:
                relays[address.via] = relay
        return ClusterStorage(
            uuid,
            nodes,
            costs={u: topology.nodes[u].cost for u in nodes},
            locations=self._locations,
            wants=self._wants or self._preferred_wants,
            relays=relays,
            relayed={u: via for u in nodes if (via := topology.nodes[u].via) is not None},
            health=self._health,
        )

    async def _relay(self, address: NodeAddress, bypass: tuple[RepoUUID, ...]) -> Storage | None:
        """The cluster as another gateway serves it, told to bypass ``bypass``."""
        assert address.via is not None
        slot = (address.uuid, address.via, bypass)
        async with self._lock:
            if slot not in self._relays:
                try:
                    inner = await open_node(
                        address, self.own, self._stack, base=self._local.path, bypass=bypass
                    )
                except AnnexProxyError as exc:
                    log.warning("cannot reach gateway %s: %s", address.name, exc)
                    return None
                self._relays[slot] = GatewayLogged(inner, self._record)
            return self._relays[slot]

    async def _record(self, key: Key, uuid: str, present: bool) -> None:
        """Log a node's change at the gateway, and tell the placement engine."""
        await self._local.record(key, uuid, present)
        if self._preferred is not None:
            self._preferred.note_location(key, RepoUUID(uuid), present=present)

    async def wants(self, node: RepoUUID, key: Key, associated_file: str | None) -> bool:
        """Whether ``node``'s preferred content wants ``key`` (as file ``associated_file``)."""
        return await self._preferred_wants(node, key, associated_file)

    async def _preferred_wants(self, node: RepoUUID, key: Key, associated_file: str | None) -> bool:
        """Whether ``node``'s preferred content wants ``key``, as git-annex's gateway asks.

        The engine is built on first use and caught up with the branch at most every
        `REFRESH_INTERVAL` seconds, so changes to preferred content, groups or maxsize
        (made here or pushed by a client) take effect without a restart.
        """
        # Imported on first use: the evaluator is not needed by sessions that never fan out.
        from annexproxy.server.wants import Wants as PreferredWants

        now = self._clock()
        if self._preferred is None:
            self._preferred = PreferredWants(self._local.plumbing, attributes=False)
            self._stack.callback(self._preferred.close)
            self._preferred_at = now
        elif now - self._preferred_at >= REFRESH_INTERVAL:
            self._preferred.refresh()
            self._preferred_at = now
        return self._preferred.want_get(node, key, associated_file)

    async def _locations(self, key: Key) -> Sequence[str]:
        # On the event loop: a journal file and a tree lookup or two, less than a trip
        # to a worker thread costs (making the view reads the refs here anyway).
        return self._local.view().present(key)

    async def refusal(self, uuid: str) -> str:
        """Why ``uuid`` is not served, in git-annex-shell's words (wire.md 3.1).

        A proxied node that could not be opened (an unsupported special remote type, a
        missing setting) is refused with the reason.
        """
        topology = await self.topology(refresh=True)
        if (error := self._open_errors.get(RepoUUID(uuid))) is not None:
            return f"cannot proxy to repository {topology.describe(uuid)}: {error}"
        listed = {e.uuid for e in self._local.view().config().proxies.get(self.own, ())}
        if uuid in listed:
            return f"not configured to proxy for repository {topology.describe(uuid)}"
        return f"expected repository UUID {uuid} but found UUID {self.own}"
