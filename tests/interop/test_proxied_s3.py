"""S3 special remotes behind the gateway, and as storage (SeaweedFS on loopback).

The storage conformance suite runs on `SpecialRemoteStorage` over `S3Backend`, chunked and
not. A gateway set up with git-annex's own commands has a plain and a chunked
(chunk=1MiB) S3 remote and a chunked one with ``encryption=shared``, all
``annex-proxy=true``; the real client copies to, gets from,
fscks and drops from them over HTTP (``annexproxy serve``) and ssh, and the gateway's own
git-annex sees every object we stored. An S3 remote can also be a cluster node.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from annexproxy.special.remote import SpecialRemote
from annexproxy.special.s3 import S3Backend
from annexproxy.special.s3config import s3_settings
from annexproxy.special.storage import SpecialRemoteStorage
from annexproxy.testing import storage_conformance
from annexproxy.testing.proxygateway import gateway_client, make_proxy_gateway
from annexproxy.testing.realannex import (
    AnnexRepo,
    assert_testremote_passes,
    make_annex_repo,
    make_cluster,
    make_ssh_client,
    seed_commit,
)
from annexproxy.testing.s3server import S3Server, s3_server
from annexproxy.testing.storage_conformance import (
    MemoryChunkLog,
    PresenceLog,
    StorageConformance,
    StorageFactory,
)
from annexproxy.uuids import RepoUUID

pytestmark = [pytest.mark.interop, pytest.mark.slow]

UUID = RepoUUID("5d0b3f7e-2c11-4a8e-9f3b-7a6c5e4d3b2a")
SMALL = b"small file through a proxied S3 remote\n"
BIG = bytes(range(256)) * 10_000  # 2.56 MB: three chunks of 1 MiB


@pytest.fixture(scope="module")
def server() -> Iterator[S3Server]:
    with s3_server() as running:
        yield running


def fresh_bucket(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class TestS3Unchunked(StorageConformance):
    supports_resume = False
    locks_content = False
    chunk_size: int | None = None

    @pytest.fixture
    def make_storage(
        self, server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> StorageFactory:
        opened: list[S3Backend] = []

        def run_and_close(coro: Coroutine[Any, Any, object]) -> None:
            # The suite runs each test in its own event loop; close the S3 clients the
            # test opened in that loop, before it goes.
            async def body() -> None:
                try:
                    await coro
                finally:
                    for backend in opened:
                        await backend.aclose()

            asyncio.run(body())

        monkeypatch.setattr(storage_conformance, "run", run_and_close)

        def make(*, presence_log: PresenceLog | None = None) -> SpecialRemoteStorage:
            bucket = fresh_bucket("conformance")
            server.create_bucket(bucket)
            params = {
                "type": "S3",
                "host": "127.0.0.1",
                "port": str(server.port),
                "protocol": "http",
                "requeststyle": "path",
                "bucket": bucket,
                "signature": "v4",
            }
            remote = SpecialRemote(uuid=UUID, name="s3", type="S3", params=params)
            backend = S3Backend(s3_settings(remote, base=tmp_path, environ=server.env))
            opened.append(backend)
            return SpecialRemoteStorage(
                UUID,
                backend,
                chunk_size=self.chunk_size,
                chunk_log=MemoryChunkLog(),
                presence_log=presence_log,
            )

        return make


class TestS3Chunked(TestS3Unchunked):
    chunk_size = 1000


REMOTES = {"s3sr": (), "s3chunk": ("chunk=1MiB",), "s3enc": ("chunk=1MiB",)}


def s3_params(server: S3Server, name: str, *extra: str) -> list[str]:
    """``initremote`` parameters of an S3 remote on ``server`` (a fresh bucket)."""
    return [
        "type=S3", "host=127.0.0.1", f"port={server.port}", "protocol=http",
        "requeststyle=path", f"bucket={fresh_bucket(name)}",
        *(("encryption=shared",) if name == "s3enc" else ("encryption=none",)), *extra,
    ]  # fmt: skip


def init_s3(repo: AnnexRepo, server: S3Server, name: str, *extra: str) -> None:
    repo.annex("initremote", "-q", name, *s3_params(server, name, *extra), env=server.env)


def _gateway(
    top: Path, server: S3Server, remotes: dict[str, tuple[str, ...]] = REMOTES
) -> AnnexRepo:
    return make_proxy_gateway(
        top / "gateway",
        {name: s3_params(server, name, *extra) for name, extra in remotes.items()},
        config={"annex.security.allowed-ip-addresses": "all"},
        env=server.env,  # creds cached in annex/creds/UUID
    )


@pytest.fixture(params=["http", "ssh"])
def proxied(
    request: pytest.FixtureRequest, tmp_path: Path, server: S3Server
) -> Iterator[tuple[AnnexRepo, AnnexRepo]]:
    gateway = _gateway(tmp_path, server)
    with gateway_client(gateway, tmp_path / "client", request.param) as client:
        yield gateway, client


def _add(client: AnnexRepo, name: str, data: bytes) -> str:
    (client.path / name).write_bytes(data)
    client.annex("add", "-q", name)
    client.git("commit", "-q", "-m", name)
    return client.annex("lookupkey", name).stdout.strip()


@pytest.mark.parametrize("remote", ["s3sr", "s3chunk", "s3enc"])
def test_client_uses_a_proxied_s3_remote(proxied: tuple[AnnexRepo, AnnexRepo], remote: str) -> None:
    gateway, client = proxied
    keys = {name: _add(client, name, data) for name, data in (("s.txt", SMALL), ("b.bin", BIG))}
    target = f"origin-{remote}"
    client.annex("copy", "-q", "--to", target, ".")
    uuid_ = gateway.git("config", f"remote.{remote}.annex-uuid").stdout.strip()
    for key in keys.values():
        # The gateway's git-annex, with the same remote, finds and verifies what we stored.
        assert gateway.annex("checkpresentkey", key, remote, check=False).returncode == 0
        gateway.annex("fsck", "-q", "--from", remote, "--key", key)
    assert uuid_ in client.annex("whereis", "b.bin").stdout
    client.annex("drop", "-q", "--force", ".")
    client.annex("get", "-q", "--from", target, ".")
    assert (client.path / "b.bin").read_bytes() == BIG
    client.annex("fsck", "-q", "--from", target, ".")
    client.annex("drop", "-q", "--from", target, "--force", "s.txt")
    assert gateway.annex("checkpresentkey", keys["s.txt"], remote, check=False).returncode == 1


def test_testremote_on_a_proxied_s3_remote(tmp_path: Path, server: S3Server) -> None:
    gateway = _gateway(tmp_path, server)
    client = make_ssh_client(gateway, tmp_path / "client", "client")
    seed_commit(client)
    assert_testremote_passes(client, "origin-s3chunk", fast=True)


def test_s3_remote_as_cluster_node(tmp_path: Path, server: S3Server) -> None:
    setup = make_cluster(tmp_path, nodes=2)
    gateway = setup.gateway
    gateway.git("config", "annex.security.allowed-ip-addresses", "all")
    init_s3(gateway, server, "s3node")
    gateway.git("config", "remote.s3node.annex-cluster-node", setup.name)
    gateway.annex("updatecluster")
    client = make_ssh_client(gateway, tmp_path / "client", "client")
    key = _add(client, "c.bin", BIG)
    client.annex("copy", "-q", "--to", f"origin-{setup.name}", "c.bin")
    assert gateway.annex("checkpresentkey", key, "s3node", check=False).returncode == 0
    node_uuid = gateway.git("config", "remote.s3node.annex-uuid").stdout.strip()
    assert node_uuid in client.annex("whereis", "c.bin").stdout
    client.annex("drop", "-q", "--from", f"origin-{setup.name}", "--force", "c.bin")
    assert gateway.annex("checkpresentkey", key, "s3node", check=False).returncode == 1


def test_objects_we_store_carry_what_git_annex_s_own_carry(
    tmp_path: Path, server: S3Server
) -> None:
    """storageclass= and x-amz-meta-*: an object the client stores through the gateway has
    the storage class and metadata of one git-annex stores itself. (public=yes is set too,
    but SeaweedFS reports no canned ACL back; test_s3_backend checks the header we send.)"""
    settings = ("storageclass=STANDARD_IA", "x-amz-meta-project=survey", "public=yes")
    gateway = _gateway(tmp_path, server, {"s3meta": settings})
    client = make_ssh_client(gateway, tmp_path / "client", "client")
    ours = _add(client, "ours.bin", BIG)
    client.annex("copy", "-q", "--to", "origin-s3meta", "ours.bin")
    # git-annex's own S3 code stores the other one (from a clone of the gateway).
    own = make_annex_repo(tmp_path / "own", "own")
    own.git("config", "annex.security.allowed-ip-addresses", "all")
    own.git("remote", "add", "gw", str(gateway.path))
    own.git("fetch", "-q", "gw")
    own.annex("merge", "-q")
    own.annex("enableremote", "-q", "s3meta", env=server.env)
    own.git("config", "remote.s3meta.annex-verified", "verified")  # as initremote sets it
    theirs = _add(own, "theirs.bin", SMALL)
    own.annex("copy", "-q", "--to", "s3meta", "theirs.bin", env=server.env)

    uuid_ = gateway.git("config", "remote.s3meta.annex-uuid").stdout.strip()
    log = gateway.git("show", "git-annex:remote.log").stdout
    bucket = next(
        field.split("=", 1)[1]
        for line in log.splitlines()
        if line.startswith(uuid_)
        for field in line.split()
        if field.startswith("bucket=")
    )

    async def described(key: str) -> tuple[object, object]:
        remote = SpecialRemote(
            uuid=UUID,
            name="s3",
            type="S3",
            params={
                "type": "S3",
                "host": "127.0.0.1",
                "port": str(server.port),
                "protocol": "http",
                "requeststyle": "path",
                "bucket": bucket,
            },
        )
        backend = S3Backend(s3_settings(remote, base=tmp_path, environ=server.env))
        try:
            client_ = await backend.client()
            head = await client_.head_object(Bucket=bucket, Key=key)
            return head.get("StorageClass", "STANDARD"), head["Metadata"]
        finally:
            await backend.aclose()

    assert asyncio.run(described(ours)) == asyncio.run(described(theirs))
    assert asyncio.run(described(ours)) == ("STANDARD_IA", {"project": "survey"})
