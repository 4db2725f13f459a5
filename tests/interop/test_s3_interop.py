"""Our S3 backend and the real git-annex S3 remote on one bucket (SeaweedFS on loopback).

git-annex writes objects our backend must find and read by key; objects our backend writes
git-annex must see (``checkpresentkey``), verify (``fsck --from``) and get.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from annexproxy.branch.logs.remoteconfig import parse_remote_log
from annexproxy.keys import Key
from annexproxy.special.remote import SpecialRemote, find_special_remote
from annexproxy.special.s3 import S3Backend, open_s3
from annexproxy.special.s3config import s3_settings
from annexproxy.testing.realannex import AnnexRepo, add_file, make_annex_repo
from annexproxy.testing.s3server import S3Server, s3_server
from annexproxy.testing.storage_conformance import content

pytestmark = [pytest.mark.interop, pytest.mark.slow]

MIB = 1024 * 1024

# name -> (extra initremote parameters, size of the test files)
CASES = {
    "plain": ((), 100_000),
    "fileprefix": (("fileprefix=annex/objects-",), 100_000),
    # git-annex rounds a part down to a multiple of 32752 bytes (its lazy ByteString
    # chunk), so partsize=5MiB makes parts below S3's 5 MiB minimum: EntityTooSmall.
    "partsize": (("partsize=6MiB",), 13 * MIB + 3),
    "embedcreds": (("embedcreds=yes",), 70_000),
}


@pytest.fixture(scope="module")
def server() -> Iterator[S3Server]:
    with s3_server() as running:
        yield running


def git_config(repo: AnnexRepo) -> dict[str, str]:
    listed = repo.git("config", "--list", "-z").stdout
    entries = {}
    for entry in filter(None, listed.split("\0")):
        name, _, value = entry.partition("\n")
        entries[name] = value
    return entries


def s3_remote(repo: AnnexRepo, name: str) -> SpecialRemote:
    remotes = parse_remote_log(repo.git("cat-file", "-p", "git-annex:remote.log").stdout.encode())
    found = find_special_remote(git_config(repo), remotes, name)
    assert found is not None
    return found


def make_repo(tmp_path: Path, server: S3Server, case: str) -> AnnexRepo:
    extra, _ = CASES[case]
    repo = make_annex_repo(tmp_path / "repo", "client")
    repo.git("config", "annex.security.allowed-ip-addresses", "all")
    repo.annex(
        "initremote",
        "s3",
        "type=S3",
        "host=127.0.0.1",
        f"port={server.port}",
        "protocol=http",
        "requeststyle=path",
        f"bucket=AnnexProxy-{case}",  # git-annex lowercases it, and so must we
        "encryption=none",
        # No signature=: git-annex's default for hosts other than Amazon's is v2. (With
        # signature=v4 git-annex 10.20261026 signs "host:127.0.0.1" but sends the port
        # in Host, so servers on a port other than 80/443 refuse it: SignatureDoesNotMatch.
        # With SeaweedFS on port 80, signature=v4 copy/get by git-annex worked.)
        *extra,
        env=server.env,
    )
    return repo


async def with_backend(repo: AnnexRepo, action: str, key: Key, data: bytes = b"") -> bytes:
    remote = s3_remote(repo, "s3")
    if "s3creds" in remote.params:
        # Leave only the copy in remote.log for us to find (git-annex re-caches it in
        # .git/annex/creds/UUID whenever it reads it).
        (repo.annexdir / "creds" / remote.uuid).unlink(missing_ok=True)
    backend = await open_s3(remote, base=repo.path)
    assert isinstance(backend, S3Backend)
    try:
        if action == "store":
            async with backend.store(key, len(data)) as session:
                for at in range(0, len(data), MIB):
                    await session.write(data[at : at + MIB])
                await session.commit()
            return b""
        assert await backend.present(key)
        if action == "etag":
            head = await (await backend.client()).head_object(
                Bucket=backend.settings.bucket, Key=backend.settings.object_name(key)
            )
            etag: str = head["ETag"]
            return etag.encode()
        return b"".join([chunk async for chunk in backend.retrieve(key)])
    finally:
        await backend.aclose()


@pytest.mark.parametrize("case", list(CASES))
def test_git_annex_and_backend_share_objects(
    server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    repo = make_repo(tmp_path, server, case)
    remote = s3_remote(repo, "s3")
    assert remote.params["bucket"] == f"AnnexProxy-{case}"  # lowercased when used
    assert "signature" not in remote.params
    assert s3_settings(remote, base=repo.path).bucket == f"annexproxy-{case}"
    size = CASES[case][1]

    # git-annex stores; we find the object by its key and read it.
    theirs = content(size, seed=1)
    their_key = Key.parse(add_file(repo, "theirs.bin", theirs))
    repo.annex("copy", "--to", "s3", "theirs.bin")
    assert asyncio.run(with_backend(repo, "read", their_key)) == theirs

    # We store; git-annex sees, verifies and gets the object.
    ours = content(size, seed=2)
    our_key = Key.parse(add_file(repo, "ours.bin", ours))
    assert hashlib.sha256(ours).hexdigest() in str(our_key)
    asyncio.run(with_backend(repo, "store", our_key, ours))
    repo.annex("checkpresentkey", str(our_key), "s3")
    repo.annex("fsck", "--from", "s3", "--fast", "ours.bin")  # records it in the location log
    repo.annex("fsck", "--from", "s3", "ours.bin")  # downloads and checks the hash
    repo.annex("drop", "--force", "ours.bin")
    repo.annex("get", "--from", "s3", "ours.bin")
    assert (repo.path / "ours.bin").read_bytes() == ours
    assert "s3" in repo.annex("whereis", "ours.bin").stdout
    if case == "partsize":  # both uploads were multipart, in three parts
        assert asyncio.run(with_backend(repo, "etag", their_key)).endswith(b'-3"')
        assert asyncio.run(with_backend(repo, "etag", our_key)).endswith(b'-3"')
    if case == "embedcreds":
        assert "s3creds" in repo.git("cat-file", "-p", "git-annex:remote.log").stdout
