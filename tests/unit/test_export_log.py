"""export.log: golden lines from shared/spec/examples/10, the two writes of an export."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from annexproxy.branch.logs import export as exportlog
from annexproxy.branch.logs.export import Exported, ExportParticipants
from annexproxy.branch.logs.timestamps import Timestamp

GATEWAY = "aa6440a6-0cfc-4c73-8f0a-5927cb981038"
REMOTE = "1c4306b6-ab79-4729-8f33-ef052968cd61"
OTHER = "0b8b5763-1e9b-4106-824b-afc0086663ae"
TREE1 = "6b1cacc5d84163b88a4031f39b37012255c69bea"
TREE2 = "e3195a94735d8ea4c04940d084271d215eafc490"
# Example 10: the committed file after two export runs (union of both lines).
EXAMPLE = (
    f"1795624896s {GATEWAY}:{REMOTE} {TREE1}\n1795625046s {GATEWAY}:{REMOTE} {TREE2}\n"
).encode()


def test_example_resolves_to_the_newest_tree() -> None:
    parsed = exportlog.parse_export_log(EXAMPLE)
    assert parsed == {ExportParticipants(GATEWAY, REMOTE): Exported(tree=TREE2)}
    assert exportlog.exported_trees(EXAMPLE, REMOTE) == [TREE2]
    assert exportlog.current_tree(EXAMPLE, GATEWAY, REMOTE) == TREE2
    assert exportlog.current_tree(EXAMPLE, OTHER, REMOTE) == TREE2  # the one agreed tree
    assert exportlog.current_tree(EXAMPLE, GATEWAY, OTHER) is None


def test_an_export_writes_beginning_then_underway() -> None:
    now = Timestamp.from_seconds(1795624896)
    begun = exportlog.record_beginning(b"", GATEWAY, REMOTE, TREE1, now)
    empty = exportlog.EMPTY_TREE
    assert begun == f"1795624896s {GATEWAY}:{REMOTE} {empty} {TREE1}\n".encode()
    done = exportlog.record_underway(begun, GATEWAY, REMOTE, [], TREE1, now)
    # The same second: the clock is advanced past the line it replaces (branch.md 3).
    assert done == f"1795624897s {GATEWAY}:{REMOTE} {TREE1}\n".encode()
    later = Timestamp.from_seconds(1795625046)
    again = exportlog.record_beginning(done, GATEWAY, REMOTE, TREE2, later)
    assert exportlog.parse_export_log(again)[ExportParticipants(GATEWAY, REMOTE)] == Exported(
        tree=TREE1, incomplete=(TREE2,)
    )


def test_lock_step_exporters_move_along() -> None:
    now = Timestamp.from_seconds(100)
    content = f"50s {OTHER}:{REMOTE} {TREE1}\n60s {OTHER}:{GATEWAY} {TREE1}\n".encode()
    done = exportlog.record_underway(content, GATEWAY, REMOTE, [TREE1], TREE2, now)
    parsed = exportlog.parse_export_log(done)
    assert parsed[ExportParticipants(OTHER, REMOTE)].tree == TREE2  # same remote: moved
    assert parsed[ExportParticipants(OTHER, GATEWAY)].tree == TREE1  # another remote: kept
    assert parsed[ExportParticipants(GATEWAY, REMOTE)].tree == TREE2
    assert exportlog.exported_trees(done, REMOTE) == [TREE2]


def test_conflict_and_bad_lines() -> None:
    content = (
        f"1s {GATEWAY}:{REMOTE} {TREE1}\n2s {OTHER}:{REMOTE} {TREE2}\n"
        f"3s nocolon {TREE1}\n4s {GATEWAY}:{OTHER}\nnot a line\n"
    ).encode()
    assert exportlog.exported_trees(content, REMOTE) == [TREE2, TREE1]  # by exporter
    assert exportlog.current_tree(content, GATEWAY, REMOTE) == TREE1
    assert exportlog.current_tree(content, "someone", REMOTE) is None  # conflict
    assert len(exportlog.parse_export_log(content)) == 2
    # Lines we do not understand survive a rewrite.
    rewritten = exportlog.record_underway(content, GATEWAY, REMOTE, [TREE1], TREE2, Timestamp(5))
    assert b"not a line\n" in rewritten
    assert f"3s nocolon {TREE1}".encode() in rewritten


shas = st.text("0123456789abcdef", min_size=40, max_size=40)


@pytest.mark.property
@given(st.lists(shas, min_size=1, max_size=4))
def test_value_round_trip(trees: list[str]) -> None:
    value = Exported(tree=trees[0], incomplete=tuple(trees[1:]))
    assert Exported.parse(value.format()) == value


@pytest.mark.property
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_skip(content: bytes) -> None:
    parsed = exportlog.parse_export_log(content)
    for participants, exported in parsed.items():
        assert ExportParticipants.parse(participants.format()) == participants
        assert exported.tree
