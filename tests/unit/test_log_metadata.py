"""Metadata logs as git-annex 10.20261026 wrote them (metadata -s, tag+=, tag-=)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from annexproxy.branch.logs.metadata import current_metadata

# Written by: git annex metadata -s tag=done -s "author=J Smith" -s year=2019 a;
# then -s tag+=x -s tag-=done; then -s year=2021.
REAL = (
    b"1795638941s author +!SiBTbWl0aA== tag +done year +2019\n"
    b"1795638942s tag -done +x\n"
    b"1795638943s year -2019 +2021\n"
)


def test_values_in_force() -> None:
    assert current_metadata(REAL) == {
        "author": frozenset({"J Smith"}),
        "tag": frozenset({"x"}),
        "year": frozenset({"2021"}),
    }


def test_newest_line_wins_whatever_the_order() -> None:
    lines = REAL.splitlines(keepends=True)
    assert current_metadata(b"".join(reversed(lines))) == current_metadata(REAL)


@given(st.binary(max_size=300))
def test_any_bytes_give_a_mapping(data: bytes) -> None:
    result = current_metadata(data)
    assert all(isinstance(values, frozenset) for values in result.values())
