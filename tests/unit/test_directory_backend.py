"""The directory backend when two processes store the same key at once."""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path

import pytest

from annexproxy.errors import StorageError
from annexproxy.keys import Key
from annexproxy.special.directory import DirectoryBackend
from annexproxy.storage import writeback

KEY = Key.parse("SHA256E-s8--" + "a" * 64 + ".bin")


def _stored(top: Path) -> list[bytes]:
    return [
        p.read_bytes()
        for p in top.rglob("*")
        if p.is_file() and "tmp" not in p.relative_to(top).parts
    ]


def test_interleaved_stores_of_one_key_do_not_mix(tmp_path: Path) -> None:
    async def go(top: Path) -> None:
        # Two backends on one directory stand for two gateway processes.
        first, second = DirectoryBackend(top), DirectoryBackend(top)
        async with first.store(KEY, 8) as one, second.store(KEY, 8) as two:
            await one.write(b"1111")
            await two.write(b"2222")
            await one.write(b"1111")
            await one.commit()
            assert _stored(top) == [b"11111111"]
            await two.write(b"2222")
            await two.commit()
        assert _stored(top) == [b"22222222"]
        assert not [p for p in (top / "tmp").rglob("*") if p.is_file()]

    asyncio.run(go(tmp_path))


def test_an_abandoned_store_leaves_the_other_alone(tmp_path: Path) -> None:
    async def go() -> None:
        first, second = DirectoryBackend(tmp_path), DirectoryBackend(tmp_path)
        async with second.store(KEY, 8) as two:
            async with first.store(KEY, 8) as one:
                await one.write(b"1111")
                await two.write(b"22222222")
            # the first store ended without commit
            await two.commit()
        assert _stored(tmp_path) == [b"22222222"]

    asyncio.run(go())


def test_a_dead_process_store_is_swept(tmp_path: Path) -> None:
    async def go() -> None:
        async with DirectoryBackend(tmp_path).store(KEY, 8) as one:
            await one.write(b"1111")
            left = one.tmpdir
            # As if this process had been killed: a pid that is not running.
            dead = left.with_name(left.name.replace(f"-{os.getpid()}-", "-999999999-"))
            left.rename(dead)
            left.mkdir()
            async with DirectoryBackend(tmp_path).store(KEY, 8) as two:
                await two.write(b"22222222")
                await two.commit()
                assert not dead.exists()
                assert left.exists()  # a live process's store is left alone
        assert _stored(tmp_path) == [b"22222222"]

    asyncio.run(go())


def test_a_failed_background_flush_fails_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_disk(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(writeback, "WRITEBACK_STEP", 4)
    monkeypatch.setattr(writeback, "_datasync", broken_disk)

    async def go() -> None:
        async with DirectoryBackend(tmp_path).store(KEY, 8) as one:
            await one.write(b"1111")
            await one.write(b"1111")
            with pytest.raises(StorageError, match="Input/output error"):
                await one.commit()
        assert _stored(tmp_path) == []

    asyncio.run(go())
