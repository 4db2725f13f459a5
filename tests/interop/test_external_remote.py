"""The external special remote backend against real git-annex and a real remote program.

The program is ``git-annex-remote-testdir`` (tests/interop/testdir_remote.py), put on
PATH for the test. git-annex sets the remote up and uses it; our backend must read what
git-annex stored, store what git-annex then finds, and fail cleanly when the program
crashes.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import signal
from collections.abc import AsyncIterator, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from annexproxy.branch.logs.remoteconfig import parse_remote_log
from annexproxy.errors import KeyNotPresent, NodeUnavailable, OutOfSpace
from annexproxy.keys import Key
from annexproxy.special.backend import LocalSettings
from annexproxy.special.external import MAX_PROCESSES, ExternalBackend, open_external
from annexproxy.special.registry import open_backend
from annexproxy.special.remote import SpecialRemote, find_special_remote
from annexproxy.storage.contentlock import try_lock
from annexproxy.testing.realannex import AnnexRepo, add_file, make_annex_repo

pytestmark = [pytest.mark.interop, pytest.mark.slow]


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def key_of(data: bytes, ext: str = "") -> Key:
    return Key.parse(f"SHA256E-s{len(data)}--{hashlib.sha256(data).hexdigest()}{ext}")


def blob(size: int, seed: int = 1) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}-{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    path = tmp_path / "store dir"
    path.mkdir()
    return path


def setup_remote(repo: AnnexRepo, store: Path, *extra: str) -> None:
    repo.annex(
        "initremote",
        "ext",
        "type=external",
        "externaltype=testdir",
        "encryption=none",
        f"directory={store}",
        *extra,
    )


@pytest.fixture
def repo(tmp_path: Path, program_on_path: Path, store_dir: Path) -> AnnexRepo:
    """A repository (path with a space) with the external remote ``ext``."""
    made = make_annex_repo(tmp_path / "the repo", "origin")
    setup_remote(made, store_dir)
    return made


def special_remote(repo: AnnexRepo, name: str = "ext") -> SpecialRemote:
    """The remote as the gateway sees it: remote.log plus git config."""
    log = repo.git("show", "git-annex:remote.log").stdout.encode()
    lines = repo.git("config", "--list").stdout.splitlines()
    entries = dict(line.split("=", 1) for line in lines if "=" in line)
    found = find_special_remote(entries, parse_remote_log(log), name)
    assert found is not None
    return found


@asynccontextmanager
async def backend_of(repo: AnnexRepo) -> AsyncIterator[ExternalBackend]:
    backend = await open_external(special_remote(repo), base=repo.path)
    assert isinstance(backend, ExternalBackend)
    try:
        yield backend
    finally:
        await backend.aclose()


async def read_all(backend: ExternalBackend, key: Key, offset: int = 0) -> bytes:
    return b"".join([chunk async for chunk in backend.retrieve(key, offset)])


async def store(backend: ExternalBackend, key: Key, data: bytes) -> None:
    async with backend.store(key, len(data)) as session:
        for start in range(0, len(data), 50_000):
            await session.write(data[start : start + 50_000])
        await session.commit()


def leftover_tmp(repo: AnnexRepo) -> list[str]:
    """Our files below annex/tmp (kept download spools included; empty directories not)."""
    tmp = repo.annexdir / "tmp"
    found = tmp.rglob("*") if tmp.exists() else []
    names = (str(p.relative_to(tmp)) for p in found if not p.is_dir())
    return sorted(name for name in names if name.startswith("annexproxy-"))


def test_reads_what_git_annex_stored(repo: AnnexRepo, store_dir: Path) -> None:
    data = blob(300_000)
    key = Key.parse(add_file(repo, "some file.bin", data))
    repo.annex("copy", "--to", "ext", "some file.bin")

    async def body() -> None:
        async with backend_of(repo) as backend:
            assert await backend.present(key)
            assert await read_all(backend, key) == data
            assert await read_all(backend, key, 123_456) == data[123_456:]
            assert backend.started == 1  # one process served every request

    run(body())
    assert leftover_tmp(repo) == []
    # What git-annex and we told the program at PREPARE.
    theirs, ours = (
        json.loads(line) for line in (store_dir / "prepare.log").read_text().splitlines()
    )
    assert ours["uuid"] == theirs["uuid"] == special_remote(repo).uuid
    assert ours["remotename"] == theirs["remotename"] == "ext"
    assert ours["missing"] == theirs["missing"] == ""
    assert theirs["gitdir"] == ".git"  # git-annex: relative to where it runs
    assert ours["gitdir"] == str(repo.gitdir.resolve()) == ours["GIT_DIR"]
    assert ours["GIT_WORK_TREE"] == str(repo.path.resolve())
    assert ours["cwd"] == theirs["cwd"] == str(repo.path.resolve())
    # aclose ended our program (and it was reaped).
    with pytest.raises(ProcessLookupError):
        os.kill(ours["pid"], 0)


def test_git_annex_sees_what_we_store(repo: AnnexRepo) -> None:
    data = blob(200_000, seed=2)
    key = key_of(data, ".dat")

    async def body() -> None:
        async with backend_of(repo) as backend:
            assert not await backend.present(key)
            await store(backend, key, data)
            assert await backend.present(key)

    run(body())
    assert leftover_tmp(repo) == []
    repo.annex("checkpresentkey", str(key), "ext")
    repo.annex("fromkey", "--force", str(key), "stored by us.dat")
    repo.annex("fsck", "--from", "ext", "stored by us.dat")
    repo.annex("get", "--from", "ext", "stored by us.dat")
    assert (repo.path / "stored by us.dat").read_bytes() == data


def test_remove_is_seen_by_git_annex(repo: AnnexRepo) -> None:
    data = b"to be removed\n"
    key = Key.parse(add_file(repo, "gone", data))
    repo.annex("copy", "--to", "ext", "gone")

    async def body() -> None:
        async with backend_of(repo) as backend:
            await backend.remove(key)
            assert not await backend.present(key)
            await backend.remove(key)  # absent: not an error

    run(body())
    assert repo.annex("checkpresentkey", str(key), "ext", check=False).returncode != 0


def test_absent_key(repo: AnnexRepo) -> None:
    key = key_of(b"never stored")

    async def body() -> None:
        async with backend_of(repo) as backend:
            assert not await backend.present(key)
            with pytest.raises(KeyNotPresent, match="does not have"):
                await read_all(backend, key)
            assert backend.started == 1  # a TRANSFER-FAILURE does not cost the process

    run(body())
    assert leftover_tmp(repo) == []


def test_crash_mid_store_leaves_nothing(repo: AnnexRepo, store_dir: Path) -> None:
    data = blob(500_000, seed=3)
    key = key_of(data)
    (store_dir / "CRASH-STORE").touch()

    async def body() -> None:
        async with backend_of(repo) as backend:
            with pytest.raises(NodeUnavailable, match=r"exited with status 3.*started again"):
                await store(backend, key, data)
            (store_dir / "CRASH-STORE").unlink()
            assert not await backend.present(key)  # on a fresh process
            assert backend.started == 2
            await store(backend, key, data)
            assert await read_all(backend, key) == data

    run(body())
    assert leftover_tmp(repo) == []
    repo.annex("checkpresentkey", str(key), "ext")


def test_crash_mid_retrieve(repo: AnnexRepo, store_dir: Path) -> None:
    data = blob(500_000, seed=4)
    key = Key.parse(add_file(repo, "big", data))
    repo.annex("copy", "--to", "ext", "big")
    (store_dir / "CRASH-RETRIEVE").touch()

    async def body() -> None:
        async with backend_of(repo) as backend:
            with pytest.raises(NodeUnavailable, match="exited with status 3"):
                await read_all(backend, key)
            (store_dir / "CRASH-RETRIEVE").unlink()
            assert await read_all(backend, key) == data

    run(body())
    assert leftover_tmp(repo) == []


def test_download_streams_while_the_file_grows(repo: AnnexRepo, store_dir: Path) -> None:
    data = blob(400_000, seed=5)
    key = Key.parse(add_file(repo, "streamed", data))
    repo.annex("copy", "--to", "ext", "streamed")
    gate = store_dir / "GATE"
    os.mkfifo(gate)

    def open_gate() -> None:
        with gate.open("wb"):
            pass

    async def body() -> None:
        async with backend_of(repo) as backend:
            chunks = backend.retrieve(key)
            # The program has written only its first 64 KiB and waits on the FIFO.
            first = await anext(chunks)
            assert 0 < len(first) <= 64 * 1024
            await asyncio.to_thread(open_gate)
            rest = b"".join([chunk async for chunk in chunks])
            assert first + rest == data

    run(body())
    assert leftover_tmp(repo) == []


def test_abandoned_download_kills_the_program(repo: AnnexRepo, store_dir: Path) -> None:
    data = blob(400_000, seed=6)
    key = Key.parse(add_file(repo, "abandoned", data))
    repo.annex("copy", "--to", "ext", "abandoned")
    os.mkfifo(store_dir / "GATE")

    async def body() -> None:
        async with backend_of(repo) as backend:
            chunks = backend.retrieve(key)
            await anext(chunks)
            await chunks.aclose()  # the program is blocked mid-transfer: it is killed
            (store_dir / "GATE").unlink()
            assert await read_all(backend, key) == data
            assert backend.started == 2

    run(body())
    assert leftover_tmp(repo) == []


@pytest.mark.parametrize("config", [["ordered=no"], ["ordered=no", "replace=yes"], ["replace=yes"]])
def test_unordered_remote_sends_after_download(
    tmp_path: Path, program_on_path: Path, store_dir: Path, config: list[str]
) -> None:
    repo = make_annex_repo(tmp_path / "unordered", "unordered")
    setup_remote(repo, store_dir, *config)
    data = blob(150_000, seed=7)
    key = Key.parse(add_file(repo, "f", data))
    repo.annex("copy", "--to", "ext", "f")

    async def body() -> None:
        async with backend_of(repo) as backend:
            assert await read_all(backend, key, 10) == data[10:]

    run(body())
    assert "GETORDERED" in (store_dir / "trace.log").read_text().splitlines()


def test_bare_gateway_repository(tmp_path: Path, program_on_path: Path, store_dir: Path) -> None:
    repo = make_annex_repo(tmp_path / "bare.git", "bare", bare=True)
    setup_remote(repo, store_dir)
    data = b"in a bare repository\n"
    key = key_of(data)

    async def body() -> None:
        async with backend_of(repo) as backend:
            await store(backend, key, data)
            assert await read_all(backend, key) == data

    run(body())
    repo.annex("checkpresentkey", str(key), "ext")
    ours, theirs = (json.loads(s) for s in (store_dir / "prepare.log").read_text().splitlines())
    assert ours["GIT_DIR"] == ours["gitdir"] == ours["cwd"] == str(repo.path.resolve())
    assert theirs["GIT_DIR"] == theirs["gitdir"] == "."  # git-annex in a bare repository
    assert ours["GIT_WORK_TREE"] is theirs["GIT_WORK_TREE"] is None


def test_missing_program(repo: AnnexRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    remote = special_remote(repo)
    monkeypatch.setenv("PATH", "/nonexistent")

    async def body() -> None:
        async with AsyncExitStack() as stack:
            backend = await open_backend(remote, stack, base=repo.path)
            with pytest.raises(NodeUnavailable, match=r"git-annex-remote-testdir.*not installed"):
                await backend.present(key_of(b"x"))

    run(body())


def test_concurrent_requests_use_a_few_programs(repo: AnnexRepo) -> None:
    datas = [blob(100_000, seed=10 + i) for i in range(8)]
    keys = [key_of(data) for data in datas]

    async def body() -> None:
        async with backend_of(repo) as backend:
            await asyncio.gather(*(store(backend, k, d) for k, d in zip(keys, datas, strict=True)))
            assert await asyncio.gather(*(read_all(backend, k) for k in keys)) == datas
            assert all(await asyncio.gather(*(backend.present(k) for k in keys)))
            assert 1 <= backend.started <= MAX_PROCESSES

    run(body())
    assert leftover_tmp(repo) == []
    for key in keys:
        repo.annex("checkpresentkey", str(key), "ext")


def test_program_that_died_while_idle_is_replaced(repo: AnnexRepo, store_dir: Path) -> None:
    data = b"still here\n"
    key = Key.parse(add_file(repo, "kept", data))
    repo.annex("copy", "--to", "ext", "kept")

    async def body() -> None:
        async with backend_of(repo) as backend:
            assert await backend.present(key)
            pid = json.loads((store_dir / "prepare.log").read_text().splitlines()[-1])["pid"]
            os.kill(pid, signal.SIGKILL)
            # Wait until asyncio has reaped it (an event, not a sleep).
            idle = backend._idle[0]
            await idle._proc.wait()
            assert await backend.present(key)
            assert backend.started == 2

    run(body())


def test_an_interrupted_download_continues_from_its_kept_spool(
    repo: AnnexRepo, store_dir: Path
) -> None:
    repo.annex("enableremote", "ext", "resume=yes")
    data = blob(500_000, seed=8)
    key = Key.parse(add_file(repo, "resumed", data))
    repo.annex("copy", "--to", "ext", "resumed")
    (store_dir / "CRASH-RETRIEVE").touch()
    uuid = special_remote(repo).uuid
    spool = f"annexproxy-partial/{uuid}/{key.keyfile()}"

    async def body() -> None:
        async with backend_of(repo) as backend:
            with pytest.raises(NodeUnavailable, match="exited with status 3"):
                await read_all(backend, key)
            # The program wrote its first 64 KiB before dying: kept for the next download.
            assert leftover_tmp(repo) == [spool]
            assert (repo.annexdir / "tmp" / spool).stat().st_size == 64 * 1024
            (store_dir / "CRASH-RETRIEVE").unlink()
            assert await read_all(backend, key, 1000) == data[1000:]

    run(body())
    # The second download was handed the partial file, and the program continued it.
    log = (store_dir / "resume.log").read_text().splitlines()
    assert log == [f"{key} 0", f"{key} {64 * 1024}"]
    assert leftover_tmp(repo) == []  # a completed download's spool is deleted


def test_kept_spools_are_bounded(
    repo: AnnexRepo, store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("annexproxy.special.external.KEEP_PARTIAL_FILES", 1)
    keys = []
    for seed in (9, 10):
        keys.append(Key.parse(add_file(repo, f"file{seed}", blob(300_000, seed=seed))))
    repo.annex("copy", "--to", "ext", "file9", "file10")
    (store_dir / "CRASH-RETRIEVE").touch()

    async def body() -> None:
        async with backend_of(repo) as backend:
            for key in keys:
                with pytest.raises(NodeUnavailable):
                    await read_all(backend, key)

    run(body())
    uuid = special_remote(repo).uuid
    assert leftover_tmp(repo) == [f"annexproxy-partial/{uuid}/{keys[1].keyfile()}"]


def test_spooling_keeps_annex_diskreserve_free(repo: AnnexRepo, store_dir: Path) -> None:
    data = blob(200_000, seed=11)
    key = Key.parse(add_file(repo, "reserved", data))
    repo.annex("copy", "--to", "ext", "reserved")
    other = key_of(b"not stored")

    async def body() -> None:
        greedy = LocalSettings(disk_reserve=10**18)  # more than any disk has free
        backend = await open_external(special_remote(repo), base=repo.path, local=greedy)
        assert isinstance(backend, ExternalBackend)
        try:
            with pytest.raises(OutOfSpace, match=r"annex\.diskreserve"):
                await read_all(backend, key)
            with pytest.raises(OutOfSpace, match=r"annex\.diskreserve"):
                async with backend.store(other, 10):
                    pass  # pragma: no cover
            assert backend.started == 0  # refused before the program was asked
        finally:
            await backend.aclose()

    run(body())
    assert leftover_tmp(repo) == []


def test_a_download_of_unknown_length_stops_at_the_reserve(
    repo: AnnexRepo, store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An encrypted object's name has no size: its spool claims room as it grows.
    monkeypatch.setattr("annexproxy.special.spool.GROWTH", 64 * 1024)
    data = blob(600_000, seed=12)
    key = Key.parse(f"SHA256E--{hashlib.sha256(data).hexdigest()}.bin")  # no -s field
    reserve = 10**9
    looks = itertools.count()

    def shrinking(_: Path) -> int:  # the disk fills between looks
        return reserve + 200_000 - 64 * 1024 * next(looks)

    async def body() -> None:
        async with backend_of(repo) as plain:
            await store(plain, key, data)
        backend = ExternalBackend(
            special_remote(repo),
            program="git-annex-remote-testdir",
            base=repo.path,
            disk_reserve=reserve,
            free_space=shrinking,
        )
        try:
            with pytest.raises(OutOfSpace, match=r"annex\.diskreserve"):
                await read_all(backend, key)
        finally:
            await backend.aclose()

    run(body())
    # Looked at the disk when the download began and again as it outgrew its claim.
    assert next(looks) >= 2


def test_stores_of_one_group_share_a_spool_others_do_not(repo: AnnexRepo, store_dir: Path) -> None:
    data = blob(300_000, seed=13)
    key = key_of(data, ".bin")
    fanout, other = object(), object()

    async def body() -> None:
        async with (
            backend_of(repo) as one,
            backend_of(repo) as two,
            one.store_shared(key, len(data), fanout) as first,
            two.store_shared(key, len(data), fanout) as second,
            one.store_shared(key, len(data), other) as third,
        ):
            for at in range(0, len(data), 100_000):
                piece = data[at : at + 100_000]
                await first.write(piece)
                await second.write(piece)  # already in the shared file: skipped
                await third.write(piece)
            assert len(leftover_tmp(repo)) == 2  # one per group
            for session in (first, second, third):
                await session.commit()
            assert await one.present(key)

    run(body())
    lines = (store_dir / "trace.log").read_text().splitlines()
    stores = [line.split()[-1] for line in lines if line.startswith("TRANSFER STORE")]
    assert len(stores) == 3
    assert stores[0] == stores[1] != stores[2]
    assert leftover_tmp(repo) == []


def test_a_spool_in_use_is_left_to_its_download(repo: AnnexRepo, store_dir: Path) -> None:
    repo.annex("enableremote", "ext", "resume=yes")
    data = blob(200_000, seed=14)
    key = Key.parse(add_file(repo, "busy", data))
    repo.annex("copy", "--to", "ext", "busy")
    partial = repo.annexdir / "tmp" / "annexproxy-partial" / special_remote(repo).uuid
    partial.mkdir(parents=True)
    (partial / key.keyfile()).write_bytes(b"another download's bytes")
    held = try_lock(partial / f"lck.{key.keyfile()}", exclusive=True)  # that download
    assert held is not None

    async def body() -> None:
        async with backend_of(repo) as backend:
            assert await read_all(backend, key) == data

    try:
        run(body())
        # Ours went to a file of its own, which is gone; theirs is untouched.
        assert (partial / key.keyfile()).read_bytes() == b"another download's bytes"
        assert (store_dir / "resume.log").read_text() == f"{key} 0\n"
        theirs = f"annexproxy-partial/{special_remote(repo).uuid}"
        assert leftover_tmp(repo) == [f"{theirs}/{key}", f"{theirs}/lck.{key}"]
    finally:
        held.release(unlink=True)
