"""Repository sizes: incremental presence changes, reservations, maxsize decisions."""

from __future__ import annotations

from annexproxy.keys import Key
from annexproxy.space import RepoSizeTracker, has_space, proportion_free, too_full
from annexproxy.uuids import RepoUUID

A = RepoUUID("aaaaaaaa-0000-0000-0000-000000000000")
B = RepoUUID("bbbbbbbb-0000-0000-0000-000000000000")
CLUSTER = RepoUUID("ac000000-0000-8000-0000-000000000000")
K1 = Key.parse("SHA256E-s100--" + "1" * 64)
K2 = Key.parse("SHA256E-s50--" + "2" * 64)
URL = Key.parse("URL--https&c%%example.net%blob.bin")


def test_sizes_follow_presence_changes_once() -> None:
    tracker = RepoSizeTracker(known=[A, B, CLUSTER])
    assert tracker.size_of(A) == 0
    assert tracker.size_of(CLUSTER) is None
    assert tracker.set_present(K1, A, present=True)
    assert not tracker.set_present(K1, A, present=True)  # redundant log line
    tracker.set_present(K2, A, present=True)
    tracker.set_present(URL, A, present=True)  # no size field: counts 0
    assert not tracker.set_present(K1, CLUSTER, present=True)
    assert tracker.size_of(A) == 150
    assert tracker.set_present(K1, A, present=False)
    assert tracker.size_of(A) == 50
    assert tracker.size_of(RepoUUID("never-seen")) is None


def test_reservations_count_until_completed_or_released() -> None:
    tracker = RepoSizeTracker(known=[A])
    first = tracker.reserve(A, K1)
    second = tracker.reserve(A, K2)
    assert tracker.size_of(A) == 150
    assert tracker.stored_size(A) == 0
    tracker.release(second)
    tracker.release(second)
    assert tracker.size_of(A) == 100
    tracker.complete(first)
    tracker.complete(first)
    assert tracker.size_of(A) == 100
    assert tracker.stored_size(A) == 100
    assert tracker.has(K1, A)
    assert tracker.snapshot().size_of(A) == 100


def test_has_space() -> None:
    assert has_space(size=90, maxsize=None, key_size=50, in_repo=False)
    assert has_space(size=None, maxsize=100, key_size=50, in_repo=False)
    assert has_space(size=50, maxsize=100, key_size=50, in_repo=False)
    assert not has_space(size=51, maxsize=100, key_size=50, in_repo=False)
    assert has_space(size=100, maxsize=100, key_size=50, in_repo=True)
    assert not has_space(size=0, maxsize=0, key_size=1, in_repo=False)  # maxsize 0 is 0 bytes
    assert has_space(size=0, maxsize=0, key_size=0, in_repo=False)


def test_too_full_and_proportion() -> None:
    assert too_full(size=90, maxsize=100, threshold_percent=90)
    assert not too_full(size=89, maxsize=100, threshold_percent=90)
    assert not too_full(size=5, maxsize=0, threshold_percent=90)
    assert not too_full(size=5, maxsize=None, threshold_percent=90)
    assert proportion_free(size=25, maxsize=100, key_size=10, in_repo=True) == 0.85
    assert proportion_free(size=25, maxsize=0, key_size=10, in_repo=False) is None
