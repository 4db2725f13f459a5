"""Branch paths of key logs and journal file names: golden values from examples/07."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from annexproxy.branch.paths import (
    branch_path,
    journal_name,
    key_log_path,
    location_log_path,
)
from annexproxy.errors import LogFormatError
from annexproxy.keys import Key

E3B0 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
A948 = "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447"
K98EA = "SHA256E-s3--98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4"

# (key, location log path, journal file name or None) from examples/07 and examples/09.
LOCATION_CASES = [
    (f"SHA256E-s0--{E3B0}", f"f87/4d5/SHA256E-s0--{E3B0}.log", None),
    (
        f"SHA256E-s12--{A948}.txt",
        f"e7d/d01/SHA256E-s12--{A948}.txt.log",
        f"e7d_d01_SHA256E-s12--{A948}.txt.log",
    ),
    (
        "WORM-s1-m1--a_b%c:d",
        "341/9e7/WORM-s1-m1--a_b&sc&cd.log",
        "341_9e7_WORM-s1-m1--a__b&sc&cd.log",
    ),
    (K98EA, f"b66/a69/{K98EA}.log", f"b66_a69_{K98EA}.log"),
    # Chunk keys hash like their parent key (examples/07: 310/940/).
    ("SHA256E-s1000-S100-C3--abc.txt", "310/940/SHA256E-s1000-S100-C3--abc.txt.log", None),
]


@pytest.mark.parametrize(("key", "path", "journal"), LOCATION_CASES)
def test_location_log_path_golden(key: str, path: str, journal: str | None) -> None:
    assert location_log_path(Key.parse(key)) == path
    if journal is not None:
        assert journal_name(path) == journal
        assert branch_path(journal) == path


def test_branchhash1_uses_one_level() -> None:
    # examples/07, repository initialised with annex.tune.branchhash1=true.
    assert location_log_path(Key.parse(K98EA), branchhash1=True) == f"b66/{K98EA}.log"


def test_other_key_logs_share_the_directory() -> None:
    assert key_log_path(Key.parse(K98EA), ".log.web") == f"b66/a69/{K98EA}.log.web"


@pytest.mark.parametrize(
    ("name", "path"),
    [("a___b", "a_/b"), ("a_", "a"), ("a____b", "a__b"), ("uuid.log", "uuid.log"), ("_", "")],
)
def test_branch_path_follows_git_annex_file_journal(name: str, path: str) -> None:
    # git-annex's fileJournal scans left to right; a trailing lone "_" is dropped.
    assert branch_path(name) == path


@pytest.mark.parametrize("path", ["", "/abs", "a//b", "a/", "../x", "a/./b", "a/..", "a\0b"])
def test_journal_name_refuses_impossible_paths(path: str) -> None:
    with pytest.raises(LogFormatError):
        journal_name(path)


components = st.text(
    alphabet=st.characters(exclude_characters="/\0", exclude_categories=["Cs"]),
    min_size=1,
    max_size=12,
).filter(lambda c: c not in (".", ".."))


def test_journal_names_collide_when_a_component_starts_with_underscore() -> None:
    # git-annex's own mapping is not injective: "a/_b" and "a_/b" share a journal file,
    # and the name reads back as "a_/b". Real branch paths never have such components.
    assert journal_name("a/_b") == journal_name("a_/b") == "a___b"
    assert branch_path("a___b") == "a_/b"


@pytest.mark.property
@given(components, st.lists(components.filter(lambda c: not c.startswith("_")), max_size=3))
def test_journal_name_round_trip(first: str, rest: list[str]) -> None:
    path = "/".join([first, *rest])
    name = journal_name(path)
    assert "/" not in name
    assert branch_path(name) == path
