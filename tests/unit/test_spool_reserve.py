"""annex.diskreserve as git-annex reads it, and spool claims that keep it free."""

from __future__ import annotations

import os
from pathlib import Path

import pygit2
import pytest

from annexproxy.errors import OutOfSpace
from annexproxy.space.reserve import DEFAULT_DISK_RESERVE, disk_reserve, rough_size, shortfall
from annexproxy.special.spool import GROWTH, SpoolArea, sweep, temp_prefix
from annexproxy.storage.annexlayout import open_layout

MB = 1_000_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, 100 * MB),  # git-annex: onemegabyte * 100, onemegabyte = 1000000
        ("1GB", 10**9),
        ("1 GiB", 1 << 30),
        ("0", 0),
        ("500 megabytes", 500 * MB),
        ("lots", DEFAULT_DISK_RESERVE),  # readSize fails: the default stays
    ],
)
def test_disk_reserve_parses_as_git_annex(text: str | None, expected: int) -> None:
    assert disk_reserve(text) == expected


def test_shortfall_is_git_annex_check_disk_space() -> None:
    # delta = sz + reserve - have - alreadythere + inprogress; ok when delta <= 0
    assert shortfall(need=10, free=110, reserve=100) == 0
    assert shortfall(need=10, free=109, reserve=100) == 1
    assert shortfall(need=10, free=200, reserve=100, in_progress=91) == 1
    assert rough_size(1_500_000) == "1.5 MB"
    assert rough_size(2 * MB) == "2 MB"


def test_claims_count_other_spools_until_released(tmp_path: Path) -> None:
    area = SpoolArea(tmp_path, 100 * MB, free=lambda _: 300 * MB)
    first = area.claim("K1", 150 * MB)
    with pytest.raises(OutOfSpace, match=r"need 50 MB more .*annex\.diskreserve") as caught:
        area.claim("K2", 100 * MB)  # 150 + 100 + 100 reserve > 300
    assert caught.value.needed == 50 * MB
    assert caught.value.key == "K2"
    first.wrote(100 * MB)  # those bytes are on disk now: free would have dropped
    first.release()
    area.claim("K2", 100 * MB).release()


def test_a_claim_of_unknown_size_grows_in_steps_and_stops_at_the_reserve(tmp_path: Path) -> None:
    free = [100 * MB + GROWTH + 5]
    area = SpoolArea(tmp_path, 100 * MB, free=lambda _: free[0])
    claim = area.claim("K", 0)
    claim.wrote(10)  # claims a step
    assert claim.left == GROWTH - 10
    free[0] -= 10
    claim.wrote(GROWTH - 10)
    with pytest.raises(OutOfSpace):
        claim.wrote(1)  # the next step would eat into the reserve
    claim.release()


def test_the_repository_config_gives_the_reserve(tmp_path: Path) -> None:
    repo = pygit2.init_repository(str(tmp_path / "repo"), bare=True)
    repo.config["annex.uuid"] = "16e4c38d-ff44-4d84-8615-69ede6414762"
    repo.config["annex.diskreserve"] = "2 GB"
    assert open_layout(tmp_path / "repo").config.disk_reserve == 2 * 10**9
    del repo.config["annex.diskreserve"]
    assert open_layout(tmp_path / "repo").config.disk_reserve == DEFAULT_DISK_RESERVE


def test_free_space_that_cannot_be_measured_does_not_block(tmp_path: Path) -> None:
    def unmeasurable(_: Path) -> int:
        raise OSError("statvfs failed")

    # git-annex's checkDiskSpace goes ahead when getDiskFree gives Nothing.
    SpoolArea(tmp_path, 100 * MB, free=unmeasurable).claim("K", 10**15).release()


def test_sweep_deletes_the_spools_of_dead_processes_only(tmp_path: Path) -> None:
    dead = 2**22 + 1  # above any pid_max: no such process
    ours = temp_prefix("store")
    theirs = ours.replace(f"-{os.getpid()}-", f"-{dead}-")
    for name in (ours + "a", theirs + "b", theirs.replace("store", "retrieve") + "c", "keep"):
        (tmp_path / name).write_bytes(b"x")
    assert sweep(tmp_path, "store") == [tmp_path / (theirs + "b")]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([ours + "a", theirs.replace("store", "retrieve") + "c", "keep"])
