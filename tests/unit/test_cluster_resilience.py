"""A cluster goes on without a bad node: healthy nodes read first, stalled legs dropped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from annexproxy.cluster.clusterstore import ClusterStorage
from annexproxy.cluster.health import NodeHealth
from annexproxy.cluster.nodes import GatewayLogged
from annexproxy.errors import NodeUnavailable
from annexproxy.keys import Key
from annexproxy.storage.base import Others, Upload
from annexproxy.storage.memory import MemoryStorage
from annexproxy.storage.memory import _MemorySource as MemorySource
from annexproxy.testing.storage_conformance import content, key_of
from annexproxy.uuids import RepoUUID

CLUSTER = RepoUUID("ac26f79d-a0df-892f-a81a-20d2273c7f59")
A = RepoUUID("00000000-0000-4000-8000-00000000000a")
B = RepoUUID("00000000-0000-4000-8000-00000000000b")


class Flaky(MemoryStorage):
    """A memory node whose reads fail while ``down`` is set, counting attempts."""

    down: bool = False
    attempts: int = 0

    @asynccontextmanager
    async def retrieve(self, key: Key, offset: int = 0) -> AsyncIterator[MemorySource]:
        self.attempts += 1
        if self.down:
            raise NodeUnavailable("node is down")
        async with super().retrieve(key, offset) as source:
            yield source


def test_a_failed_node_is_tried_last_until_the_window_passes() -> None:
    now = [0.0]
    health = NodeHealth(clock=lambda: now[0], window=30)
    a, b = Flaky(uuid=A), Flaky(uuid=B)
    data = content(100)
    key = key_of(data)
    a.store_nowait(key, data)
    b.store_nowait(key, data)

    async def everywhere(_key: Key) -> Sequence[str]:
        return (A, B)

    cluster = ClusterStorage(
        CLUSTER, {A: a, B: b}, costs={A: 100.0, B: 200.0}, locations=everywhere, health=health
    )

    async def read() -> bytes:
        async with cluster.retrieve(key) as source:
            return b"".join([c async for c in source.chunks()])

    a.down = True
    assert asyncio.run(read()) == data  # A (cheaper) failed, B served it
    assert (a.attempts, b.attempts) == (1, 1)
    a.down = False
    assert asyncio.run(read()) == data  # A is suspect: B first, A not even tried
    assert (a.attempts, b.attempts) == (1, 2)
    now[0] = 31.0
    assert asyncio.run(read()) == data  # the window passed: A, the cheaper, again
    assert (a.attempts, b.attempts) == (2, 2)


class _Stuck:
    """An upload whose writes never finish (a node that stopped reading)."""

    offset = 0
    already_have = None

    async def write(self, data: bytes) -> None:
        await asyncio.Event().wait()

    async def commit(self, *, sender_valid: bool) -> tuple[RepoUUID, ...]:
        raise AssertionError("a dropped node is not committed")


class Stalling(MemoryStorage):
    @asynccontextmanager
    async def upload(  # type: ignore[override]
        self, key: Key, associated_file: str | None = None
    ) -> AsyncIterator[_Stuck]:
        yield _Stuck()


def test_a_stalled_node_is_dropped_and_the_others_store() -> None:
    a, b = MemoryStorage(uuid=A), Stalling(uuid=B)
    data = content(5000)
    key = key_of(data)

    async def nowhere(_key: Key) -> Sequence[str]:
        return ()

    cluster = ClusterStorage(CLUSTER, {A: a, B: b}, costs={}, locations=nowhere, leg_timeout=0.05)

    async def send() -> tuple[RepoUUID, ...]:
        async with cluster.upload(key) as up:
            await up.write(data[:2500])
            await up.write(data[2500:])
            return await up.commit(sender_valid=True)

    assert asyncio.run(send()) == (A,)
    assert asyncio.run(a.checkpresent(key))


class _Pieces(MemoryStorage):
    """A memory node that records the size of every write its uploads get."""

    def __init__(self, uuid: RepoUUID) -> None:
        super().__init__(uuid=uuid)
        self.pieces: list[int] = []

    @asynccontextmanager
    async def upload(self, key: Key, associated_file: str | None = None) -> AsyncIterator[Upload]:  # type: ignore[override]
        async with super().upload(key, associated_file) as inner:
            pieces = self.pieces

            class Recorded:
                offset = inner.offset
                already_have = inner.already_have

                async def write(self, data: bytes) -> None:
                    pieces.append(len(data))
                    await inner.write(data)

                async def commit(self, *, sender_valid: bool) -> Others:
                    return await inner.commit(sender_valid=sender_valid)

            yield Recorded()


def test_nodes_that_do_not_spool_get_whole_pieces() -> None:
    """Only legs that share spools are fed small pieces; logged annex nodes are not."""
    a, b = _Pieces(A), _Pieces(B)
    data = content(3 << 20)
    key = key_of(data)

    async def record(_key: Key, _uuid: str, _present: bool) -> None:
        pass

    async def nowhere(_key: Key) -> Sequence[str]:
        return ()

    nodes = {A: GatewayLogged(a, record), B: GatewayLogged(b, record)}
    cluster = ClusterStorage(CLUSTER, nodes, costs={}, locations=nowhere)

    async def upload() -> Others:
        async with cluster.upload(key) as up:
            await up.write(data[: 1 << 20])
            await up.write(data[1 << 20 :])
            return await up.commit(sender_valid=True)

    assert set(asyncio.run(upload())) == {A, B}
    assert a.pieces == b.pieces == [1 << 20, 2 << 20]
