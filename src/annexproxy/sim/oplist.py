"""A lazily materialised list of candidate operations with removal at random positions.

The reference builds, for every step, a Haskell list holding one operation per
(action, file) and repeatedly removes the element at a random index (sim.md 5.2). With
100,000 files and hundreds of actions that list has millions of elements, so here it is a
concatenation of *segments* (one action's files, sharing the sorted file list) with a
Fenwick tree over segment sizes and, per segment, the sorted list of removed positions.
`OpList.pop` returns the same element the reference's ``actions !! idx`` would. Pure.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from annexproxy.keys import Key
from annexproxy.uuids import RepoUUID


@dataclass(frozen=True, slots=True)
class Segment:
    """One gathered action: operation ``kind`` of ``actor`` for every file of ``files``.

    Attributes:
        kind: ``get`` (getwanted), ``send`` (sendwanted) or ``drop``.
        actor: the acting repository and the name the action used for it.
        target: the remote (or, for a local drop, the actor) and the name used for it.
        files: the files at gather time, ascending by path.
        remotes: for drops, the actor's remotes that are repositories (at gather time).
    """

    kind: str
    actor: RepoUUID
    actor_name: str
    target: RepoUUID
    target_name: str
    files: Sequence[tuple[str, Key]]
    remotes: frozenset[RepoUUID] = frozenset()


Op = tuple[Segment, int]


class OpList:
    """The concatenation of segments, supporting ``len`` and `pop` at an index."""

    def __init__(self, segments: Sequence[Segment]) -> None:
        self._segments = [s for s in segments if s.files]
        count = len(self._segments)
        self._tree = [0] * (count + 1)
        self._removed: list[list[int]] = [[] for _ in range(count)]
        for index, segment in enumerate(self._segments):
            self._add(index, len(segment.files))
        self._total = sum(len(s.files) for s in self._segments)
        self._top = 1 << count.bit_length() if count else 0

    def __len__(self) -> int:
        return self._total

    def _add(self, index: int, delta: int) -> None:
        position = index + 1
        tree = self._tree
        while position < len(tree):
            tree[position] += delta
            position += position & -position

    def _find_segment(self, rank: int) -> tuple[int, int]:
        """The segment holding the rank-th alive element, and the rank inside it."""
        position, step, tree = 0, self._top, self._tree
        while step:
            following = position + step
            if following < len(tree) and tree[following] <= rank:
                position = following
                rank -= tree[following]
            step >>= 1
        return position, rank

    def pop(self, index: int) -> Op:
        """Remove and return the element at ``index`` (0-based, among the remaining).

        Raises:
            IndexError: the index is out of range.
        """
        if not 0 <= index < self._total:
            raise IndexError(index)
        segment_index, rank = self._find_segment(index)
        removed = self._removed[segment_index]
        # Smallest x with (x + 1 - removed<=x) == rank + 1.
        low, high = rank, rank + len(removed)
        while low < high:
            middle = (low + high) // 2
            if middle + 1 - bisect.bisect_right(removed, middle) >= rank + 1:
                high = middle
            else:
                low = middle + 1
        bisect.insort(removed, low)
        self._add(segment_index, -1)
        self._total -= 1
        return self._segments[segment_index], low
