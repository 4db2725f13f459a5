"""Our P2P-over-HTTP client, as a storage, against `annexproxy serve` and `git annex p2phttp`.

The shared storage conformance suite runs unchanged against a fresh repository behind
each server, which proves the client side of the HTTP API against git-annex's server.
One server per class serves a pool of fresh repositories made before it starts
(``--directory``), so no test waits for a server to start or rescan.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from annexproxy.errors import NodeUnavailable, StorageError
from annexproxy.storage.httpnode import HttpNodeStorage
from annexproxy.testing import storage_conformance
from annexproxy.testing.httpserver import (
    RunningServer,
    annexproxy_serve,
    free_port,
    git_annex_p2phttp,
)
from annexproxy.testing.realannex import AnnexRepo, make_annex_repo
from annexproxy.testing.storage_conformance import (
    PresenceLog,
    StorageConformance,
    StorageFactory,
    key_of,
)
from annexproxy.uuids import RepoUUID

pytestmark = pytest.mark.interop

CLIENT = RepoUUID("506f13e8-32ba-4e70-a3c2-46fb079139b1")
POOL = sum(name.startswith("test_") for name in dir(StorageConformance)) + 2

Starter = Callable[..., AbstractContextManager[RunningServer]]


class Pool:
    """A running server and the fresh repositories below its directory not used yet."""

    def __init__(self, server: RunningServer, repos: list[AnnexRepo]) -> None:
        self.server = server
        self.repos = repos


def _serve_pool(starter: Starter, top: Path) -> Iterator[Pool]:
    repos_dir = top / "repos"
    repos_dir.mkdir()
    with ThreadPoolExecutor(8) as pool:
        repos = list(
            pool.map(
                lambda i: make_annex_repo(repos_dir / f"node{i}", f"node{i}", bare=True),
                range(POOL),
            )
        )
    with starter(top, "--wideopen", "--directory", str(repos_dir)) as server:
        yield Pool(server, repos)


def _factory(pool: Pool, monkeypatch: pytest.MonkeyPatch) -> StorageFactory:
    opened: list[HttpNodeStorage] = []

    def make(*, presence_log: PresenceLog | None = None) -> HttpNodeStorage:
        assert pool.repos, "the repository pool is used up; raise POOL"
        repo = pool.repos.pop()
        storage = HttpNodeStorage(
            RepoUUID(repo.uuid), pool.server.url, client_uuid=CLIENT, presence_log=presence_log
        )
        opened.append(storage)
        return storage

    def run_and_close(coro: Coroutine[Any, Any, object]) -> None:
        # The suite never closes storages; close them in the test's own event loop.
        async def main() -> None:
            try:
                await coro
            finally:
                for storage in opened:
                    await storage.aclose()
                opened.clear()

        asyncio.run(main())

    monkeypatch.setattr(storage_conformance, "run", run_and_close)
    return make


@pytest.fixture(scope="class")
def annexproxy_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pool]:
    yield from _serve_pool(annexproxy_serve, tmp_path_factory.mktemp("annexproxy-serve"))


@pytest.fixture(scope="class")
def p2phttp_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pool]:
    yield from _serve_pool(git_annex_p2phttp, tmp_path_factory.mktemp("p2phttp"))


class TestAgainstAnnexproxyServe(StorageConformance):
    # The server answers GET and may then remove the content (git-annex does too).

    @pytest.fixture
    def make_storage(
        self, annexproxy_pool: Pool, monkeypatch: pytest.MonkeyPatch
    ) -> StorageFactory:
        return _factory(annexproxy_pool, monkeypatch)


class TestAgainstGitAnnexP2phttp(StorageConformance):
    @pytest.fixture
    def make_storage(self, p2phttp_pool: Pool, monkeypatch: pytest.MonkeyPatch) -> StorageFactory:
        return _factory(p2phttp_pool, monkeypatch)

    def test_unknown_uuid_is_unavailable(self, p2phttp_pool: Pool) -> None:
        async def body() -> None:
            unknown = RepoUUID("00000000-1111-2222-3333-444444444444")
            url = p2phttp_pool.server.url
            async with HttpNodeStorage(unknown, url, client_uuid=CLIENT) as storage:
                with pytest.raises(NodeUnavailable, match="404 for API v4 to v0"):
                    await storage.timestamp()
                assert storage.version is None

        asyncio.run(body())


def test_connection_refused_is_unavailable() -> None:
    async def body() -> None:
        url = f"annex+http://127.0.0.1:{free_port()}/git-annex/"
        async with HttpNodeStorage(RepoUUID("u"), url, client_uuid=CLIENT) as storage:
            with pytest.raises(NodeUnavailable, match="cannot connect"):
                await storage.timestamp()

    asyncio.run(body())


def test_basic_auth_against_p2phttp(tmp_path: Path) -> None:
    repo = make_annex_repo(tmp_path / "node", "node", bare=True)
    env = {"GIT_ANNEX_P2PHTTP_PASSWORD_alice": "s3cret"}

    async def body(url: str) -> None:
        node = RepoUUID(repo.uuid)
        async with HttpNodeStorage(node, url, client_uuid=CLIENT) as anonymous:
            with pytest.raises(StorageError, match="HTTP 401"):
                await anonymous.checkpresent(key_of(b"x"))
        async with HttpNodeStorage(
            node, url, client_uuid=CLIENT, credentials=("alice", "s3cret")
        ) as alice:
            assert not await alice.checkpresent(key_of(b"x"))
            assert await alice.timestamp() > 0
            assert alice.version == 4

    with git_annex_p2phttp(repo.path, "--authenv-http", env=env) as server:
        asyncio.run(body(server.url))
