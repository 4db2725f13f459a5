"""The server caps glibc's malloc arenas, unless MALLOC_ARENA_MAX says otherwise."""

from __future__ import annotations

import ctypes
import platform

import pytest

from annexproxy.server.malloc_arenas import limit_malloc_arenas


def test_an_explicit_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_glibc_takes_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_malloc_arenas() is True


def test_a_libc_without_mallopt_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.setattr(ctypes, "CDLL", _NoSymbols)
    assert limit_malloc_arenas() is False


class _NoSymbols:
    """A loaded library with none of the symbols asked for (say, not glibc)."""

    def __init__(self, name: str | None, use_errno: bool = False) -> None:
        pass
