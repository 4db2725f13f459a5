"""The examples of shared/spec/examples reproduced by our log writers and readers.

Byte-identical output given the same UUIDs, clocks and inputs, and the documented
meaning of each file, conflicts of example 08 included.
"""

from __future__ import annotations

import pytest

from annexproxy.branch.logs import (
    cluster,
    configlog,
    copies,
    descriptions,
    groups,
    maxsize,
    proxy,
    remoteconfig,
    trust,
    wanted,
)
from annexproxy.branch.logs.keyed import KeyedLog
from annexproxy.branch.logs.proxy import ProxyEntry
from annexproxy.branch.logs.snapshot import BranchConfig
from annexproxy.branch.logs.timestamps import Timestamp
from annexproxy.branch.logs.trust import TrustLevel

GATEWAY = "aa6440a6-0cfc-4c73-8f0a-5927cb981038"
GATEWAY2 = "a7f47d1a-408e-4c81-97a5-70b75d0c76a9"
NODE1 = "2a29ec74-6d41-4d05-ad0f-6dc9296eaa39"
NODE2 = "bfd9909a-9a8c-4755-8121-ff2d5636d64f"
NODE3 = "378f39af-1833-4879-9b1f-7176df00357a"
NODE4 = "14d7c4c6-1f1a-4546-a4a9-d449be0b8d14"
CLUSTER = "ac26f79d-a0df-892f-a81a-20d2273c7f59"
DIRSR = "16e4c38d-ff44-4d84-8615-69ede6414762"
EXPORTSR = "1c4306b6-ab79-4729-8f33-ef052968cd61"
CLIENT = "0b8b5763-1e9b-4106-824b-afc0086663ae"
U = "2fe550a4-fab9-462f-8322-ece2616932ad"


def ts(seconds: int) -> Timestamp:
    return Timestamp.from_seconds(seconds)


# --- example 01 ---------------------------------------------------------------------------

EX01_PROXY_AFTER_UPDATECLUSTER = (
    b"1795623867s aa6440a6-0cfc-4c73-8f0a-5927cb981038 "
    b"2a29ec74-6d41-4d05-ad0f-6dc9296eaa39:node1 378f39af-1833-4879-9b1f-7176df00357a:node3 "
    b"ac26f79d-a0df-892f-a81a-20d2273c7f59:mycluster bfd9909a-9a8c-4755-8121-ff2d5636d64f:node2\n"
)
EX01_PROXY_END = (
    b"1795623874s aa6440a6-0cfc-4c73-8f0a-5927cb981038 "
    b"16e4c38d-ff44-4d84-8615-69ede6414762:dirsr 1c4306b6-ab79-4729-8f33-ef052968cd61:exportsr "
    b"2a29ec74-6d41-4d05-ad0f-6dc9296eaa39:node1 378f39af-1833-4879-9b1f-7176df00357a:node3 "
    b"ac26f79d-a0df-892f-a81a-20d2273c7f59:mycluster bfd9909a-9a8c-4755-8121-ff2d5636d64f:node2\n"
)
EX01_CLUSTER = (
    b"1795623867s ac26f79d-a0df-892f-a81a-20d2273c7f59 2a29ec74-6d41-4d05-ad0f-6dc9296eaa39 "
    b"378f39af-1833-4879-9b1f-7176df00357a bfd9909a-9a8c-4755-8121-ff2d5636d64f\n"
)
EX01_UUID_LOG = b"""16e4c38d-ff44-4d84-8615-69ede6414762 dirsr timestamp=1795623871s
1c4306b6-ab79-4729-8f33-ef052968cd61 exportsr timestamp=1795623872s
2a29ec74-6d41-4d05-ad0f-6dc9296eaa39 node1 timestamp=1795623861s
378f39af-1833-4879-9b1f-7176df00357a node3 timestamp=1795623861s
aa6440a6-0cfc-4c73-8f0a-5927cb981038 gateway timestamp=1795623860s
ac26f79d-a0df-892f-a81a-20d2273c7f59 cluster mycluster timestamp=1795623864s
bfd9909a-9a8c-4755-8121-ff2d5636d64f node2 timestamp=1795623861s
"""
EX01_REMOTE_LOG = (
    b"16e4c38d-ff44-4d84-8615-69ede6414762 encryption=none name=dirsr type=directory "
    b"timestamp=1795623871s\n"
    b"1c4306b6-ab79-4729-8f33-ef052968cd61 annexobjects=yes encryption=none exporttree=yes "
    b"name=exportsr type=directory timestamp=1795623874s\n"
)


def test_ex01_proxy_log_written_by_updatecluster_then_updateproxy() -> None:
    first = {
        ProxyEntry(NODE1, "node1"),
        ProxyEntry(NODE3, "node3"),
        ProxyEntry(CLUSTER, "mycluster"),
        ProxyEntry(NODE2, "node2"),
    }
    content = proxy.set_proxies(b"", GATEWAY, first, ts(1795623867))
    assert content == EX01_PROXY_AFTER_UPDATECLUSTER
    second = first | {ProxyEntry(DIRSR, "dirsr"), ProxyEntry(EXPORTSR, "exportsr")}
    assert proxy.set_proxies(content, GATEWAY, second, ts(1795623874)) == EX01_PROXY_END
    assert proxy.parse_proxy_log(EX01_PROXY_END) == {GATEWAY: frozenset(second)}


def test_ex01_cluster_log() -> None:
    content = cluster.set_cluster_nodes(b"", CLUSTER, [NODE2, NODE1, NODE3], ts(1795623867))
    assert content == EX01_CLUSTER
    assert cluster.parse_cluster_log(content) == {CLUSTER: frozenset({NODE1, NODE2, NODE3})}


def test_ex01_uuid_log_in_the_order_the_commands_ran() -> None:
    content = b""
    for uuid, text, clock in [
        (GATEWAY, "gateway", 1795623860),
        (NODE1, "node1", 1795623861),
        (NODE2, "node2", 1795623861),
        (NODE3, "node3", 1795623861),
        (CLUSTER, "cluster mycluster", 1795623864),
        (DIRSR, "dirsr", 1795623871),
        (EXPORTSR, "exportsr", 1795623872),
    ]:
        content = descriptions.set_description(content, uuid, text, ts(clock))
    assert content == EX01_UUID_LOG
    assert descriptions.parse_descriptions(content)[CLUSTER] == "cluster mycluster"


def test_ex01_remote_log() -> None:
    content = remoteconfig.set_remote_config(
        b"", DIRSR, {"type": "directory", "name": "dirsr", "encryption": "none"}, ts(1795623871)
    )
    config = {"type": "directory", "name": "exportsr", "encryption": "none", "exporttree": "yes"}
    content = remoteconfig.set_remote_config(content, EXPORTSR, config, ts(1795623872))
    config["annexobjects"] = "yes"  # enableremote exportsr annexobjects=yes
    content = remoteconfig.set_remote_config(content, EXPORTSR, config, ts(1795623874))
    assert content == EX01_REMOTE_LOG
    assert remoteconfig.parse_remote_log(content)[EXPORTSR]["annexobjects"] == "yes"


def test_remote_config_escapes_spaces_and_ampersands() -> None:
    value = remoteconfig.encode_config({"name": "a b&c", "x": "tab\there"})
    assert value == b"name=a&32;b&38;c x=tab&9;here"
    assert remoteconfig.decode_config(value) == {"name": "a b&c", "x": "tab\there"}


# --- example 02: cluster membership is derived ----------------------------------------------


def test_ex02_cluster_uuid_listed_but_not_counted() -> None:
    config = BranchConfig.read({"cluster.log": EX01_CLUSTER}.get)
    present = config.with_clusters([CLIENT, NODE1, NODE3, NODE2])
    assert present == sorted([CLUSTER, CLIENT, NODE1, NODE3, NODE2])
    assert cluster.count_copies(present) == 4
    assert config.with_clusters([CLIENT]) == [CLIENT]


def test_dead_nodes_leave_the_cluster() -> None:
    trust_log = trust.set_trust(b"", NODE1, TrustLevel.DEAD, ts(1795623900))
    config = BranchConfig.read({"cluster.log": EX01_CLUSTER, "trust.log": trust_log}.get)
    assert config.clusters == {CLUSTER: frozenset({NODE2, NODE3})}
    assert config.with_clusters([NODE1]) == [NODE1]


def test_cluster_log_ignores_non_cluster_fields_and_cluster_uuids_never_logged() -> None:
    content = EX01_CLUSTER + b"1795623999s " + NODE1.encode() + b" " + NODE2.encode() + b"\n"
    assert list(cluster.parse_cluster_log(content)) == [CLUSTER]
    assert cluster.with_cluster_uuids([CLUSTER], {}) == []


# --- example 03: every configuration log ------------------------------------------------------

EX03 = {
    "group.log": b"""2a29ec74-6d41-4d05-ad0f-6dc9296eaa39 mynodes timestamp=1795623940s
378f39af-1833-4879-9b1f-7176df00357a archive mynodes timestamp=1795623941s
ac26f79d-a0df-892f-a81a-20d2273c7f59 backup timestamp=1795623940s
bfd9909a-9a8c-4755-8121-ff2d5636d64f mynodes timestamp=1795623940s
""",
    "preferred-content.log": b"2a29ec74-6d41-4d05-ad0f-6dc9296eaa39 groupwanted "
    b"""timestamp=1795623940s
378f39af-1833-4879-9b1f-7176df00357a exclude=*.bin timestamp=1795623940s
aa6440a6-0cfc-4c73-8f0a-5927cb981038 nothing timestamp=1795623940s
ac26f79d-a0df-892f-a81a-20d2273c7f59 standard timestamp=1795623940s
bfd9909a-9a8c-4755-8121-ff2d5636d64f groupwanted timestamp=1795623940s
""",
    "group-preferred-content.log": b"1795623940s mynodes balanced=mynodes\n",
    "required-content.log": (
        b"2a29ec74-6d41-4d05-ad0f-6dc9296eaa39 include=*.txt timestamp=1795623941s\n"
    ),
    "maxsize.log": b"""1795623941s 2a29ec74-6d41-4d05-ad0f-6dc9296eaa39 10000000
1795623941s bfd9909a-9a8c-4755-8121-ff2d5636d64f 1000000
""",
    "numcopies.log": b"1795623941s 2\n",
    "mincopies.log": b"1795623941s 1\n",
    "trust.log": b"""2a29ec74-6d41-4d05-ad0f-6dc9296eaa39 1 timestamp=1795623943s
bfd9909a-9a8c-4755-8121-ff2d5636d64f 0 timestamp=1795623941s
""",
    "config.log": b"1795623941s annex.largefiles largerthan=1kb\n",
}


def test_ex03_written_byte_identically() -> None:
    t40, t41, t43 = ts(1795623940), ts(1795623941), ts(1795623943)
    g = groups.set_groups(b"", NODE1, ["mynodes"], t40)
    g = groups.set_groups(g, NODE2, ["mynodes"], t40)
    g = groups.set_groups(g, NODE3, ["mynodes"], t40)
    g = groups.set_groups(g, NODE3, ["mynodes", "archive"], t41)
    g = groups.set_groups(g, CLUSTER, ["backup"], t40)
    assert g == EX03["group.log"]
    p = b""
    for uuid, expr in [
        (NODE1, "groupwanted"),
        (NODE2, "groupwanted"),
        (NODE3, "exclude=*.bin"),
        (CLUSTER, "standard"),
        (GATEWAY, "nothing"),
    ]:
        p = wanted.set_expression(p, uuid, expr, t40)
    assert p == EX03["preferred-content.log"]
    gp = wanted.set_group_expression(b"", "mynodes", "balanced=mynodes", t40)
    assert gp == EX03["group-preferred-content.log"]
    assert wanted.set_expression(b"", NODE1, "include=*.txt", t41) == EX03["required-content.log"]
    m = maxsize.set_maxsize(b"", NODE1, 10_000_000, t41)
    assert maxsize.set_maxsize(m, NODE2, 1_000_000, t41) == EX03["maxsize.log"]
    assert copies.set_copies(b"", 2, t41) == EX03["numcopies.log"]
    assert copies.set_copies(b"", 1, t41) == EX03["mincopies.log"]
    tr = trust.set_trust(b"", NODE2, TrustLevel.UNTRUSTED, t41)
    assert trust.set_trust(tr, NODE1, TrustLevel.TRUSTED, t43) == EX03["trust.log"]
    c = configlog.set_config(b"", "annex.largefiles", "largerthan=1kb", t41)
    assert c == EX03["config.log"]


def test_ex03_read_with_its_meaning() -> None:
    config = BranchConfig.read(EX03.get)
    assert config.groups[NODE3] == {"archive", "mynodes"}
    assert config.preferred[GATEWAY] == "nothing"
    assert config.group_preferred == {"mynodes": "balanced=mynodes"}
    assert config.required == {NODE1: "include=*.txt"}
    assert config.maxsize == {NODE1: 10_000_000, NODE2: 1_000_000}
    assert (config.numcopies, config.mincopies) == (2, 1)
    assert config.trust_of(NODE1) is TrustLevel.TRUSTED
    assert config.trust_of(NODE2) is TrustLevel.UNTRUSTED
    assert config.trust_of(NODE3) is TrustLevel.SEMITRUSTED
    assert config.config == {"annex.largefiles": "largerthan=1kb"}


def test_ex03_observation2_advance_rule_within_one_second() -> None:
    content = b""
    for expr in ["include=*.x", "include=*.y", "include=*.z"]:
        content = wanted.set_expression(content, U, expr, ts(1795624838))
    assert content == U.encode() + b" include=*.z timestamp=1795624840s\n"


# --- example 06: duplicate lines after union merges ---------------------------------------------

EX06_GATEWAY_CLUSTER = EX01_CLUSTER + (
    b"1795624010s ac26f79d-a0df-892f-a81a-20d2273c7f59 14d7c4c6-1f1a-4546-a4a9-d449be0b8d14 "
    b"2a29ec74-6d41-4d05-ad0f-6dc9296eaa39 378f39af-1833-4879-9b1f-7176df00357a "
    b"bfd9909a-9a8c-4755-8121-ff2d5636d64f\n"
)
EX06_GW2_PROXY_LINE = (
    b"1795624010s a7f47d1a-408e-4c81-97a5-70b75d0c76a9 "
    b"14d7c4c6-1f1a-4546-a4a9-d449be0b8d14:node4 "
    b"2a29ec74-6d41-4d05-ad0f-6dc9296eaa39:gw-node1 378f39af-1833-4879-9b1f-7176df00357a:gw-node3 "
    b"ac26f79d-a0df-892f-a81a-20d2273c7f59:mycluster "
    b"bfd9909a-9a8c-4755-8121-ff2d5636d64f:gw-node2\n"
)
EX06_GW_PROXY_LINE = (
    b"1795624016s aa6440a6-0cfc-4c73-8f0a-5927cb981038 "
    b"14d7c4c6-1f1a-4546-a4a9-d449be0b8d14:gw2-node4 " + EX01_PROXY_END.split(b" ", 2)[2]
)


def test_ex06_newest_cluster_line_wins_no_union_of_node_sets() -> None:
    assert cluster.parse_cluster_log(EX06_GATEWAY_CLUSTER) == {
        CLUSTER: frozenset({NODE1, NODE2, NODE3, NODE4})
    }


def test_ex06_proxy_log_three_lines_two_proxies() -> None:
    content = EX01_PROXY_END.replace(b"1795623867s", b"1795623874s")
    content += EX06_GW2_PROXY_LINE + EX06_GW_PROXY_LINE
    parsed = proxy.parse_proxy_log(content)
    assert ProxyEntry(NODE4, "gw2-node4") in parsed[GATEWAY]
    assert ProxyEntry(NODE1, "gw-node1") in parsed[GATEWAY2]
    config = BranchConfig.read({"proxy.log": content, "cluster.log": EX06_GATEWAY_CLUSTER}.get)
    assert config.gateways_of(CLUSTER) == [GATEWAY2, GATEWAY]
    assert config.cluster_name(CLUSTER) == "mycluster"
    # what GATEWAY2 writes: the exact line of example 06
    entries = parsed[GATEWAY2]
    assert proxy.set_proxies(b"", GATEWAY2, entries, ts(1795624010)) == EX06_GW2_PROXY_LINE


def test_proxy_entries_with_illegal_names_are_ignored() -> None:
    content = b"1s " + GATEWAY.encode() + b" " + NODE1.encode() + b":-bad " + NODE2.encode()
    content += b":ok.name\n"
    assert proxy.parse_proxy_log(content) == {GATEWAY: frozenset({ProxyEntry(NODE2, "ok.name")})}


# --- example 08: tie-breaking and empty values ------------------------------------------------


def test_ex08_case3_uuid_log_tie_later_line_wins() -> None:
    content = (
        U.encode()
        + b" exclude=*.b timestamp=1700000000s\n"
        + U.encode()
        + b" exclude=*.a timestamp=1700000000s\n"
    )
    assert wanted.parse_expressions(content) == {U: "exclude=*.a"}


def test_ex08_case4_single_value_tie_largest_value_wins() -> None:
    assert copies.parse_copies(b"1700000000s 3\n1700000000s 5\n1700000000s 4\n") == 5


EX08_CASE5 = (
    b"1700000000s 2fe550a4-fab9-462f-8322-ece2616932ad 300\n"
    b"1700000000s 2fe550a4-fab9-462f-8322-ece2616932ad 100\n"
)


def test_ex08_case5_keyed_tie_later_line_wins() -> None:
    assert maxsize.parse_maxsize_log(EX08_CASE5) == {U: 100}


def test_ex08_case6_vector_clock_advance_collapses_ties() -> None:
    first = maxsize.set_maxsize(EX08_CASE5, U, 5000, ts(1234567890))
    assert first == b"1700000001s 2fe550a4-fab9-462f-8322-ece2616932ad 5000\n"
    second = maxsize.set_maxsize(first, U, 6000, Timestamp.parse("1234567890.5"))
    assert second == b"1700000002s 2fe550a4-fab9-462f-8322-ece2616932ad 6000\n"


def test_ex08_case7_empty_values() -> None:
    assert proxy.set_proxies(b"", U, [], ts(1795624845)) == b"1795624845s " + U.encode() + b" \n"
    grouped = groups.set_groups(b"", U, ["archive"], ts(1795624844))
    ungrouped = groups.set_groups(grouped, U, [], ts(1795624845))
    assert ungrouped == U.encode() + b"  timestamp=1795624845s\n"
    assert groups.parse_group_log(ungrouped) == {U: frozenset()}
    hand = U.encode() + b" archive  timestamp=1700000000s\n"
    assert groups.parse_group_log(hand) == {U: frozenset({"archive"})}


# --- timestamps, unknown and legacy lines --------------------------------------------------------


@pytest.mark.parametrize(
    ("clock", "wins"),
    [(b"1317929189.157237s", True), (b"1700000000", True), (b"1317929189", False)],
)
def test_fractions_and_missing_s(clock: bytes, wins: bool) -> None:
    content = b"1317929189.1s " + U.encode() + b" 1\n" + clock + b" " + U.encode() + b" 2\n"
    assert maxsize.parse_maxsize_log(content) == {U: 2 if wins else 1}


def test_legacy_trust_and_unknown_clock() -> None:
    content = U.encode() + b"\n" + NODE1.encode() + b" 0\n"
    assert trust.parse_trust_log(content) == {U: TrustLevel.TRUSTED, NODE1: TrustLevel.UNTRUSTED}
    newer = trust.set_trust(content, NODE1, TrustLevel.DEAD, ts(5))
    assert trust.parse_trust_log(newer)[NODE1] is TrustLevel.DEAD


def test_unknown_lines_are_kept_when_rewriting() -> None:
    content = b"garbage line\n" + EX08_CASE5 + b"1700000009s " + NODE1.encode() + b" lots\n"
    assert maxsize.parse_maxsize_log(content) == {U: 100}  # "lots" is not a size: skipped
    new = maxsize.set_maxsize(content, NODE2, 7, ts(1800000000))
    assert new == (
        b"1700000000s " + U.encode() + b" 100\n"
        b"1800000000s " + NODE2.encode() + b" 7\n"
        b"garbage line\n"
        b"1700000009s " + NODE1.encode() + b" lots\n"
    )


def test_ex10_export_log_resolves_newest_per_field() -> None:
    field = GATEWAY + ":" + EXPORTSR
    content = (
        f"1795624896s {field} 6b1cacc5d84163b88a4031f39b37012255c69bea\n"
        f"1795625046s {field} e3195a94735d8ea4c04940d084271d215eafc490\n"
    ).encode()
    assert KeyedLog.parse(content).values() == {
        field.encode(): b"e3195a94735d8ea4c04940d084271d215eafc490"
    }
