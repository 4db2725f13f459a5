"""A cluster as one `Storage`, with git-annex's gateway semantics (clusters.md 6, wire.md 4).

* CHECKPRESENT / GET: the nodes the gateway's location log says have the key, cheapest
  first; GET falls back to the next node when one fails (git-annex's gateway gives up).
* PUT: fan-out to the nodes without the key whose preferred content wants it (or, when
  none wants it, all nodes without it; when every node has it, all nodes). The client's
  bytes stream to every chosen node at once, each from its own resume offset; a node that
  fails is dropped and the others go on. The reply lists the nodes that stored it.
* REMOVE: every node, concurrently; success only when all succeeded, else the nodes that
  did remove are reported (FAILURE-PLUS). A deadline on the gateway's clock is translated
  to each node's clock.
* LOCKCONTENT: never (clients lock single nodes). The cluster UUID is never logged.
* Other gateways of the cluster (*relays*, clusters.md 7) take part in uploads when the
  cluster's own preferred content wants the key, and in every removal; they answer for
  the cluster UUID, so only the nodes their -PLUS replies name count. Nodes reached
  through them (*relayed* nodes) serve reads only: writes reach them through their relay.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from annexproxy.cluster.health import NodeHealth
from annexproxy.errors import (
    KeyNotPresent,
    PartialRemoval,
    StorageError,
    VerificationFailed,
)
from annexproxy.keys import Key
from annexproxy.storage.base import (
    ContentLock,
    ObjectSource,
    Others,
    SharedVerification,
    Storage,
    Upload,
    as_deferred_logging,
    as_shared_verification,
    as_spool_sharing,
    upload_offset,
)
from annexproxy.storage.hashing import Verifier, verifier_for
from annexproxy.uuids import RepoUUID

log = logging.getLogger("annexproxy.cluster")

_THREAD_HASH = 1 << 16  # hash pieces at least this big in a worker thread


def _quiet(task: asyncio.Future[None]) -> None:
    """Collect the outcome of an abandoned write, so that nothing is logged for it."""
    if not task.cancelled():
        task.exception()


Locations = Callable[[Key], Awaitable[Sequence[str]]]
Wants = Callable[[RepoUUID, Key, "str | None"], Awaitable[bool]]

_T = TypeVar("_T")


def _sort_answers(
    answers: Iterable[tuple[_T, RepoUUID, bool, Others | None]],
) -> tuple[list[_T], Others]:
    """The nodes of an upload that lack the key, and the holders the others name.

    Each answer is ``(what to keep of a node that lacks the key, its UUID, whether it is
    a relay, the holders it names when it already has the key, else None)``. A relay
    answers for the cluster UUID, so only the nodes it names are holders.
    """
    lacking: list[_T] = []
    holders: set[RepoUUID] = set()
    for kept, uuid, relay, already in answers:
        if already is None:
            lacking.append(kept)
        else:
            holders.update(already if relay else (uuid, *already))
    return lacking, tuple(sorted(holders))


@dataclass(slots=True)
class _Leg:
    """One node's part of a fan-out upload."""

    uuid: RepoUUID
    upload: Upload
    failed: BaseException | None = None
    relay: bool = False  # another gateway: its own UUID (the cluster's) is not a holder


@dataclass(slots=True)
class ClusterUpload:
    """A fan-out upload to several nodes."""

    key: Key
    legs: list[_Leg]
    already: Others | None = None
    _offset: int = 0
    _received: int = field(default=0)
    verifier: Verifier | None = None
    """Set when nodes left hashing to the fan-out: the content is hashed once, here."""
    leg_timeout: float = 60.0
    """Seconds a node may take to accept one piece before it is dropped from the upload."""
    shared: list[SharedVerification] = field(default_factory=list)
    _piece_limit: int | None = None

    def hash_once(self) -> None:
        """Hash here, once, for every node that can leave hashing to us (from offset 0)."""
        if self._offset != 0 or self._received:
            return
        verifier = verifier_for(self.key)
        if verifier is None:
            return
        for leg in self.legs:
            upload = as_shared_verification(leg.upload)
            if upload is not None and upload.hash_elsewhere():
                self.shared.append(upload)
        if self.shared:
            self.verifier = verifier

    def share_spools(self) -> None:
        """Let nodes that spool (external special remotes) keep one spool for all.

        Every leg that starts from offset 0 is fed the same bytes here, so a spool
        written for one of them holds what each other would have written. Legs are fed
        in step, piece by piece, and pieces are cut below the smallest chunk size of
        the sharing legs: a leg then never completes (and frees) a chunk's spool before
        the others have opened it.
        """
        if self._received:
            return
        group = object()
        for leg in self.legs:
            sharing = as_spool_sharing(leg.upload)
            if sharing is None or leg.upload.offset != 0:
                continue
            limit = sharing.share_spool(group)
            if limit is not None and limit < (self._piece_limit or sys.maxsize):
                self._piece_limit = limit

    @property
    def offset(self) -> int:
        """The smallest resume offset among the nodes."""
        return self._offset

    @property
    def already_have(self) -> Others | None:
        """Every chosen node already has the key: these nodes."""
        return self.already

    def _live(self) -> list[_Leg]:
        return [leg for leg in self.legs if leg.failed is None]

    async def write(self, data: bytes) -> None:
        """Stream ``data`` to every live node, each from its own offset."""
        if self._piece_limit is not None and len(data) > self._piece_limit:
            for start in range(0, len(data), self._piece_limit):
                await self._write(data[start : start + self._piece_limit])
            return
        await self._write(data)

    async def _write(self, data: bytes) -> None:
        start = self._offset + self._received
        self._received += len(data)

        async def feed(leg: _Leg) -> None:
            skip = leg.upload.offset - start
            piece = data[skip:] if skip > 0 else data
            if not piece:
                return
            task = asyncio.ensure_future(leg.upload.write(piece))
            done, _ = await asyncio.wait({task}, timeout=self.leg_timeout)
            if not done:
                # A stalled node must not hold up the others: drop it, and let its
                # write end (or fail) on its own when its connection is closed.
                task.add_done_callback(_quiet)
                leg.failed = StorageError(
                    f"node {leg.uuid} took no data for {self.leg_timeout:g} s; dropped"
                )
                log.warning("%s", leg.failed)
                return
            try:
                task.result()
            except StorageError as exc:
                log.warning("node %s dropped from upload of %s: %s", leg.uuid, self.key, exc)
                leg.failed = exc

        async with asyncio.TaskGroup() as group:
            if self.verifier is not None:
                if len(data) >= _THREAD_HASH:  # hashlib lets go of the GIL: in parallel
                    group.create_task(asyncio.to_thread(self.verifier.update, data))
                else:
                    self.verifier.update(data)
            for leg in self._live():
                group.create_task(feed(leg))
        if not self._live():
            raise StorageError(f"every node failed while receiving {self.key}")

    async def commit(self, *, sender_valid: bool) -> Others:
        """Commit on every live node; return the nodes (and their -PLUS) that stored it.

        Raises:
            VerificationFailed: no node stored it.
        """
        stored: list[RepoUUID] = []
        if self.verifier is not None:
            matched = self.verifier.matches()
            for upload in self.shared:
                upload.confirm_hash(matched)
            if not matched:
                raise VerificationFailed(
                    f"{self.key}: the content's hash is {self.verifier.hexdigest()}; send it again",
                    key=str(self.key),
                    expected=self.verifier.expected,
                    got=self.verifier.hexdigest(),
                )

        holders: dict[RepoUUID, Others] = {}
        # Nodes whose gateway logging waits until all have committed: then one journal
        # write logs them all (`PresenceBatch` joins changes made in the same moment).
        deferred = {leg.uuid: d for leg in self._live() if (d := as_deferred_logging(leg.upload))}
        for waiting in deferred.values():
            waiting.defer_logging()

        async def finish(leg: _Leg) -> None:
            try:
                others = await leg.upload.commit(sender_valid=sender_valid)
            except StorageError as exc:
                log.warning("node %s did not store %s: %s", leg.uuid, self.key, exc)
                leg.failed = exc
                return
            holders[leg.uuid] = others if leg.relay else (leg.uuid, *others)

        async def log_stored(leg: _Leg) -> None:
            try:
                await deferred[leg.uuid].log_stored()
            except StorageError as exc:
                log.warning("node %s stored %s, but logging it failed: %s", leg.uuid, self.key, exc)
                leg.failed = exc
                del holders[leg.uuid]

        async with asyncio.TaskGroup() as group:
            for leg in self._live():
                group.create_task(finish(leg))
        async with asyncio.TaskGroup() as group:
            for leg in self.legs:
                if leg.uuid in holders and leg.uuid in deferred:
                    group.create_task(log_stored(leg))
        for others in holders.values():
            stored.extend(others)
        if not stored:
            raise VerificationFailed(
                f"no node of the cluster stored {self.key}",
                key=str(self.key),
                expected="a node",
                got="none",
            )
        return tuple(sorted(set(stored)))  # git-annex lists them in UUID order


class ClusterStorage:
    """A cluster of nodes presented as one repository."""

    def __init__(
        self,
        uuid: RepoUUID,
        nodes: Mapping[RepoUUID, Storage],
        *,
        costs: Mapping[RepoUUID, float],
        locations: Locations,
        wants: Wants | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        relays: Mapping[RepoUUID, Storage] | None = None,
        relayed: Mapping[RepoUUID, RepoUUID] | None = None,
        health: NodeHealth | None = None,
        leg_timeout: float = 60.0,
    ) -> None:
        """A cluster with these nodes.

        Args:
            uuid: the cluster UUID (never logged).
            nodes: the reachable nodes, by UUID.
            costs: each node's cost (GET prefers the cheapest).
            locations: the UUIDs the gateway's location log says have a key.
            wants: whether a node's preferred content wants a key (None: all do).
            monotonic: the gateway's clock, for timestamps.
            relays: other gateways of the cluster, by their UUID, each serving the
                cluster UUID.
            relayed: the nodes in ``nodes`` reached through a relay (read only), each
                with the UUID of the gateway it is reached through.
            health: recent node failures, shared between requests (reads try
                suspect nodes last).
            leg_timeout: seconds a node may stall an upload before it is dropped.
        """
        self._uuid = uuid
        self._nodes = dict(nodes)
        self._relays = dict(relays or {})
        self._relayed = dict(relayed or {})
        self._health = health or NodeHealth()
        self._leg_timeout = leg_timeout
        self._costs = costs
        self._locations = locations
        self._wants = wants
        self._monotonic = monotonic

    @property
    def uuid(self) -> RepoUUID:
        """The cluster UUID."""
        return self._uuid

    async def _holders(self, key: Key) -> list[RepoUUID]:
        present = set(await self._locations(key))
        holders = [u for u in self._nodes if u in present]
        suspect = self._health.suspect
        return sorted(holders, key=lambda u: (suspect(u), self._costs.get(u, 100.0), u))

    async def checkpresent(self, key: Key) -> bool:
        """Ask one node the location log names (none: not present, nothing asked)."""
        for uuid in await self._holders(key):
            try:
                found = await self._nodes[uuid].checkpresent(key)
            except StorageError as exc:
                log.warning("node %s could not check %s: %s", uuid, key, exc)
                self._health.failed(uuid)
            else:
                self._health.succeeded(uuid)
                return found
        return False

    @asynccontextmanager
    async def retrieve(self, key: Key, offset: int = 0) -> AsyncIterator[ObjectSource]:
        """Read from the cheapest node that has the key, falling back to the next."""
        last: StorageError | None = None
        for uuid in await self._holders(key):
            context = self._nodes[uuid].retrieve(key, offset)
            try:
                source = await context.__aenter__()
            except StorageError as exc:
                log.warning("node %s could not send %s: %s", uuid, key, exc)
                if not isinstance(exc, KeyNotPresent):
                    self._health.failed(uuid)
                last = exc
                continue
            self._health.succeeded(uuid)
            try:
                yield source
            except BaseException as exc:
                if not await context.__aexit__(type(exc), exc, exc.__traceback__):
                    raise
            else:
                await context.__aexit__(None, None, None)
            return
        raise KeyNotPresent(
            f"no node of cluster {self._uuid} can send {key}", key=str(key)
        ) from last

    async def _targets(
        self, key: Key, associated_file: str | None
    ) -> list[tuple[RepoUUID, Storage, bool]]:
        """(UUID, storage, is a relay) of every leg of an upload of ``key``.

        A relay is one more node (clusters.md 7): it lacks the key when none of the
        nodes reached through it has it, and its preferred content is the cluster's.
        """
        present = set(await self._locations(key))
        legs = [(u, self._nodes[u], False) for u in self._nodes if u not in self._relayed]
        legs += [(g, self._relays[g], True) for g in sorted(self._relays)]

        def lacks(leg: tuple[RepoUUID, Storage, bool]) -> bool:
            uuid, _, relay = leg
            if not relay:
                return uuid not in present
            return not any(via == uuid and n in present for n, via in self._relayed.items())

        lacking = [leg for leg in legs if lacks(leg)]
        if not lacking:
            return legs  # every node has it: each answers ALREADY-HAVE
        if self._wants is None:
            return lacking
        wanting = [
            leg
            for leg in lacking
            if await self._wants(self._uuid if leg[2] else leg[0], key, associated_file)
        ]
        return wanting or lacking

    @asynccontextmanager
    async def upload(
        self, key: Key, associated_file: str | None = None
    ) -> AsyncIterator[ClusterUpload]:
        """Start a fan-out upload to the nodes that should get ``key``."""
        targets = await self._targets(key, associated_file)
        async with AsyncExitStack() as stack:
            answers: list[tuple[_Leg, RepoUUID, bool, Others | None]] = []
            for uuid, node, relay in targets:  # one by one: the exit stack is not task-safe
                try:
                    opened = await stack.enter_async_context(node.upload(key, associated_file))
                except StorageError as exc:
                    log.warning("node %s cannot take %s: %s", uuid, key, exc)
                    continue
                leg = _Leg(uuid, opened, relay=relay)
                answers.append((leg, uuid, relay, opened.already_have))
            legs, already = _sort_answers(answers)
            if not legs and not already:
                raise StorageError(f"no node of cluster {self._uuid} can take {key}")
            upload = ClusterUpload(key=key, legs=legs, leg_timeout=self._leg_timeout)
            if not legs:
                upload.already = already
            else:
                upload._offset = min(leg.upload.offset for leg in legs)
                upload.hash_once()
                upload.share_spools()
            yield upload

    async def upload_offset(
        self, key: Key, associated_file: str | None = None
    ) -> tuple[int | None, Others]:
        """What `upload` would find, asking the nodes without starting their uploads.

        ``(None, holders)`` when every chosen node already has the key, else the smallest
        resume offset of the nodes that lack it.

        Raises:
            StorageError: no chosen node can take the key.
        """
        targets = await self._targets(key, associated_file)

        async def probe(
            uuid: RepoUUID, node: Storage, relay: bool
        ) -> tuple[int, RepoUUID, bool, Others | None] | None:
            try:
                offset, others = await upload_offset(node, key, associated_file)
            except StorageError as exc:
                log.warning("node %s cannot take %s: %s", uuid, key, exc)
                return None
            return (0, uuid, relay, others) if offset is None else (offset, uuid, relay, None)

        answers = await asyncio.gather(*(probe(*target) for target in targets))
        offsets, already = _sort_answers(a for a in answers if a is not None)
        if offsets:
            return min(offsets), ()
        if not already:
            raise StorageError(f"no node of cluster {self._uuid} can take {key}")
        return None, already

    async def lock_content(self, key: Key) -> ContentLock:
        """A cluster cannot lock content (clients lock single nodes): always refused."""
        raise KeyNotPresent(f"a cluster cannot lock {key}; lock one of its nodes", key=str(key))

    async def remove(self, key: Key, *, before: int | None = None) -> Others:
        """Remove from every node; see the module docstring for the outcome."""
        removed: list[RepoUUID] = []
        failures: list[str] = []
        gateway_now = int(self._monotonic())

        async def remove_one(uuid: RepoUUID, node: Storage, relay: bool) -> None:
            try:
                node_before = None
                if before is not None:
                    node_before = await node.timestamp() + (before - gateway_now)
                others = await node.remove(key, before=node_before)
            except PartialRemoval as exc:
                removed.extend(RepoUUID(u) for u in exc.others)
                failures.append(f"{uuid}: {exc}")
                return
            except StorageError as exc:
                failures.append(f"{uuid}: {exc}")
                return
            if not relay:
                removed.append(uuid)
            removed.extend(others)

        async with asyncio.TaskGroup() as group:
            for uuid, node in self._nodes.items():
                if uuid not in self._relayed:  # their relay removes from them
                    group.create_task(remove_one(uuid, node, False))
            for uuid, node in self._relays.items():
                group.create_task(remove_one(uuid, node, True))
        result = tuple(sorted(set(removed)))
        if failures:
            raise PartialRemoval(
                f"{key} could not be removed from every node: {'; '.join(failures)}",
                others=result,
            )
        return result

    async def timestamp(self) -> int:
        """The gateway's own clock (REMOVE-BEFORE deadlines are translated per node)."""
        return int(self._monotonic())
