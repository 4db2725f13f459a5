"""Encrypted special remotes: objects we write are git-annex's, and git-annex's are ours.

A real git-annex repository sets up directory special remotes with ``encryption=shared``,
``hybrid`` and ``pubkey`` (a throwaway gpg key in a private GNUPGHOME) and copies files
there; `EncryptedBackend`, over a minimal stand-in for the directory layout, reads those
objects back by key, and stores new ones that git-annex then gets and fscks.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from annexproxy.branch.logs.remoteconfig import parse_remote_log
from annexproxy.errors import KeyNotPresent, StorageError
from annexproxy.keys import Key
from annexproxy.special.encryption import EncryptedBackend, cipher_of
from annexproxy.special.remote import SpecialRemote, find_special_remote
from annexproxy.testing.realannex import AnnexRepo, make_annex_repo
from annexproxy.uuids import RepoUUID

pytestmark = [pytest.mark.interop, pytest.mark.slow]


class TreeSession:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + ".part")
        self.tmp.parent.mkdir(parents=True, exist_ok=True)
        self.handle = self.tmp.open("wb")

    async def write(self, data: bytes) -> None:
        self.handle.write(data)

    async def commit(self) -> None:
        self.handle.close()
        self.tmp.rename(self.path)


class TreeBackend:
    """Objects at ``<dir>/<hashdirlower><kf>/<kf>``, as git-annex's directory remote keeps them."""

    def __init__(self, top: Path) -> None:
        self.top = top

    def _path(self, name: Key) -> Path:
        return self.top / name.hashdir_lower() / name.keyfile() / name.keyfile()

    @asynccontextmanager
    async def store(self, name: Key, size: int | None) -> AsyncIterator[TreeSession]:
        session = TreeSession(self._path(name))
        try:
            yield session
        finally:
            if not session.handle.closed:
                session.handle.close()
                session.tmp.unlink()

    async def retrieve(self, name: Key, offset: int = 0) -> AsyncIterator[bytes]:
        path = self._path(name)
        if not path.exists():
            raise KeyNotPresent(f"{name} is not in {self.top}", key=str(name))
        with path.open("rb") as handle:
            handle.seek(offset)
            while chunk := handle.read(1 << 16):
                yield chunk

    def local_path(self, name: Key) -> Path | None:
        return None

    async def present(self, name: Key) -> bool:
        return self._path(name).exists()

    async def remove(self, name: Key) -> None:
        self._path(name).unlink(missing_ok=True)

    async def aclose(self) -> None:
        pass


@pytest.fixture(scope="module")
def gnupg_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(
        ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "annexproxy test <t@t>",
         "default", "default", "never"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    listing = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--list-keys"],
        env=env, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    (home / "keyid").write_text(
        re.findall(r"^pub:[^:]*:[^:]*:[^:]*:([0-9A-F]+):", listing, re.M)[0]
    )
    old = os.environ.get("GNUPGHOME")
    os.environ["GNUPGHOME"] = str(home)  # for our gpg processes
    yield home
    if old is None:
        del os.environ["GNUPGHOME"]
    else:
        os.environ["GNUPGHOME"] = old
    subprocess.run(["gpgconf", "--kill", "all"], env=env, check=False)


def _remote(repo: AnnexRepo, name: str) -> SpecialRemote:
    entries = dict(line.split("=", 1) for line in repo.git("config", "--list").stdout.splitlines())
    log = repo.git("cat-file", "-p", "git-annex:remote.log").stdout.encode()
    found = find_special_remote(entries, parse_remote_log(log), name)
    assert found is not None
    return found


async def _read(backend: EncryptedBackend, key: Key, offset: int = 0) -> bytes:
    return b"".join([chunk async for chunk in backend.retrieve(key, offset)])


async def _write(backend: EncryptedBackend, key: Key, data: bytes) -> None:
    async with backend.store(key, len(data)) as session:
        for i in range(0, len(data), 1000):
            await session.write(data[i : i + 1000])
        await session.commit()


@pytest.mark.parametrize("scheme", ["shared", "hybrid", "pubkey"])
def test_objects_cross_between_git_annex_and_us(
    tmp_path: Path, gnupg_home: Path, scheme: str
) -> None:
    repo = make_annex_repo(tmp_path / "repo", "plain")
    repo = AnnexRepo(path=repo.path, uuid=repo.uuid, bare=False, env={"GNUPGHOME": str(gnupg_home)})
    store = tmp_path / "store"
    store.mkdir()
    keyid = (gnupg_home / "keyid").read_text()
    extra = [] if scheme == "shared" else [f"keyid={keyid}"]
    repo.annex(
        "initremote", "-q", "enc", "type=directory", f"directory={store}",
        f"encryption={scheme}", *extra,
    )  # fmt: skip
    theirs = b"stored by git-annex\n" * 3000
    (repo.path / "theirs.bin").write_bytes(theirs)
    repo.annex("add", "-q", "theirs.bin")
    repo.git("commit", "-q", "-m", "theirs")
    repo.annex("copy", "-q", "--to", "enc", "theirs.bin")
    their_key = Key.parse(repo.annex("lookupkey", "theirs.bin").stdout.strip())

    remote = _remote(repo, "enc")
    assert remote.uuid == RepoUUID(repo.git("config", "remote.enc.annex-uuid").stdout.strip())
    cipher = cipher_of(remote)
    assert cipher is not None
    backend = EncryptedBackend(TreeBackend(store), cipher)
    assert asyncio.run(_read(backend, their_key)) == theirs
    assert asyncio.run(_read(backend, their_key, 1000)) == theirs[1000:]
    assert asyncio.run(backend.present(their_key))

    ours = b"stored through annexproxy\n" * 5000
    (repo.path / "ours.bin").write_bytes(ours)
    repo.annex("add", "-q", "ours.bin")
    repo.git("commit", "-q", "-m", "ours")
    our_key = Key.parse(repo.annex("lookupkey", "ours.bin").stdout.strip())
    asyncio.run(_write(backend, our_key, ours))
    uuid = remote.uuid
    assert repo.annex("checkpresentkey", str(our_key), uuid, check=False).returncode == 0
    repo.annex("drop", "-q", "--force", "ours.bin")
    repo.annex("get", "-q", "--from", "enc", "ours.bin")
    assert (repo.path / "ours.bin").read_bytes() == ours
    repo.annex("fsck", "-q", "--from", "enc", "ours.bin")


def test_wrong_or_missing_objects_fail_clearly(tmp_path: Path, gnupg_home: Path) -> None:
    repo = make_annex_repo(tmp_path / "repo", "plain")
    store = tmp_path / "store"
    store.mkdir()
    repo.annex(
        "initremote", "-q", "enc", "type=directory", f"directory={store}", "encryption=shared"
    )
    cipher = cipher_of(_remote(repo, "enc"))
    assert cipher is not None
    backend = EncryptedBackend(TreeBackend(store), cipher)
    key = Key.parse("SHA256E-s3--" + "0" * 64)
    with pytest.raises(KeyNotPresent):
        asyncio.run(_read(backend, key))
    # An object that is not what gpg wrote: an error, not silently wrong bytes.
    path = TreeBackend(store)._path(cipher.encrypted_key(key))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not encrypted at all")
    with pytest.raises(StorageError):
        asyncio.run(_read(backend, key))
    # A store left without commit leaves nothing behind.

    async def abandon() -> None:
        async with backend.store(key, 3) as session:
            await session.write(b"abc")

    path.unlink()
    asyncio.run(abandon())
    assert not asyncio.run(backend.present(key))
