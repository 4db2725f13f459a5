"""Presence logs: parsing, resolution and git-annex's rewrite, from shared/spec golden files."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from annexproxy.branch.logs.presence import (
    PresenceLine,
    PresenceStatus,
    change_presence,
    compact,
    format_presence_log,
    parse_presence_log,
    present_infos,
    resolve,
)
from annexproxy.branch.logs.timestamps import PICOS_PER_SECOND, Timestamp
from annexproxy.errors import LogFormatError

CLIENT = b"0b8b5763-1e9b-4106-824b-afc0086663ae"
NODE1 = b"2a29ec74-6d41-4d05-ad0f-6dc9296eaa39"
NODE2 = b"378f39af-1833-4879-9b1f-7176df00357a"
NODE3 = b"bfd9909a-9a8c-4755-8121-ff2d5636d64f"
NODE4 = b"14d7c4c6-1f1a-4546-a4a9-d449be0b8d14"
GATEWAY = b"aa6440a6-0cfc-4c73-8f0a-5927cb981038"
U = b"2fe550a4-fab9-462f-8322-ece2616932ad"
F = b"11111111-2222-3333-4444-555555555555"
G = b"22222222-2222-3333-4444-555555555555"


def ts(seconds: int) -> Timestamp:
    return Timestamp.from_seconds(seconds)


# examples/04-after-drop-from-cluster.txt, b.bin in the gateway branch after a union merge.
B_BIN_MERGED = (
    b"1795623891s 1 " + CLIENT + b"\n"
    b"1795623909s 1 " + NODE1 + b"\n"
    b"1795623909s 1 " + NODE2 + b"\n"
    b"1795623909s 1 " + NODE3 + b"\n"
    b"1795623984s 1 " + CLIENT + b"\n"
)

# examples/04: g.dat in the client branch (written compacted by git-annex).
G_DAT = (
    b"1795624925s 1 " + CLIENT + b"\n"
    b"1795624929s 0 " + NODE4 + b"\n"
    b"1795624929s 0 " + NODE1 + b"\n"
    b"1795624920s 0 " + NODE2 + b"\n"
    b"1795624919s 1 " + GATEWAY + b"\n"
    b"1795624929s 0 " + NODE3 + b"\n"
)

# examples/08 cases 1, 2 and 8: (content, is F present?).
TIE_CASES = [
    (
        b"1700000000s 1 " + F + b"\n1700000000s 0 " + F + b"\n1795624798s 1 " + U + b"\n",
        True,
    ),
    (b"1700000001s 0 " + F + b"\n1700000001s 1 " + F + b"\n", False),
    (
        b"1700000000s 0 " + F + b"\n1700000000s 1 " + F + b"\n"
        b"1700000001s 0 " + F + b"\n1700000001s 1 " + F + b"\n"
        b"1795624798s 1 " + U + b"\n1795625000s 1 " + G + b"\n",
        False,
    ),
]


def test_parse_golden_line() -> None:
    line = PresenceLine.parse(b"1795623979s 0 " + NODE1)
    assert line == PresenceLine(timestamp=ts(1795623979), status=PresenceStatus.MISSING, info=NODE1)
    assert line.format() == b"1795623979s 0 " + NODE1


def test_parse_keeps_file_order_and_duplicates() -> None:
    lines = parse_presence_log(B_BIN_MERGED)
    assert [line.info for line in lines] == [CLIENT, NODE1, NODE2, NODE3, CLIENT]
    assert format_presence_log(lines) == B_BIN_MERGED


def test_merged_file_resolves_to_newest_line_per_info() -> None:
    resolved = resolve(parse_presence_log(B_BIN_MERGED))
    assert resolved[CLIENT].timestamp == ts(1795623984)
    assert list(resolved) == sorted([CLIENT, NODE1, NODE2, NODE3])
    assert present_infos(B_BIN_MERGED) == sorted([CLIENT, NODE1, NODE2, NODE3])


@pytest.mark.parametrize(("content", "f_present"), TIE_CASES)
def test_tie_first_line_in_file_wins(content: bytes, f_present: bool) -> None:
    assert (F in present_infos(content)) is f_present


def test_present_infos_of_g_dat() -> None:
    assert present_infos(G_DAT) == [CLIENT, GATEWAY]


def test_no_rewrite_when_status_already_in_effect() -> None:
    # examples/04: node3 kept its older "0" line when the cluster drop logged it absent.
    assert change_presence(G_DAT, NODE2, PresenceStatus.MISSING, ts(1795624929)) is None
    # Tie in example 08 case 1: F is present ("1" first), so recording present is a no-op.
    assert change_presence(TIE_CASES[0][0], F, PresenceStatus.PRESENT, ts(1795700000)) is None


def test_rewrite_is_compacted_and_sorted() -> None:
    new = change_presence(B_BIN_MERGED, NODE2, PresenceStatus.MISSING, ts(1795624000))
    assert new == (
        b"1795623984s 1 " + CLIENT + b"\n"
        b"1795623909s 1 " + NODE1 + b"\n"
        b"1795624000s 0 " + NODE2 + b"\n"
        b"1795623909s 1 " + NODE3 + b"\n"
    )


def test_rewrite_applies_advance_rule_with_the_largest_timestamp_of_that_info() -> None:
    # F's newest line is 1700000001s (tied "0" first): recording present at an older
    # clock must land after it.
    new = change_presence(TIE_CASES[2][0], F, PresenceStatus.PRESENT, ts(1234567890))
    assert (
        new
        == (
            b"1700000002s 1 " + F + b"\n"
            b"1795625000s 1 " + G + b"\n"  # "2222..." sorts before "2fe5..."
            b"1795624798s 1 " + U + b"\n"
        )
    )


# The sequence below was run against git-annex 10.20261026 with
# `GIT_ANNEX_VECTOR_CLOCK=<now> git -c annex.alwayscommit=false annex setpresentkey K <u> <s>`
# and each journal file recorded; tests/interop repeats it live.
SEQUENCE = [
    (b"11111111", "1", "1000", b"1000s 1 11111111\n"),
    (b"11111111", "0", "1000", b"1001s 0 11111111\n"),
    (b"22222222", "1", "1000", b"1001s 0 11111111\n1000s 1 22222222\n"),
    (b"33333333", "1", "1500.250", b"1001s 0 11111111\n1000s 1 22222222\n1500.25s 1 33333333\n"),
    (b"11111111", "1", "0001", b"1002s 1 11111111\n1000s 1 22222222\n1500.25s 1 33333333\n"),
]


def test_sequence_matches_git_annex() -> None:
    content = b""
    for info, status, now, expected in SEQUENCE:
        new = change_presence(content, info, PresenceStatus(status), Timestamp.parse(now))
        assert new == expected
        content = new


def test_line_breaks_any_cr_lf_run_and_trailing_partial_line() -> None:
    content = b"\r\n\r\n1s 1 a\r\r2s 0 b\n\n\r3s X c d"
    lines = parse_presence_log(content)
    assert [(line.info, line.status) for line in lines] == [
        (b"a", PresenceStatus.PRESENT),
        (b"b", PresenceStatus.MISSING),
        (b"c d", PresenceStatus.DEAD),
    ]


@pytest.mark.parametrize(
    "line",
    [
        b"garbage",
        b"1s 2 u",
        b"1s 1",
        b"1s 1u",
        b"1.s 1 u",
        b"1s  1 u",
        b"s 1 u",
        b" 1s 1 u",
        b"1s 11 u",
        b"1s x u",
    ],
)
def test_bad_lines_are_skipped(line: bytes) -> None:
    content = b"5s 1 good\n" + line + b"\n6s 0 other\n"
    assert [entry.info for entry in parse_presence_log(content)] == [b"good", b"other"]
    with pytest.raises(LogFormatError):
        PresenceLine.parse(line)


def test_empty_info_and_spaces_in_info_are_kept_verbatim() -> None:
    assert PresenceLine.parse(b"1s 1 ").info == b""
    assert PresenceLine.parse(b"1s 1 http://x/a  b").info == b"http://x/a  b"


def test_change_presence_refuses_line_breaks_in_info() -> None:
    with pytest.raises(LogFormatError):
        change_presence(b"", "a\nb", PresenceStatus.PRESENT, ts(1))
    with pytest.raises(LogFormatError):
        change_presence(b"", b"a\rb", PresenceStatus.PRESENT, ts(1))


def test_change_presence_on_empty_content_and_str_info() -> None:
    new = change_presence(b"", U.decode(), PresenceStatus.PRESENT, ts(1795624946))
    assert new == b"1795624946s 1 " + U + b"\n"  # examples/07, journal content


# --- properties -------------------------------------------------------------------------

timestamps = st.one_of(
    st.integers(min_value=0, max_value=10**22),
    st.integers(min_value=-(10**22), max_value=-PICOS_PER_SECOND),
).map(Timestamp)
infos = st.binary(max_size=30).filter(lambda b: b"\n" not in b and b"\r" not in b)
lines = st.builds(
    PresenceLine, timestamp=timestamps, status=st.sampled_from(PresenceStatus), info=infos
)


@pytest.mark.property
@given(lines)
def test_line_round_trip(line: PresenceLine) -> None:
    assert PresenceLine.parse(line.format()) == line


@pytest.mark.property
@given(st.lists(lines, max_size=8))
def test_log_round_trip(entries: list[PresenceLine]) -> None:
    text = format_presence_log(entries)
    assert parse_presence_log(text) == entries
    assert format_presence_log(parse_presence_log(text)) == text


@pytest.mark.property
@given(st.binary(max_size=300))
def test_any_bytes_parse_without_exceptions(data: bytes) -> None:
    parsed = parse_presence_log(data)
    assert all(isinstance(line, PresenceLine) for line in parsed)
    present_infos(data)


@pytest.mark.property
@given(st.lists(lines, max_size=8), infos, st.sampled_from(PresenceStatus), timestamps)
def test_change_presence_effect(
    entries: list[PresenceLine], info: bytes, status: PresenceStatus, now: Timestamp
) -> None:
    content = format_presence_log(entries)
    before = resolve(entries)
    new = change_presence(content, info, status, now)
    if new is None:
        assert before[info].status is status
        return
    after_lines = parse_presence_log(new)
    after = resolve(after_lines)
    assert after_lines == compact(after_lines)  # compacted and sorted
    assert after[info].status is status
    assert all(after[i] == line for i, line in before.items() if i != info)
    assert change_presence(new, info, status, now) is None
    if info in before:
        assert after[info].timestamp > max(e.timestamp for e in entries if e.info == info)
