"""Early write-back: started once per completed step, and harmless on a real file."""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

import pytest

from annexproxy.storage import writeback
from annexproxy.storage.writeback import WriteBack


def test_starts_writeback_once_per_completed_step(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int, int]] = []
    monkeypatch.setattr(writeback, "_START", lambda fd, off, n: calls.append((fd, off, n)))
    wb = WriteBack(7, offset=100, step=1000)
    for end in (600, 1099, 1100, 1500, 2100, 5000):
        wb.written(end)
    assert calls == [(7, 100, 1000), (7, 1100, 1000), (7, 2100, 2900)]


def test_without_sync_file_range_it_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writeback, "_START", None)
    WriteBack(-1, step=1).written(10)  # an invalid fd is never touched


def test_real_file_keeps_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "f"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    wb = WriteBack(fd, step=4096)
    data = os.urandom(3 * 4096 + 5)
    os.write(fd, data)
    wb.written(len(data))
    os.fsync(fd)
    os.close(fd)
    assert path.read_bytes() == data


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")
def test_sync_file_range_is_found_in_the_loaded_libc() -> None:
    assert writeback._load() is not None


def test_a_libc_without_sync_file_range_gives_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ctypes, "CDLL", _NoSymbols)
    assert writeback._load() is None


class _NoSymbols:
    """A loaded library with none of the symbols asked for."""

    def __init__(self, name: str | None, use_errno: bool = False) -> None:
        pass
