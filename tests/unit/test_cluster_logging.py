"""A fan-out logs its nodes at the gateway once all have committed, and only those that did."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from annexproxy.cluster.clusterstore import ClusterStorage
from annexproxy.cluster.nodes import GatewayLogged
from annexproxy.errors import RepositoryError
from annexproxy.keys import Key
from annexproxy.storage.memory import MemoryStorage
from annexproxy.testing.storage_conformance import content, key_of
from annexproxy.uuids import RepoUUID

CLUSTER = RepoUUID("ac26f79d-a0df-892f-a81a-20d2273c7f59")
NODES = [RepoUUID(f"00000000-0000-4000-8000-00000000000{n}") for n in "abc"]


async def _nowhere(_key: Key) -> Sequence[str]:
    return ()


def _upload(failing: RepoUUID | None = None) -> tuple[tuple[RepoUUID, ...], list[list[str]]]:
    """Upload to a 3-node cluster; return the reply and, per log call, who held the key."""
    memory = {uuid: MemoryStorage(uuid=uuid) for uuid in NODES}
    data = content(4000)
    key = key_of(data)
    seen: list[list[str]] = []

    async def record(logged: Key, uuid: str, present: bool) -> None:
        assert (logged, present) == (key, True)
        seen.append([u for u, node in memory.items() if node.keys() >= {key}] + [f"log {uuid}"])
        if uuid == failing:
            raise RepositoryError("journal.lck: permission denied")

    nodes = {uuid: GatewayLogged(node, record) for uuid, node in memory.items()}
    cluster = ClusterStorage(CLUSTER, nodes, costs={}, locations=_nowhere)

    async def send() -> tuple[RepoUUID, ...]:
        async with cluster.upload(key) as upload:
            await upload.write(data)
            return await upload.commit(sender_valid=True)

    return asyncio.run(send()), seen


def test_nodes_are_logged_after_every_node_committed() -> None:
    reply, seen = _upload()
    assert reply == tuple(NODES)
    assert sorted(entry[-1] for entry in seen) == [f"log {u}" for u in NODES]
    assert all(entry[:-1] == NODES for entry in seen)  # every node held it before any log


def test_a_node_whose_log_fails_is_not_reported() -> None:
    reply, seen = _upload(failing=NODES[1])
    assert reply == (NODES[0], NODES[2])
    assert len(seen) == 3
