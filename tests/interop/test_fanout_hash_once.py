"""A fan-out to local repositories hashes the content once, and still stores nothing wrong."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from annexproxy.cluster.clusterstore import ClusterStorage
from annexproxy.errors import VerificationFailed
from annexproxy.keys import Key
from annexproxy.storage import annexupload
from annexproxy.storage.annexrepo import AnnexRepoStorage
from annexproxy.testing.realannex import AnnexRepo
from annexproxy.testing.storage_conformance import content, key_of
from annexproxy.uuids import RepoUUID

pytestmark = pytest.mark.interop

CLUSTER = RepoUUID("ac26f79d-a0df-892f-a81a-20d2273c7f59")


def _cluster(repos: Sequence[AnnexRepo]) -> tuple[ClusterStorage, list[AnnexRepoStorage]]:
    nodes = [AnnexRepoStorage.open(r.path) for r in repos]

    async def nowhere(_key: Key) -> Sequence[str]:
        return ()

    cluster = ClusterStorage(
        CLUSTER,
        {n.uuid: n for n in nodes},
        costs={n.uuid: 100.0 for n in nodes},
        locations=nowhere,
    )
    return cluster, nodes


async def _send(cluster: ClusterStorage, key: Key, data: bytes) -> tuple[str, ...]:
    async with cluster.upload(key) as up:
        assert up.offset == 0
        for i in range(0, len(data), 1 << 18):
            await up.write(data[i : i + (1 << 18)])
        return await up.commit(sender_valid=True)


def test_content_is_hashed_once_for_all_local_nodes(
    annex_repo_factory: Callable[..., AnnexRepo], monkeypatch: pytest.MonkeyPatch
) -> None:
    repos = [annex_repo_factory(f"n{i}") for i in range(3)]
    cluster, nodes = _cluster(repos)
    data = content(3 << 20)
    key = key_of(data)
    hashed: list[int] = []
    original = annexupload.AnnexUpload._write_sync

    def counting(self: annexupload.AnnexUpload, fd: int, piece: bytes) -> None:
        if self._verifier is not None:
            hashed.append(len(piece))
        original(self, fd, piece)

    monkeypatch.setattr(annexupload.AnnexUpload, "_write_sync", counting)
    stored = asyncio.run(_send(cluster, key, data))
    assert set(stored) == {n.uuid for n in nodes}
    assert hashed == []  # no node hashed: the fan-out did, once
    for repo in repos:
        repo.annex("fsck", f"--key={key}", "--quiet")


def test_wrong_content_is_stored_nowhere_and_discarded(
    annex_repo_factory: Callable[..., AnnexRepo],
) -> None:
    repos = [annex_repo_factory(f"n{i}") for i in range(3)]
    cluster, nodes = _cluster(repos)
    data = content(1 << 20)
    key = key_of(data)
    wrong = bytes([data[0] ^ 1]) + data[1:]
    with pytest.raises(VerificationFailed):
        asyncio.run(_send(cluster, key, wrong))
    for node in nodes:
        assert node.find_object(key) is None
        assert not Path(node.layout.tmp_path(key)).exists()
    # The right content afterwards is taken from the start and stored everywhere.
    assert set(asyncio.run(_send(cluster, key, data))) == {n.uuid for n in nodes}
