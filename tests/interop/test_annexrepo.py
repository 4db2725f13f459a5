"""AnnexRepoStorage: the conformance suite on real repositories, and interop with git-annex."""

from __future__ import annotations

import asyncio
import errno
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from annexproxy.errors import ContentLocked, RepositoryError, StorageError, VerificationFailed
from annexproxy.keys import Key
from annexproxy.storage import writeback
from annexproxy.storage.annexrepo import AnnexRepoStorage
from annexproxy.storage.base import Storage
from annexproxy.storage.retention import parse_timestamp, rtm_path
from annexproxy.testing.realannex import AnnexRepo, add_file, annex_env
from annexproxy.testing.storage_conformance import (
    PresenceLog,
    PresenceRecorder,
    StorageConformance,
    StorageFactory,
    content,
    key_of,
    read_all,
    run,
    store,
)

pytestmark = pytest.mark.interop

RepoFactory = Callable[..., AnnexRepo]
T = TypeVar("T")


class TestNonBareConformance(StorageConformance):
    bare = False
    reads_survive_removal = True

    @pytest.fixture
    def make_storage(self, annex_repo_factory: RepoFactory) -> StorageFactory:
        repo = annex_repo_factory("conf", bare=self.bare)

        def make(*, presence_log: PresenceLog | None = None) -> Storage:
            return AnnexRepoStorage.open(repo.path, presence_log=presence_log)

        return make


class TestBareConformance(TestNonBareConformance):
    bare = True


@pytest.fixture(params=[False, True], ids=["nonbare", "bare"])
def repo(request: pytest.FixtureRequest, annex_repo_factory: RepoFactory) -> AnnexRepo:
    return annex_repo_factory("r", bare=request.param)


def _fsck_ok(repo: AnnexRepo, key: Key) -> None:
    out = repo.annex("fsck", f"--key={key}", "--quiet", check=False)
    assert out.returncode == 0, out
    assert "fixing location log" not in out.stdout + out.stderr


def test_open_reads_config(repo: AnnexRepo) -> None:
    storage = AnnexRepoStorage.open(repo.path)
    assert storage.uuid == repo.uuid
    assert storage.layout.config.bare == repo.bare
    assert storage.layout.config.version == 10
    assert storage.layout.annexdir == repo.annexdir.resolve()


def test_refuses_non_annex_directories(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match="not a git repository"):
        AnnexRepoStorage.open(tmp_path)
    with pytest.raises(RepositoryError, match="not a directory"):
        AnnexRepoStorage.open(tmp_path / "missing")
    plain = tmp_path / "plain"
    subprocess.run(["git", "init", "-q", str(plain)], check=True, env=annex_env())
    with pytest.raises(RepositoryError, match="git annex init"):
        AnnexRepoStorage.open(plain)


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [("annex.pidlock", "true", "pidlock"), ("annex.version", "9", "version 9")],
)
def test_refuses_writes(repo: AnnexRepo, name: str, value: str, reason: str) -> None:
    data = b"readable anyway"
    key = key_of(data)
    run(_store_discard(AnnexRepoStorage.open(repo.path), data))
    repo.git("config", name, value)
    storage = AnnexRepoStorage.open(repo.path)

    async def body() -> None:
        with pytest.raises(RepositoryError, match=reason):
            await store(storage, b"x")
        with pytest.raises(RepositoryError, match=reason):
            await storage.remove(key)
        with pytest.raises(RepositoryError, match=reason):
            await storage.lock_content(key)
        assert await read_all(storage, key) == data

    run(body())


async def _store_discard(storage: Storage, data: bytes) -> None:
    await store(storage, data)


def _contentlocation(repo: AnnexRepo, key: Key) -> Path | None:
    out = repo.annex("contentlocation", str(key), check=False)
    return (repo.path / out.stdout.strip()).resolve() if out.returncode == 0 else None


def test_objects_we_store_pass_git_annex_fsck(repo: AnnexRepo) -> None:
    log = PresenceRecorder()
    storage = AnnexRepoStorage.open(repo.path, presence_log=log)
    data = content(300_000, seed=11)
    key = run_value(store(storage, data))
    obj = storage.find_object(key)
    assert obj is not None
    assert _contentlocation(repo, key) == obj.resolve()
    assert oct(obj.stat().st_mode & 0o777) == oct(0o444)
    assert oct(obj.parent.stat().st_mode & 0o777) == oct(0o555)
    expected_hashdir = key.hashdir_lower() if repo.bare else key.hashdir_mixed()
    assert obj.parent.parent.relative_to(repo.annexdir.resolve() / "objects") == Path(
        expected_hashdir
    )
    out = repo.annex("fsck", f"--key={key}", check=False)
    assert out.returncode == 0, out
    assert log.calls == [(key, True)]
    assert not (repo.annexdir / "tmp" / key.keyfile()).exists()


def test_objects_git_annex_stored_are_retrievable(repo: AnnexRepo, tmp_path: Path) -> None:
    data = content(70_000, seed=12)
    if repo.bare:
        source = tmp_path / "incoming.bin"
        source.write_bytes(data)
        key = Key.parse(repo.annex("calckey", str(source)).stdout.strip())
        repo.annex("setkey", str(key), str(source))
    else:
        key = Key.parse(add_file(repo, "dir/file.bin", data))
    storage = AnnexRepoStorage.open(repo.path)
    assert run_value(storage.checkpresent(key))
    assert storage.find_object(key) == _contentlocation(repo, key)
    assert run_value(read_all(storage, key, 0, 4096)) == data
    assert run_value(read_all(storage, key, 69_999)) == data[69_999:]


def _dropkey(repo: AnnexRepo, key: Key) -> subprocess.CompletedProcess[str]:
    return repo.annex("dropkey", "--force", str(key), check=False)


def test_git_annex_cannot_drop_while_we_lock(repo: AnnexRepo) -> None:
    storage = AnnexRepoStorage.open(repo.path)
    data = content(1000, seed=13)
    key = run_value(store(storage, data))
    obj = storage.find_object(key)
    assert obj is not None

    async def locked() -> None:
        lock = await storage.lock_content(key)
        expiry = parse_timestamp(rtm_path(obj).read_text())
        assert expiry is not None
        out = _dropkey(repo, key)
        assert out.returncode != 0
        assert "content is locked" in out.stderr
        await lock.release()
        assert not rtm_path(obj).exists()

    async def reading() -> None:
        # A read takes no lock (git-annex's own server takes none either), and a drop
        # meanwhile does not cut it short: it goes through the descriptor opened first.
        async with storage.retrieve(key) as src:
            out = _dropkey(repo, key)
            assert out.returncode == 0, out
            assert b"".join([p async for p in src.chunks()]) == data
            assert src.unchanged()

    run(locked())
    assert sorted(p.name for p in obj.parent.iterdir()) == [obj.name]
    run(reading())
    assert not obj.parent.exists()
    assert not run_value(storage.checkpresent(key))


class _P2PServer:
    """git-annex-shell p2pstdio serving the repository; used to make git-annex hold a lock."""

    def __init__(self, repo: AnnexRepo) -> None:
        self.proc = subprocess.Popen(
            ["git-annex-shell", "p2pstdio", str(repo.path), repo.uuid],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=annex_env(),
        )

    def say(self, line: str) -> str:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().decode().strip()

    def start(self) -> None:
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().startswith(b"AUTH-SUCCESS")
        assert self.say("VERSION 1") == "VERSION 1"

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def p2p_server(repo: AnnexRepo) -> Iterator[_P2PServer]:
    server = _P2PServer(repo)
    server.start()
    yield server
    server.kill()


def test_we_refuse_to_remove_what_git_annex_locks(repo: AnnexRepo, p2p_server: _P2PServer) -> None:
    storage = AnnexRepoStorage.open(repo.path)
    key = run_value(store(storage, content(500, seed=14)))
    assert p2p_server.say(f"LOCKCONTENT {key}") == "SUCCESS"
    with pytest.raises(ContentLocked):
        run(storage.remove(key))
    # git-annex dies holding the lock: its retention time still protects the content.
    p2p_server.kill()
    obj = storage.find_object(key)
    assert obj is not None
    assert rtm_path(obj).exists()
    with pytest.raises(ContentLocked, match="retained"):
        run(storage.remove(key))
    later = AnnexRepoStorage.open(repo.path, clock=lambda: time.time() + 601)
    run(later.remove(key))
    assert not obj.parent.exists()
    assert not run_value(storage.checkpresent(key))


def test_retention_we_write_survives_our_crash(repo: AnnexRepo) -> None:
    storage = AnnexRepoStorage.open(repo.path)
    key = run_value(store(storage, content(500, seed=15)))
    script = (
        "import asyncio, os, sys\n"
        "from annexproxy.keys import Key\n"
        "from annexproxy.storage.annexrepo import AnnexRepoStorage\n"
        "async def main():\n"
        "    s = AnnexRepoStorage.open(sys.argv[1])\n"
        "    await s.lock_content(Key.parse(sys.argv[2]))\n"
        "    os._exit(0)\n"
        "asyncio.run(main())\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(repo.path), str(key)], check=True, env=annex_env()
    )
    out = _dropkey(repo, key)
    assert out.returncode != 0
    assert "content is locked" in out.stderr
    assert run_value(storage.checkpresent(key))


def test_truncated_upload_leaves_no_object(repo: AnnexRepo) -> None:
    storage = AnnexRepoStorage.open(repo.path)
    data = content(50_000, seed=16)
    key = key_of(data)

    async def body() -> None:
        async with storage.upload(key) as up:
            await up.write(data[:20_000])
        assert not await storage.checkpresent(key)
        assert _contentlocation(repo, key) is None
        assert (repo.annexdir / "tmp" / key.keyfile()).stat().st_size == 20_000
        async with storage.upload(key) as up:
            assert up.offset == 20_000
            await up.write(b"X" * 30_000)
            with pytest.raises(VerificationFailed):
                await up.commit(sender_valid=True)
        assert not (repo.annexdir / "tmp" / key.keyfile()).exists()
        assert not await storage.checkpresent(key)

    run(body())
    out = repo.annex("fsck", f"--key={key}", check=False)
    assert _contentlocation(repo, key) is None, out


def test_overlong_partial_is_discarded(repo: AnnexRepo) -> None:
    storage = AnnexRepoStorage.open(repo.path)
    data = content(1000, seed=17)
    key = key_of(data)
    tmp = repo.annexdir / "tmp" / key.keyfile()
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(b"z" * 1001)

    async def body() -> None:
        async with storage.upload(key) as up:
            assert up.offset == 0
            await up.write(data)
            await up.commit(sender_valid=True)

    run(body())
    _fsck_ok(repo, key)


def test_remove_cleans_up_like_git_annex(repo: AnnexRepo) -> None:
    storage = AnnexRepoStorage.open(repo.path)
    key = run_value(store(storage, content(10, seed=18)))
    obj = storage.find_object(key)
    assert obj is not None
    lock = run_value(storage.lock_content(key))
    run(lock.release())
    run(storage.remove(key))
    assert not obj.parent.exists()
    assert not obj.parent.parent.exists() or any(obj.parent.parent.iterdir())
    assert not any((repo.annexdir / "transfer" / "download" / "lck").iterdir())


def run_value(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def test_upload_waits_for_another_process_holding_the_download_lock(repo: AnnexRepo) -> None:
    storage = AnnexRepoStorage.open(repo.path)
    data = content(4000, seed=19)
    key = key_of(data)
    lock_path = storage.layout.download_lock_path(key)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys\n"
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)\n"
            "fcntl.lockf(fd, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "sys.stdin.readline()\n",
            str(lock_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert holder.stdout is not None
    assert holder.stdin is not None
    assert holder.stdout.readline() == b"locked\n"
    entered = asyncio.Event()

    async def body() -> None:
        async def upload() -> None:
            async with storage.upload(key) as up:
                entered.set()
                await up.write(data)
                await up.commit(sender_valid=True)

        async with asyncio.TaskGroup() as tg:
            tg.create_task(upload())
            for _ in range(50):
                await asyncio.sleep(0)
            assert not entered.is_set()
            assert holder.stdin is not None
            holder.stdin.write(b"go\n")
            holder.stdin.flush()
        assert entered.is_set()

    try:
        run(body())
    finally:
        holder.stdin.close()
        holder.stdout.close()
        holder.wait()
    _fsck_ok(repo, key)


def test_awkward_key_names(repo: AnnexRepo) -> None:
    storage = AnnexRepoStorage.open(repo.path)
    key = Key.parse("WORM-s5-m1700000000--a%b&c:d_e")
    run(_store_discard_key(storage, b"hello", key))
    obj = storage.find_object(key)
    assert obj is not None
    assert obj.name == "WORM-s5-m1700000000--a&sb&ac&cd_e"
    assert _contentlocation(repo, key) == obj.resolve()
    assert run_value(read_all(storage, key)) == b"hello"
    out = _dropkey(repo, key)
    assert out.returncode == 0, out
    assert not run_value(storage.checkpresent(key))


async def _store_discard_key(storage: Storage, data: bytes, key: Key) -> None:
    await store(storage, data, key)


def test_fsync_follows_annexproxy_fsync(repo: AnnexRepo) -> None:
    assert AnnexRepoStorage.open(repo.path).layout.config.fsync
    repo.git("config", "annexproxy.fsync", "false")
    storage = AnnexRepoStorage.open(repo.path)
    assert not storage.layout.config.fsync
    key = run_value(store(storage, content(1000)))
    _fsck_ok(repo, key)


def test_a_failed_background_flush_fails_the_commit(
    repo: AnnexRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_disk(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(writeback, "WRITEBACK_STEP", 4096)
    monkeypatch.setattr(writeback, "_datasync", broken_disk)
    storage = AnnexRepoStorage.open(repo.path)
    data = content(50_000, seed=18)
    key = key_of(data)

    async def body() -> None:
        async with storage.upload(key) as up:
            await up.write(data)
            with pytest.raises(StorageError, match="Input/output error"):
                await up.commit(sender_valid=True)
        assert not await storage.checkpresent(key)

    run(body())
    assert _contentlocation(repo, key) is None
