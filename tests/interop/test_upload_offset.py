"""putoffset's probe answers what opening the upload would, on repositories and clusters.

`upload_offset` stats partial files instead of opening uploads (no locks, no temporary
files). For every mix of node states (nothing, a partial file, a partial file longer than
the key, the object) the probe must give the offset and holders the upload itself gives.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from pathlib import Path

import pytest

from annexproxy.cluster.clusterstore import ClusterStorage
from annexproxy.keys import Key
from annexproxy.storage.annexrepo import AnnexRepoStorage
from annexproxy.storage.base import Others, Storage, upload_offset
from annexproxy.testing.realannex import AnnexRepo, make_annex_repo
from annexproxy.testing.storage_conformance import content, key_of
from annexproxy.uuids import RepoUUID

CLUSTER = RepoUUID("ac26f79d-a0df-892f-a81a-20d2273c7f59")
DATA = content(3000)
KEY = key_of(DATA)
STATES = ("none", "partial", "too long", "present")


def _put_state(storage: AnnexRepoStorage, state: str, held: int) -> None:
    tmp = storage.layout.tmp_path(KEY)
    if state in ("partial", "too long"):
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(DATA[:held] if state == "partial" else DATA + b"extra")
    elif state == "present":

        async def store() -> None:
            async with storage.upload(KEY) as upload:
                await upload.write(DATA[upload.offset :])
                await upload.commit(sender_valid=True)

        asyncio.run(store())


async def _opened(storage: Storage, key: Key) -> tuple[int | None, Others]:
    async with storage.upload(key) as upload:
        if upload.already_have is not None:
            return None, upload.already_have
        return upload.offset, ()


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> list[AnnexRepo]:
    base = tmp_path_factory.mktemp("offsets")
    return [make_annex_repo(base / f"n{i}", f"n{i}") for i in range(3)]


@pytest.fixture
def nodes(repos: list[AnnexRepo]) -> list[AnnexRepoStorage]:
    """The three repositories, emptied of the key and of any partial file."""
    opened = [AnnexRepoStorage.open(repo.path) for repo in repos]
    for storage in opened:
        asyncio.run(storage.remove(KEY))
        storage.layout.tmp_path(KEY).unlink(missing_ok=True)
    return opened


def test_a_repository_probe_matches_its_upload(nodes: list[AnnexRepoStorage]) -> None:
    for storage, state in zip(nodes, ("partial", "too long", "present"), strict=True):
        _put_state(storage, state, 1000)
    assert [asyncio.run(upload_offset(s, KEY)) for s in nodes] == [(1000, ()), (0, ()), (None, ())]
    for storage in nodes:
        assert asyncio.run(upload_offset(storage, KEY)) == asyncio.run(_opened(storage, KEY))
    assert not any(Path(s.layout.download_lock_path(KEY)).exists() for s in nodes)


@pytest.mark.parametrize("states", list(itertools.product(STATES, repeat=3)))
def test_a_cluster_probe_matches_its_upload(
    nodes: list[AnnexRepoStorage], states: Sequence[str]
) -> None:
    for number, (storage, state) in enumerate(zip(nodes, states, strict=True)):
        _put_state(storage, state, 500 * (number + 1))
    present = [s.uuid for s, state in zip(nodes, states, strict=True) if state == "present"]

    async def locations(_key: Key) -> Sequence[str]:
        return present

    cluster = ClusterStorage(CLUSTER, {s.uuid: s for s in nodes}, costs={}, locations=locations)
    probed = asyncio.run(cluster.upload_offset(KEY))
    assert probed == asyncio.run(_opened(cluster, KEY))
    if len(present) == 3:
        assert probed == (None, tuple(sorted(present)))
