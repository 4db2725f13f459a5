"""Balanced placement: the HMAC picker and the candidate filters (section 13).

`pick` is git-annex's ``balancedPicker``: HMAC-SHA256 keyed with the sorted concatenation
of all group members' UUIDs over the serialised key, read as a big-endian integer, indexes
the sorted candidate list. `space_candidates` and `size_candidates` are the two candidate
filters (has space / proportionally least full). `choose_candidates` decides between them
(``--rebalance`` with too-full members). Everything takes plain values; the evaluator
supplies sizes, maxsizes and locations. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from annexproxy.space.maxsize import has_space, proportion_free, too_full
from annexproxy.uuids import RepoUUID


@dataclass(frozen=True, slots=True)
class GroupPicker:
    """The picker of one group: its members and HMAC secret, computed once."""

    members: tuple[RepoUUID, ...]  # sorted by bytes
    secret: bytes

    @classmethod
    def for_members(cls, members: Collection[RepoUUID]) -> GroupPicker:
        """Build the picker for a group's members (all of them, whatever their trust)."""
        ordered = tuple(sorted(members, key=lambda u: u.encode()))
        return cls(ordered, b"".join(u.encode() for u in ordered))

    def index(self, key: str) -> int:
        """N: the HMAC of the serialised key as a big-endian unsigned integer."""
        digest = hmac.new(self.secret, key.encode(), hashlib.sha256).digest()
        return int.from_bytes(digest, "big")


def pick(picker: GroupPicker, candidates: Collection[RepoUUID], key: str, count: int) -> list[str]:
    """The repositories chosen for a key: ``C[(N + i) mod |C|]`` for i < count (13.3).

    Returns:
        The picks in order (repeats when count > |C|; empty when C is empty or count <= 0).
    """
    ordered = sorted(candidates, key=lambda u: u.encode())
    if not ordered or count <= 0:
        return []
    base = picker.index(key)
    return [ordered[(base + i) % len(ordered)] for i in range(count)]


def is_picked(
    picker: GroupPicker, candidates: Sequence[RepoUUID], key: str, count: int, uuid: RepoUUID
) -> bool:
    """Whether ``uuid`` is among `pick` (candidates already sorted by bytes)."""
    if not candidates or count <= 0 or uuid not in candidates:
        return False
    if count >= len(candidates):
        return True
    offset = (candidates.index(uuid) - picker.index(key)) % len(candidates)
    return offset < count


@dataclass(frozen=True, slots=True)
class SpaceView:
    """What the candidate filters need to know about one key and the repositories."""

    size_of: Callable[[RepoUUID], int | None]
    maxsize_of: Callable[[RepoUUID], int | None]
    key_size: int
    in_repo: Callable[[RepoUUID], bool]


def space_candidates(members: Sequence[RepoUUID], view: SpaceView) -> list[RepoUUID]:
    """Members with space for the key (13.4 ``has_space``), in the members' order."""
    return [
        u
        for u in members
        if has_space(
            size=view.size_of(u),
            maxsize=view.maxsize_of(u),
            key_size=view.key_size,
            in_repo=view.in_repo(u),
        )
    ]


def size_candidates(members: Sequence[RepoUUID], view: SpaceView, count: int) -> list[RepoUUID]:
    """The ``count`` members with the most free space in proportion (13.4 size_filter).

    Members without a maxsize, with maxsize 0, or without space are left out. Ties go to
    the higher UUID. Returns the chosen members sorted by bytes.
    """
    scored: list[tuple[RepoUUID, float]] = []
    for u in sorted(members, key=lambda m: m.encode()):
        maxsize = view.maxsize_of(u)
        if maxsize is None:
            continue
        size = view.size_of(u) or 0
        in_repo = view.in_repo(u)
        if not has_space(size=size, maxsize=maxsize, key_size=view.key_size, in_repo=in_repo):
            continue
        score = proportion_free(size=size, maxsize=maxsize, key_size=view.key_size, in_repo=in_repo)
        if score is not None:
            scored.append((u, score))
    scored.sort(key=lambda pair: pair[1])  # stable, like sortOn
    scored.reverse()
    chosen = [u for u, _ in scored[: max(count, 0)]]
    return sorted(chosen, key=lambda m: m.encode())


def choose_candidates(
    members: Sequence[RepoUUID],
    view: SpaceView,
    count: int,
    *,
    by_size: bool,
    rebalance: bool,
    threshold_percent: float,
) -> list[RepoUUID]:
    """The candidate set C of section 13.4, sorted by bytes."""
    if by_size:
        return size_candidates(members, view, count)
    if rebalance and count > 1:
        full = sum(
            1
            for u in members
            if too_full(
                size=view.size_of(u),
                maxsize=view.maxsize_of(u),
                threshold_percent=threshold_percent,
            )
        )
        if count > len(members) - full:
            return size_candidates(members, view, count)
    return space_candidates(members, view)
