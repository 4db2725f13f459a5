"""How a cluster upload sorts its nodes' answers: nodes to resume, and holders."""

from __future__ import annotations

from annexproxy.cluster.clusterstore import _sort_answers
from annexproxy.uuids import RepoUUID

A = RepoUUID("00000000-0000-4000-8000-00000000000a")
B = RepoUUID("00000000-0000-4000-8000-00000000000b")
C = RepoUUID("00000000-0000-4000-8000-00000000000c")
RELAY = RepoUUID("00000000-0000-4000-8000-0000000000ff")


def test_lacking_nodes_are_kept_in_order_and_holders_sorted_once() -> None:
    lacking, holders = _sort_answers(
        [
            ("b", B, False, None),
            ("c", C, False, (A,)),  # C has it, and says A has it too
            ("a", A, False, ()),
            ("relay", RELAY, False, None),
        ]
    )
    assert lacking == ["b", "relay"]
    assert holders == (A, C)


def test_a_relay_counts_only_the_nodes_it_names() -> None:
    lacking, holders = _sort_answers([(0, RELAY, True, (B,)), (7, A, False, None)])
    assert lacking == [7]
    assert holders == (B,)  # never the relay's own UUID (it answers for the cluster)


def test_no_answers() -> None:
    assert _sort_answers([]) == ([], ())
