"""Our P2P client, as a storage, against git-annex-shell p2pstdio and annexproxy-shell.

The shared storage conformance suite runs unchanged against a repository reached through
each server, which proves the client side of the protocol against git-annex's server.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from annexproxy.storage.p2pnode import P2PNodeStorage, command_opener
from annexproxy.testing.realannex import annex_env, make_annex_repo, shell_program
from annexproxy.testing.storage_conformance import (
    PresenceLog,
    StorageConformance,
    StorageFactory,
    content,
    store,
)
from annexproxy.transports.p2p_client import P2PClient
from annexproxy.uuids import RepoUUID

pytestmark = pytest.mark.interop

CLIENT = "506f13e8-32ba-4e70-a3c2-46fb079139b1"


def _factory(program: str, tmp_path: Path) -> StorageFactory:
    counter = iter(range(1000))

    def make(*, presence_log: PresenceLog | None = None) -> P2PNodeStorage:
        repo = make_annex_repo(tmp_path / f"node{next(counter)}", "node", bare=True)
        opener = command_opener(
            [program, "p2pstdio", str(repo.path), CLIENT], expected_uuid=repo.uuid, env=annex_env()
        )
        return P2PNodeStorage(RepoUUID(repo.uuid), opener, presence_log=presence_log)

    return make


class TestAgainstGitAnnexShell(StorageConformance):
    # git-annex stores a WORM key sent with INVALID; annexproxy refuses (never store what
    # cannot be verified and the sender doubts).
    refuses_unverifiable_invalid = False
    uploads_abort_when_busy = True

    @pytest.fixture
    def make_storage(self, tmp_path: Path) -> StorageFactory:
        return _factory(shutil.which("git-annex-shell") or "git-annex-shell", tmp_path)


class TestAgainstAnnexproxyShell(StorageConformance):
    @pytest.fixture
    def make_storage(self, tmp_path: Path) -> StorageFactory:
        return _factory(shell_program(), tmp_path)


def test_connections_are_reused_and_bounded(tmp_path: Path) -> None:
    repo = make_annex_repo(tmp_path / "node", "node", bare=True)
    inner = command_opener(
        [shell_program(), "p2pstdio", str(repo.path), CLIENT],
        expected_uuid=repo.uuid,
        env=annex_env(),
    )
    opened = 0
    live = 0
    most = 0

    async def opener() -> P2PClient:
        nonlocal opened
        opened += 1
        return await inner()

    async def scenario() -> None:
        nonlocal live, most
        node = P2PNodeStorage(RepoUUID(repo.uuid), opener, max_connections=2)
        data = content(1000)
        key = await store(node, data)
        for _ in range(5):
            assert await node.checkpresent(key)
        assert opened == 1  # one connection served the upload and every question

        async def read() -> None:
            nonlocal live, most
            async with node.retrieve(key) as source:
                live += 1
                most = max(most, live)
                await asyncio.sleep(0)  # let the other readers try to start
                assert b"".join([c async for c in source.chunks()]) == data
                live -= 1

        await asyncio.gather(*(read() for _ in range(6)))
        assert most <= 2
        await node.aclose()

    asyncio.run(scenario())
