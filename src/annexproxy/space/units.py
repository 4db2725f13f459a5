"""Data sizes with units, parsed as git-annex's ``readSize dataUnits`` parses them.

Owns the unit tables (storage, committee and bandwidth units) and the size grammar of
preferred-content.md section 7 (``1mb``, ``1.5 TiB``, ``100 KiloBytes``, ``0x10``).
Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from annexproxy.space.numbers import haskell_round, is_haskell_space, read_double_prefix


@dataclass(frozen=True, slots=True)
class Unit:
    """One unit: its size in bytes, abbreviation and name."""

    size: int
    abbrev: str
    name: str


_STORAGE = tuple(
    Unit(1000**power, abbrev, name)
    for power, abbrev, name in (
        (10, "QB", "quettabyte"),
        (9, "RB", "ronnabyte"),
        (8, "YB", "yottabyte"),
        (7, "ZB", "zettabyte"),
        (6, "EB", "exabyte"),
        (5, "PB", "petabyte"),
        (4, "TB", "terabyte"),
        (3, "GB", "gigabyte"),
        (2, "MB", "megabyte"),
        (1, "kB", "kilobyte"),
        (0, "B", "byte"),
    )
)
_COMMITTEE = tuple(
    Unit(1 << (10 * power), abbrev, name)
    for power, abbrev, name in (
        (8, "YiB", "yobibyte"),
        (7, "ZiB", "zebibyte"),
        (6, "EiB", "exbibyte"),
        (5, "PiB", "pebibyte"),
        (4, "TiB", "tebibyte"),
        (3, "GiB", "gibibyte"),
        (2, "MiB", "mebibyte"),
        (1, "KiB", "kibibyte"),
        (0, "B", "byte"),
    )
)
_BANDWIDTH = tuple(
    Unit(1000**power // 8, abbrev, name)
    for power, abbrev, name in (
        (8, "Ybit", "yottabit"),
        (7, "Zbit", "zettabit"),
        (6, "Ebit", "exabit"),
        (5, "Pbit", "petabit"),
        (4, "Tbit", "terabit"),
        (3, "Gbit", "gigabit"),
        (2, "Mbit", "megabit"),
        (1, "kbit", "kilobit"),
    )
)
#: The table ``readSize`` searches, in git-annex's order (first match wins).
DATA_UNITS: tuple[Unit, ...] = _STORAGE + _COMMITTEE + _BANDWIDTH


def _lower(text: str) -> str:
    # Haskell's toLower is a simple (one character) mapping; Python's lower() is not
    # for U+0130, the only character whose full lowercase mapping is longer.
    return "".join("i" if c == "\u0130" else c.lower() for c in text)


def _lookup_unit(word: str) -> int | None:
    if not word:
        return 1
    low = _lower(word)
    for unit in DATA_UNITS:
        abbrev, name = unit.abbrev.lower(), unit.name
        if low in (abbrev, name, name + "s") or abbrev == low + "b":
            return unit.size
    return None


def parse_size(text: str) -> int | None:
    """Parse a size such as ``10GB``, ``0.5 tb`` or ``1KiB`` into bytes.

    Grammar (preferred-content.md section 7): a Haskell ``Double`` prefix, optional white
    space, then a unit made of letters only (anything after it is ignored). The product
    is rounded half to even.

    Returns:
        The number of bytes (may be negative or huge), or None when the text is not a
        size (no number, or an unknown unit).
    """
    parsed = read_double_prefix(text)
    if parsed is None:
        return None
    number, rest = parsed
    pos = 0
    while pos < len(rest) and is_haskell_space(rest[pos]):
        pos += 1
    end = pos
    while end < len(rest) and rest[end].isalpha():
        end += 1
    multiplier = _lookup_unit(rest[pos:end])
    if multiplier is None:
        return None
    return haskell_round(number * float(multiplier))
