"""``annex.diskreserve``: how much free space a local file system must keep (pure).

Owns the setting's default and parsing, and the arithmetic of git-annex's
``checkDiskSpace`` (Annex/Content/LowLevel.hs): writing ``need`` more bytes is allowed
when ``need + reserve + in_progress - free <= 0``, where ``in_progress`` is what
other transfers on the same file system are still to write. The caller measures free
space; nothing here does I/O.
"""

from __future__ import annotations

from annexproxy.space.units import parse_size

DEFAULT_DISK_RESERVE = 100 * 1_000_000
"""git-annex's default ``annex.diskreserve``: 100 MB (``onemegabyte * 100``, 10^6 bytes)."""


def disk_reserve(text: str | None) -> int:
    """The reserve ``annex.diskreserve`` sets, as git-annex reads it.

    A value that does not parse as a size (``readSize dataUnits``) leaves the default,
    as in git-annex (Types/GitConfig.hs: ``fromMaybe (onemegabyte * 100)``).
    """
    if text is None:
        return DEFAULT_DISK_RESERVE
    parsed = parse_size(text)
    return DEFAULT_DISK_RESERVE if parsed is None else parsed


def shortfall(*, need: int, free: int, reserve: int, in_progress: int = 0) -> int:
    """Bytes missing to write ``need`` more while keeping ``reserve`` free (<= 0: none).

    Args:
        need: bytes about to be written.
        free: bytes free on the file system now.
        reserve: ``annex.diskreserve``.
        in_progress: bytes other transfers to this file system are still to write.
    """
    return need + reserve + in_progress - free


def rough_size(count: int) -> str:
    """A byte count for messages, in the largest SI unit that keeps it above 1 (``3.2 GB``)."""
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if abs(count) >= size:
            return f"{count / size:.1f} {unit}".replace(".0 ", " ")
    return f"{count} B"
