"""git-annex's random numbers, bit for bit: SplitMix64 as ``random-1.2`` ``StdGen`` (sim.md 4).

Owns the generator (`SplitMix`), the derived draws (``Int``, ``Word8``, ``Bool``, an
integer in a range) and `sim_random`, the simulator's way of consuming randomness: a
fresh generator from the saved seed, some draws, then an ``Int`` draw that becomes the
next seed. Nothing here reads system entropy: the seed is always injected (the CLI draws
the initial seed when a sim file does not start with ``seed``). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

_NP: Any
try:  # numpy only speeds up `SplitMix.words`; results are identical without it
    import numpy as _NP
except ImportError:  # pragma: no cover - exercised when numpy is absent
    _NP = None

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
T = TypeVar("T")


def _mix64(z: int) -> int:
    z = ((z ^ (z >> 33)) * 0xFF51AFD7ED558CCD) & _MASK
    z = ((z ^ (z >> 33)) * 0xC4CEB9FE1A85EC53) & _MASK
    return z ^ (z >> 33)


def _mix64v13(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def _mix_gamma(z: int) -> int:
    z = _mix64v13(z) | 1
    if (z ^ (z >> 1)).bit_count() >= 24:
        return z
    return z ^ 0xAAAAAAAAAAAAAAAA


def to_signed(value: int) -> int:
    """Reinterpret a 64-bit word as a two's complement ``Int``."""
    return value - (1 << 64) if value >= (1 << 63) else value


class SplitMix:
    """``mkStdGen seed``: SplitMix64 with a seed and an odd gamma (splitmix-0.1)."""

    __slots__ = ("gamma", "seed")

    def __init__(self, seed: int) -> None:
        s = seed & _MASK
        self.seed = _mix64(s)
        self.gamma = _mix_gamma((s + _GOLDEN) & _MASK)

    def next64(self) -> int:
        """``nextWord64``: advance and mix."""
        self.seed = (self.seed + self.gamma) & _MASK
        return _mix64(self.seed)

    def next_int(self) -> int:
        """``random :: Int``: a full 64-bit draw, signed."""
        return to_signed(self.next64())

    def next_word8(self) -> int:
        """``random :: Word8``: the low byte of one 64-bit draw."""
        return self.next64() & 0xFF

    def next_bool(self) -> bool:
        """``random :: Bool``: the low bit of one 64-bit draw."""
        return (self.next64() & 1) == 1

    def range(self, lo: int, hi: int) -> int:
        """``randomR (lo, hi)`` for integers: bitmask with rejection (no draw if lo == hi).

        Raises:
            ValueError: the range is wider than 2^64 (git-annex uses another method there).
        """
        if lo == hi:
            return lo
        if lo > hi:
            lo, hi = hi, lo
        span = hi - lo
        if span > _MASK:
            raise ValueError(f"range [{lo}, {hi}] is wider than 64 bits")
        mask = (1 << (span | 1).bit_length()) - 1
        while True:
            x = self.next64() & mask
            if x <= span:
                return lo + x

    def words(self, count: int) -> bytes:
        """``randomWords count``: Word8 draws, prepended, so the first drawn byte is last."""
        if _NP is not None and count >= 64:
            return self._words_vectorised(count)
        drawn = bytearray(self.next_word8() for _ in range(count))
        drawn.reverse()
        return bytes(drawn)

    def _words_vectorised(self, count: int) -> bytes:
        # The i-th draw mixes seed + i * gamma (mod 2^64): compute all at once.
        np = _NP
        steps = np.arange(count, 0, -1, dtype=np.uint64)  # reversed: last draw first
        z = np.uint64(self.seed) + steps * np.uint64(self.gamma)
        z = (z ^ (z >> np.uint64(33))) * np.uint64(0xFF51AFD7ED558CCD)
        z = (z ^ (z >> np.uint64(33))) * np.uint64(0xC4CEB9FE1A85EC53)
        z = z ^ (z >> np.uint64(33))
        self.seed = (self.seed + count * self.gamma) & _MASK
        return bytes((z & np.uint64(0xFF)).astype(np.uint8).tobytes())


def sim_random(seed: int, draw: Callable[[SplitMix], T]) -> tuple[T, int]:
    """``simRandom``: run ``draw`` on ``mkStdGen seed`` and take the next seed after it.

    Returns:
        The drawn value and the new seed (an ``Int``).
    """
    gen = SplitMix(seed)
    value = draw(gen)
    return value, gen.next_int()
