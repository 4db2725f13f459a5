"""The S3 backend against a real S3 server (SeaweedFS on loopback)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import tracemalloc
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from annexproxy.errors import KeyNotPresent, NodeUnavailable, StorageError
from annexproxy.keys import Key
from annexproxy.special.remote import SpecialRemote
from annexproxy.special.s3 import S3Backend, open_s3
from annexproxy.testing.s3server import S3Server, s3_server
from annexproxy.testing.storage_conformance import content
from annexproxy.uuids import RepoUUID

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
PART = 5 * MIB  # the smallest part S3 (and SeaweedFS) accept, but for the last
UUID = "4a5c1a9e-8d7e-4f61-9a1b-2c3d4e5f6a7b"


@pytest.fixture(scope="module")
def server() -> Iterator[S3Server]:
    with s3_server() as running:
        running.create_bucket("annexproxy-backend")
        yield running


def make_key(data: bytes) -> Key:
    return Key.parse(f"SHA256E-s{len(data)}--{hashlib.sha256(data).hexdigest()}.bin")


def remote_for(server: S3Server, base: Path, signature: str = "v4", **extra: str) -> SpecialRemote:
    """A remote whose credentials git-annex would have cached in .git/annex/creds/UUID."""
    creds = base / ".git" / "annex" / "creds"
    creds.mkdir(parents=True, exist_ok=True)
    (creds / UUID).write_text(f"{server.access_key}\n{server.secret_key}\n")
    params = {
        "type": "S3",
        "name": "s3",
        "host": "127.0.0.1",
        "port": str(server.port),
        "protocol": "http",
        "requeststyle": "path",
        "bucket": "annexproxy-backend",
        "signature": signature,
        **extra,
    }
    return SpecialRemote(uuid=RepoUUID(UUID), name="s3", type="S3", params=params)


async def opened(remote: SpecialRemote, base: Path) -> S3Backend:
    backend = await open_s3(remote, base=base)
    assert isinstance(backend, S3Backend)
    return backend


async def store(backend: S3Backend, key: Key, data: bytes, size: int | None, step: int) -> None:
    async with backend.store(key, size) as session:
        for at in range(0, len(data), step):
            await session.write(data[at : at + step])
        await session.commit()


async def read_all(backend: S3Backend, key: Key, offset: int = 0) -> bytes:
    return b"".join([chunk async for chunk in backend.retrieve(key, offset)])


async def multipart_uploads(backend: S3Backend) -> list[object]:
    listed = await (await backend.client()).list_multipart_uploads(Bucket=backend.settings.bucket)
    uploads: list[object] = listed.get("Uploads", [])
    return uploads


@pytest.mark.parametrize("signature", ["v4", "v2"])
def test_store_commit_retrieve_offset_remove(
    server: S3Server, tmp_path: Path, signature: str
) -> None:
    data = content(300_000, seed=1)
    key = make_key(data)

    async def go() -> None:
        backend = await opened(remote_for(server, tmp_path, signature), tmp_path)
        try:
            assert not await backend.present(key)
            await store(backend, key, data, len(data), 65536)
            assert await backend.present(key)
            assert await read_all(backend, key) == data
            assert await read_all(backend, key, 123_457) == data[123_457:]
            assert await read_all(backend, key, len(data)) == b""
            head = await (await backend.client()).head_object(
                Bucket="annexproxy-backend", Key=str(key)
            )
            assert head["ContentLength"] == len(data)
            await backend.remove(key)
            assert not await backend.present(key)
            await backend.remove(key)  # absent: not an error
        finally:
            await backend.aclose()

    asyncio.run(go())


def test_uncommitted_store_leaves_nothing(server: S3Server, tmp_path: Path) -> None:
    data = content(2 * MIB + 5, seed=2)
    key_put, key_multi = make_key(data), make_key(data + b"x")

    async def go() -> None:
        backend = await opened(remote_for(server, tmp_path, partsize="1MiB"), tmp_path)
        try:
            # A single PUT: half the body sent, then the session is left.
            async with backend.store(key_put, 500_000) as session:
                await session.write(data[:30_000])

            # A multipart upload: two parts uploaded, then the session is left.
            async def left() -> None:
                async with backend.store(key_multi, len(data) + 1) as session:
                    await session.write(data[: 2 * MIB])
                    raise RuntimeError("client went away")

            with pytest.raises(RuntimeError, match="client went away"):
                await left()
            # Every byte written, but no commit (a hash mismatch found at the end).
            key_full = make_key(data[:1000])
            async with backend.store(key_full, 1000) as session:
                await session.write(data[:600])
                await session.write(data[600:1000])
            assert not await backend.present(key_put)
            assert not await backend.present(key_multi)
            assert not await backend.present(key_full)
            assert await multipart_uploads(backend) == []
        finally:
            await backend.aclose()

    asyncio.run(go())


def test_wrong_length_is_refused(server: S3Server, tmp_path: Path) -> None:
    data = content(1000, seed=3)
    key = make_key(data)

    async def go() -> None:
        backend = await opened(remote_for(server, tmp_path), tmp_path)
        try:
            with pytest.raises(StorageError, match="only 999 of the announced 1000 bytes"):
                await store(backend, key, data[:999], len(data), 1000)
            with pytest.raises(StorageError, match="more than the announced 1000"):
                async with backend.store(key, len(data)) as session:
                    await session.write(data + b"!")
            assert not await backend.present(key)
        finally:
            await backend.aclose()

    asyncio.run(go())


@pytest.mark.parametrize("size_known", [True, False])
def test_multipart_with_small_partsize(server: S3Server, tmp_path: Path, size_known: bool) -> None:
    data = content(2 * PART + 1234, seed=4 + size_known)
    key = make_key(data)

    async def go() -> None:
        backend = await opened(remote_for(server, tmp_path, partsize="5MiB"), tmp_path)
        try:
            await store(backend, key, data, len(data) if size_known else None, 100_000)
            head = await (await backend.client()).head_object(
                Bucket="annexproxy-backend", Key=str(key)
            )
            assert head["ETag"].strip('"').endswith("-3")  # three parts
            assert await read_all(backend, key) == data
            assert await read_all(backend, key, PART + 7) == data[PART + 7 :]
            await backend.remove(key)
        finally:
            await backend.aclose()

    asyncio.run(go())


def test_unknown_size_smaller_than_a_part(server: S3Server, tmp_path: Path) -> None:
    data = content(5000, seed=6)
    key = make_key(data)

    async def go() -> None:
        backend = await opened(remote_for(server, tmp_path, partsize="64KiB"), tmp_path)
        try:
            await store(backend, key, data, None, 1000)
            assert await read_all(backend, key) == data
            await backend.remove(key)
        finally:
            await backend.aclose()

    asyncio.run(go())


def test_fileprefix_names_objects(server: S3Server, tmp_path: Path) -> None:
    data = b"prefixed content\n"
    key = make_key(data)

    async def go() -> None:
        backend = await opened(remote_for(server, tmp_path, fileprefix="annex/p-"), tmp_path)
        try:
            await store(backend, key, data, len(data), 5)
            got = await (await backend.client()).get_object(
                Bucket="annexproxy-backend", Key=f"annex/p-{key}"
            )
            async with got["Body"] as body:
                assert await body.read() == data
            await backend.remove(key)
        finally:
            await backend.aclose()

    asyncio.run(go())


def test_missing_object(server: S3Server, tmp_path: Path) -> None:
    key = make_key(b"never stored")

    async def go() -> None:
        backend = await opened(remote_for(server, tmp_path), tmp_path)
        try:
            assert not await backend.present(key)
            with pytest.raises(KeyNotPresent, match=r"annexproxy-backend/SHA256E.* not present"):
                await read_all(backend, key)
            with pytest.raises(KeyNotPresent):
                await read_all(backend, key, 5)
        finally:
            await backend.aclose()

    asyncio.run(go())


@pytest.mark.parametrize("signature", ["v4", "v2"])
def test_wrong_credentials_and_missing_bucket(
    server: S3Server, tmp_path: Path, signature: str
) -> None:
    key = make_key(b"x")

    async def go() -> None:
        remote = remote_for(server, tmp_path, signature)
        (tmp_path / ".git" / "annex" / "creds" / UUID).write_text("annexproxytest\nwrong\n")
        backend = await opened(remote, tmp_path)
        try:
            with pytest.raises(StorageError, match="refused the credentials"):
                await read_all(backend, key)
        finally:
            await backend.aclose()
        nobucket = remote_for(server, tmp_path, bucket="no-such-bucket")
        backend = await opened(nobucket, tmp_path)
        try:
            # (SeaweedFS creates buckets on upload for admins, so read.)
            with pytest.raises(StorageError, match="bucket 'no-such-bucket' does not exist"):
                await read_all(backend, key)
        finally:
            await backend.aclose()

    asyncio.run(go())


def test_unreachable_server(server: S3Server, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]  # nothing listens there once closed

    async def go() -> None:
        remote = remote_for(server, tmp_path, port=str(closed_port))
        backend = await opened(remote, tmp_path)
        try:
            with pytest.raises(NodeUnavailable, match="unreachable"):
                await backend.present(make_key(b"y"))
        finally:
            await backend.aclose()

    asyncio.run(go())


@pytest.mark.parametrize("partsize", [None, "5MiB"])
def test_server_killed_mid_store(tmp_path: Path, partsize: str | None) -> None:
    data = content(12 * MIB, seed=7)
    key = make_key(data)
    extra = {"partsize": partsize} if partsize else {}
    half = 6 * MIB

    async def killed() -> None:
        with s3_server(tmp_path / "s3") as first:
            first.create_bucket("annexproxy-backend")
            backend = await opened(remote_for(first, tmp_path, **extra), tmp_path)
            try:

                async def interrupted() -> None:
                    async with backend.store(key, len(data)) as session:
                        await session.write(data[:half])
                        first.stop()
                        await session.write(data[half:])
                        await session.commit()

                with pytest.raises(StorageError, match="unreachable or broke the connection"):
                    await interrupted()
            finally:
                await backend.aclose()

    async def absent(second: S3Server) -> None:
        backend = await opened(remote_for(second, tmp_path, **extra), tmp_path)
        try:
            assert not await backend.present(key)
            await store(backend, key, data, len(data), MIB)  # the bucket still works
            assert await read_all(backend, key) == data
        finally:
            await backend.aclose()

    asyncio.run(killed())
    with s3_server(tmp_path / "s3") as second:  # the same data directory
        asyncio.run(absent(second))


def test_server_killed_mid_retrieve(tmp_path: Path) -> None:
    data = content(24 * MIB, seed=8)
    key = make_key(data)

    async def go(server: S3Server) -> None:
        backend = await opened(remote_for(server, tmp_path), tmp_path)
        try:
            await store(backend, key, data, len(data), MIB)

            async def interrupted() -> int:
                got = 0
                async for chunk in backend.retrieve(key):
                    if not got:
                        server.stop()
                    got += len(chunk)
                return got

            with pytest.raises(NodeUnavailable, match=r"stopped after|broke the connection"):
                await interrupted()
        finally:
            await backend.aclose()

    with s3_server(tmp_path / "s3") as server:
        server.create_bucket("annexproxy-backend")
        asyncio.run(go(server))


def test_known_size_multipart_streams_its_parts(server: S3Server, tmp_path: Path) -> None:
    """A part is never gathered in memory when the object's size is known."""
    piece = content(256 * 1024, seed=7)
    pieces = 160  # 40 MiB in parts of 16 MiB: three parts, the last one short
    size = len(piece) * pieces
    key = make_key(piece)  # only a name here: the backend does not hash

    async def go() -> int:
        backend = await opened(remote_for(server, tmp_path, partsize="16MiB"), tmp_path)
        try:
            await backend.present(key)  # the client and its service model, loaded before
            tracemalloc.start()
            async with backend.store(key, size) as session:
                for _ in range(pieces):
                    await session.write(piece)
                await session.commit()
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            head = await (await backend.client()).head_object(
                Bucket="annexproxy-backend", Key=str(key)
            )
            assert head["ContentLength"] == size
            assert head["ETag"].strip('"').endswith("-3")
            assert await read_all(backend, key, size - 10) == piece[-10:]
            await backend.remove(key)
            return peak
        finally:
            await backend.aclose()

    assert asyncio.run(go()) < 8 * MIB


@pytest.mark.parametrize("partsize", [None, "5MiB"])
def test_stores_carry_storage_class_metadata_and_acl(
    server: S3Server, tmp_path: Path, partsize: str | None
) -> None:
    extra = {
        "storageclass": "STANDARD_IA",
        "public": "yes",
        "x-amz-meta-project": "survey",
        **({"partsize": partsize} if partsize else {}),
    }
    data = content(6 * MIB if partsize else 1000, seed=21)
    key = make_key(data)

    async def go() -> None:
        backend = await opened(remote_for(server, tmp_path, **extra), tmp_path)
        sent: list[tuple[str, dict[str, str]]] = []

        def record(method: str, operation: str, headers: Mapping[str, str]) -> None:
            if operation in ("PutObject", "CreateMultipartUpload"):
                sent.append((operation, {k.lower(): v for k, v in headers.items()}))

        try:
            client = await backend.client()
            client.observers.append(record)
            await store(backend, key, data, len(data), 65536)
            head = await client.head_object(Bucket="annexproxy-backend", Key=str(key))
            assert head["Metadata"] == {"project": "survey"}
            assert head.get("StorageClass", "STANDARD") == "STANDARD_IA"
            await backend.remove(key)
        finally:
            await backend.aclose()
        # The headers git-annex's S3 remote sends (Remote/S3.hs putObject,
        # postInitiateMultipartUpload): the ACL only on a single-request store.
        (name, headers), *_ = sent
        assert name == ("CreateMultipartUpload" if partsize else "PutObject")
        assert headers["x-amz-storage-class"] == "STANDARD_IA"
        assert headers["x-amz-meta-project"] == "survey"
        assert ("x-amz-acl" in headers) == (partsize is None)
        if partsize is None:
            assert headers["x-amz-acl"] == "public-read"

    asyncio.run(go())


def test_a_session_token_is_sent(
    server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "temporary-token")

    async def go() -> None:
        backend = await opened(remote_for(server, tmp_path), tmp_path)
        sent: list[str | None] = []

        def record(method: str, operation: str, headers: Mapping[str, str]) -> None:
            sent.append(headers.get("x-amz-security-token"))

        try:
            client = await backend.client()
            client.observers.append(record)
            # SeaweedFS without STS refuses the token (403); either way it was sent.
            with contextlib.suppress(StorageError):
                await backend.present(make_key(b"x"))
        finally:
            await backend.aclose()
        assert sent == ["temporary-token"]

    asyncio.run(go())
