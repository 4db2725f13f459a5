"""Timestamps of branch logs: golden values from shared/spec and git-annex, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from annexproxy.branch.logs.timestamps import (
    PICOS_PER_SECOND,
    Timestamp,
    format_timestamp,
    next_timestamp,
    parse_timestamp,
)
from annexproxy.errors import LogFormatError

S = PICOS_PER_SECOND

# (text, picoseconds). Sources: branch.md section 3 and git-annex's parser
# (Utility/TimeStamp.hs). Rows marked "verified" were fed to git-annex 10.20261026 as
# GIT_ANNEX_VECTOR_CLOCK and the line it wrote was read back (the interop suite repeats
# them).
PARSE_CASES = [
    ("1795623909s", 1795623909 * S),
    ("1317929189.157237s", 1317929189 * S + 157237000000),
    ("1700000000", 1700000000 * S),
    ("0", 0),
    ("+7s", 7 * S),
    ("0001", 1 * S),  # verified
    ("1500.250", 1500 * S + 250000000000),  # verified
    ("1.1234567890129", 1 * S + 123456789012),  # verified: truncated to picoseconds
    ("-1.5s", -(1 * S + S // 2)),
    ("-0.5", S // 2),  # verified: git-annex loses the sign of "-0": written back as 0.5s
    ("5.000000000001s", 5 * S + 1),  # a dead key's "one picosecond later"
]

FORMAT_CASES = [
    (1795623909 * S, "1795623909s"),
    (1317929189 * S + 157237000000, "1317929189.157237s"),
    (1500 * S + 250000000000, "1500.25s"),
    (1 * S + 123456789012, "1.123456789012s"),
    (0, "0s"),
    (-(1 * S + S // 2), "-1.5s"),
    (5 * S + 1, "5.000000000001s"),
]

BAD = [
    "",
    "s",
    "5.",
    "5.s",
    ".5",
    "1e5",
    " 5",
    "5 ",
    "0x10",
    "1_000",
    "--5",
    "5ss",
    "5s5",
    "\u0663",
    "+",
    "-s",
    "1.5.5",
]


@pytest.mark.parametrize(("text", "picos"), PARSE_CASES)
def test_parse_golden(text: str, picos: int) -> None:
    assert parse_timestamp(text) == Timestamp(picos)
    assert Timestamp.parse(text.encode()) == Timestamp(picos)


@pytest.mark.parametrize(("picos", "text"), FORMAT_CASES)
def test_format_golden(picos: int, text: str) -> None:
    assert format_timestamp(Timestamp(picos)) == text
    assert Timestamp(picos).to_bytes() == text.encode()
    assert str(Timestamp(picos)) == text


@pytest.mark.parametrize("text", BAD)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(LogFormatError):
        parse_timestamp(text)


def test_absurdly_long_integer_part_is_refused_not_crashing() -> None:
    with pytest.raises(LogFormatError):
        parse_timestamp("9" * 5000)


def test_comparison_is_exact() -> None:
    tenth, fifth = parse_timestamp("0.1"), parse_timestamp("0.2")
    assert Timestamp(tenth.picoseconds + fifth.picoseconds) == parse_timestamp("0.3")
    assert parse_timestamp("1700000000.000000000001") > parse_timestamp("1700000000s")
    assert parse_timestamp("1317929189.157237s").seconds * 1000000 == 1317929189157237


# next_timestamp(now, prev). Example 08 case 6: after a future-dated 1700000000s line,
# GIT_ANNEX_VECTOR_CLOCK=1234567890 wrote 1700000001s, then 1234567890.5 wrote 1700000002s.
ADVANCE_CASES = [
    ("1234567890", None, "1234567890s"),
    ("1234567890", "1700000000s", "1700000001s"),
    ("1234567890.5", "1700000001s", "1700000002s"),
    ("1000", "1000s", "1001s"),  # equal: advance (verified with setpresentkey)
    ("1000", "999.5s", "1000s"),
    ("1000", "1000.5s", "1001.5s"),
]


@pytest.mark.parametrize(("now", "prev", "expected"), ADVANCE_CASES)
def test_advance_rule(now: str, prev: str | None, expected: str) -> None:
    previous = None if prev is None else parse_timestamp(prev)
    assert next_timestamp(parse_timestamp(now), previous).format() == expected


# Canonical timestamps: what format() produces. Values in (-1 s, 0) are excluded because
# git-annex itself cannot read them back ("-0.5s" reads as 0.5 s).
canonical_picos = st.one_of(
    st.integers(min_value=0, max_value=10**30),
    st.integers(max_value=-S, min_value=-(10**30)),
)


@pytest.mark.property
@given(canonical_picos)
def test_parse_format_round_trip(picos: int) -> None:
    text = Timestamp(picos).format()
    assert parse_timestamp(text) == Timestamp(picos)
    assert parse_timestamp(text).format() == text


@pytest.mark.property
@given(
    st.integers(min_value=0, max_value=10**20),
    st.one_of(st.just(""), st.from_regex(r"[0-9]{0,11}[1-9]", fullmatch=True)),
)
def test_format_parse_round_trip_on_canonical_text(whole: int, fraction: str) -> None:
    text = f"{whole}.{fraction}s" if fraction else f"{whole}s"
    assert format_timestamp(parse_timestamp(text)) == text


@pytest.mark.property
@given(st.binary(max_size=40))
def test_any_bytes_parse_or_raise_log_format_error(data: bytes) -> None:
    try:
        parsed = Timestamp.parse(data)
    except LogFormatError:
        return
    assert isinstance(parsed.picoseconds, int)


@pytest.mark.property
@given(canonical_picos, st.one_of(st.none(), canonical_picos))
def test_advance_result_is_later_than_prev_and_not_before_now(now: int, prev: int | None) -> None:
    previous = None if prev is None else Timestamp(prev)
    result = next_timestamp(Timestamp(now), previous)
    assert result >= Timestamp(now)
    if previous is not None:
        assert result > previous
