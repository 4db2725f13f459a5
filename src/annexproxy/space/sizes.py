"""Repository sizes from location information, kept up to date one change at a time.

size(u) is the sum of the size fields of the keys the location log says u has (keys
without a size field count 0); every known repository has a size, 0 when empty; cluster
UUIDs are never sized (maxsize.md section 2.1). `RepoSizeTracker` applies a presence change
in O(1) and also holds *reservations*: uploads decided but not yet finished, which count
towards the live size of their target (maxsize.md 2.3, preferred-content.md 13.8) so that
concurrent placement decisions see each other. Removals count only once they happen.

The tracker is plain mutable state and does no I/O; the gateway owns it and feeds it from
the branch reader and from its own transfers. `SizeSnapshot` is a frozen view for tests
and one-shot evaluations.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from annexproxy.keys import Key
from annexproxy.uuids import RepoUUID, is_cluster_uuid


class SizeSource(Protocol):
    """What the preferred-content evaluator needs: the live size of a repository."""

    def size_of(self, uuid: RepoUUID) -> int | None:
        """The live size of ``uuid`` in bytes, or None when it has no size entry."""


@dataclass(frozen=True, slots=True)
class SizeSnapshot:
    """A frozen mapping of repository sizes (a `SizeSource`)."""

    sizes: Mapping[RepoUUID, int] = field(default_factory=dict)

    def size_of(self, uuid: RepoUUID) -> int | None:
        """The recorded size of ``uuid``, or None."""
        return self.sizes.get(uuid)


@dataclass(frozen=True, slots=True)
class Reservation:
    """A pending addition of a key to a repository (an upload in flight)."""

    ident: int
    uuid: RepoUUID
    key: Key


def key_size(key: Key) -> int:
    """The size field of a key, 0 when it has none (maxsize.md 2.1)."""
    return key.size or 0


class RepoSizeTracker:
    """Sizes of repositories, maintained incrementally, plus in-flight reservations.

    Implements `SizeSource`. All operations are O(1) except construction.
    """

    def __init__(self, known: Iterable[RepoUUID] = ()) -> None:
        self._totals: dict[RepoUUID, int] = {u: 0 for u in known if not is_cluster_uuid(u)}
        self._present: set[tuple[Key, RepoUUID]] = set()
        self._pending: dict[RepoUUID, int] = {}
        self._reservations: dict[int, Reservation] = {}
        self._ids = itertools.count(1)

    @classmethod
    def from_locations(
        cls, locations: Mapping[Key, Iterable[RepoUUID]], known: Iterable[RepoUUID] = ()
    ) -> RepoSizeTracker:
        """Build from a whole location map (key -> UUIDs marked present)."""
        tracker = cls(known)
        for key, uuids in locations.items():
            for uuid in uuids:
                tracker.set_present(key, uuid, present=True)
        return tracker

    def add_known(self, uuid: RepoUUID) -> None:
        """Give a repository (from uuid.log) a size entry even when it holds nothing."""
        if not is_cluster_uuid(uuid):
            self._totals.setdefault(uuid, 0)

    def set_present(self, key: Key, uuid: RepoUUID, *, present: bool) -> bool:
        """Apply one location-log change; redundant changes are ignored.

        Completes nothing by itself: call `complete` for a reservation that this change
        finishes.

        Returns:
            True when the size changed.
        """
        if is_cluster_uuid(uuid):
            return False
        entry = (key, uuid)
        if present == (entry in self._present):
            self._totals.setdefault(uuid, 0)
            return False
        if present:
            self._present.add(entry)
            self._totals[uuid] = self._totals.get(uuid, 0) + key_size(key)
        else:
            self._present.discard(entry)
            self._totals[uuid] = self._totals.get(uuid, 0) - key_size(key)
        return True

    def has(self, key: Key, uuid: RepoUUID) -> bool:
        """Whether the tracked location information lists ``uuid`` as having ``key``."""
        return (key, uuid) in self._present

    def reserve(self, uuid: RepoUUID, key: Key) -> Reservation:
        """Count ``key`` towards ``uuid``'s live size until the upload ends.

        Returns:
            A token for `complete` (upload recorded) or `release` (upload abandoned).
        """
        reservation = Reservation(next(self._ids), uuid, key)
        self._reservations[reservation.ident] = reservation
        if not is_cluster_uuid(uuid):
            self._pending[uuid] = self._pending.get(uuid, 0) + key_size(key)
        return reservation

    def release(self, reservation: Reservation) -> None:
        """Forget a reservation whose upload did not happen (idempotent)."""
        if self._reservations.pop(reservation.ident, None) is None:
            return
        if not is_cluster_uuid(reservation.uuid):
            self._pending[reservation.uuid] -= key_size(reservation.key)

    def complete(self, reservation: Reservation) -> None:
        """The upload finished and was logged: the key is now present (idempotent)."""
        if reservation.ident in self._reservations:
            self.release(reservation)
            self.set_present(reservation.key, reservation.uuid, present=True)

    def stored_size(self, uuid: RepoUUID) -> int | None:
        """Size from location information only (what ``git annex maxsize`` shows)."""
        return self._totals.get(uuid)

    def size_of(self, uuid: RepoUUID) -> int | None:
        """Live size: stored size plus reservations (None when never seen)."""
        total = self._totals.get(uuid)
        pending = self._pending.get(uuid, 0)
        if total is None:
            return pending if pending else None
        return total + pending

    def snapshot(self) -> SizeSnapshot:
        """A frozen copy of the live sizes."""
        return SizeSnapshot({u: self.size_of(u) or 0 for u in self._totals})
