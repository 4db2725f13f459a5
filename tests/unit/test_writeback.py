"""Background flushes: one per filled step and file at a time, failures kept, descriptors closed."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from annexproxy.storage import writeback
from annexproxy.storage.writeback import WriteBack


class _Flushes:
    """Stands in for fdatasync: records calls and blocks each until released."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.started = threading.Semaphore(0)
        self.release = threading.Semaphore(0)
        self.fail: OSError | None = None

    def __call__(self, fd: int) -> None:
        os.fstat(fd)  # the duplicate is open while the flush runs
        self.calls.append(fd)
        self.started.release()
        assert self.release.acquire(timeout=10)
        if self.fail is not None:
            raise self.fail


@pytest.fixture
def flushes(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Flushes]:
    fake = _Flushes()
    monkeypatch.setattr(writeback, "_datasync", fake)
    yield fake
    for _ in range(8):
        fake.release.release()  # nothing may stay blocked after a failed test


@pytest.fixture
def fd(tmp_path: Path) -> Iterator[int]:
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    yield fd
    os.close(fd)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _finished(flushes: _Flushes, wb: WriteBack) -> None:
    """Let the running flush end and wait until the write-back took notice."""
    flushes.release.release()
    assert wb.pending is not None
    wb.pending.result(timeout=10)


def test_flushes_once_per_filled_step_and_never_two_at_once(flushes: _Flushes, fd: int) -> None:
    wb = WriteBack(fd, offset=100, step=1000)
    wb.written(1099)
    assert not flushes.calls
    wb.written(1100)
    assert flushes.started.acquire(timeout=10)
    wb.written(5000)  # the first flush still runs: no second one
    _finished(flushes, wb)
    assert len(flushes.calls) == 1
    wb.written(5999)  # step counted from where the running flush started (1100)
    assert flushes.started.acquire(timeout=10)
    _finished(flushes, wb)
    wb.written(6500)  # less than a step after 5999
    wb.close()
    assert len(flushes.calls) == 2
    assert wb.failure() is None


def test_a_failed_flush_is_kept_for_the_commit(flushes: _Flushes, fd: int) -> None:
    flushes.fail = OSError(errno.EIO, "I/O error")
    wb = WriteBack(fd, step=10)
    wb.written(10)
    assert flushes.started.acquire(timeout=10)
    _finished(flushes, wb)
    failure = wb.failure()
    assert failure is not None
    assert failure.errno == errno.EIO
    wb.close()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_the_duplicate_is_closed_after_a_flush_that_outlives_close(
    flushes: _Flushes, fd: int
) -> None:
    before = _open_fds()
    wb = WriteBack(fd, step=10)
    wb.written(10)
    assert flushes.started.acquire(timeout=10)
    wb.close()
    assert _open_fds() == before + 1  # the flush still holds it
    _finished(flushes, wb)
    assert _open_fds() == before
    wb.written(100)  # closed: no more flushes
    assert len(flushes.calls) == 1


def test_an_upload_without_a_filled_step_opens_nothing(flushes: _Flushes, fd: int) -> None:
    wb = WriteBack(fd, step=1 << 20)
    wb.written(4096)
    wb.close()
    assert not flushes.calls


def test_real_file_keeps_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "f"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    wb = WriteBack(fd, step=4096)
    data = os.urandom(3 * 4096 + 5)
    os.write(fd, data)
    wb.written(len(data))
    os.fsync(fd)
    wb.close()
    os.close(fd)
    assert path.read_bytes() == data
    assert wb.failure() is None


def test_finish_waits_for_a_running_flush_and_reports_its_failure(
    flushes: _Flushes, fd: int
) -> None:
    """A flush that fails after the final fsync returned must still fail the commit."""
    flushes.fail = OSError(errno.EIO, "I/O error")
    wb = WriteBack(fd, step=10)
    wb.written(10)
    assert flushes.started.acquire(timeout=10)
    assert wb.failure() is None  # still running: nothing known yet
    finished: list[OSError | None] = []
    committer = threading.Thread(target=lambda: finished.append(wb.finish()))
    committer.start()
    flushes.release.release()
    committer.join(timeout=10)
    assert not committer.is_alive()
    assert finished[0] is not None
    assert finished[0].errno == errno.EIO


def test_without_a_spare_descriptor_only_the_final_fsync_remains(
    flushes: _Flushes, fd: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_descriptors(_fd: int) -> int:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(os, "dup", no_descriptors)
    wb = WriteBack(fd, step=10)
    wb.written(10)
    wb.written(20)
    assert not flushes.calls
    assert wb.finish() is None  # not a failure of the data: nothing to report
