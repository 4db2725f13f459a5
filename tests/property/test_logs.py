"""Round trips and the any-bytes invariant for every branch log family and log type."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from annexproxy.branch.logs import (
    cluster,
    configlog,
    copies,
    descriptions,
    groups,
    maxsize,
    presence,
    proxy,
    remoteconfig,
    trust,
    wanted,
)
from annexproxy.branch.logs.keyed import KeyedLine, KeyedLog
from annexproxy.branch.logs.proxy import ProxyEntry
from annexproxy.branch.logs.singlevalue import SingleValueLine, SingleValueLog
from annexproxy.branch.logs.snapshot import BranchConfig
from annexproxy.branch.logs.timestamps import Timestamp
from annexproxy.branch.logs.trust import TrustLevel
from annexproxy.branch.logs.uuidbased import UUIDLog, UUIDLogLine
from annexproxy.errors import LogFormatError

pytestmark = pytest.mark.property

clocks = st.integers(min_value=0, max_value=10**24).map(Timestamp)
whole_clocks = st.integers(min_value=0, max_value=4 * 10**9).map(Timestamp.from_seconds)
token = st.binary(min_size=1, max_size=12).filter(
    lambda b: not any(c in b for c in b" \r\n") and not b.startswith(b"timestamp=")
)
value = st.binary(max_size=20).filter(lambda b: b"\n" not in b and b"\r" not in b)
words = st.text(alphabet="abcdefgh-_.0123456789", min_size=1, max_size=8)
uuids = st.uuids().map(str)

uuid_lines = st.builds(
    UUIDLogLine,
    uuid=token,
    value=value,
    timestamp=clocks,
)
keyed_lines = st.builds(KeyedLine, timestamp=clocks, field=token, value=value)
single_lines = st.builds(
    SingleValueLine, timestamp=clocks, value=st.integers(min_value=-(10**9), max_value=10**9)
)


@given(st.lists(uuid_lines, max_size=6))
def test_uuid_log_round_trip(lines: list[UUIDLogLine]) -> None:
    log = UUIDLog(lines=tuple(lines))
    assert UUIDLog.parse(log.format()) == log


@given(st.lists(keyed_lines, max_size=6))
def test_keyed_log_round_trip(lines: list[KeyedLine]) -> None:
    log = KeyedLog(lines=tuple(lines))
    assert KeyedLog.parse(log.format()) == log


@given(st.lists(single_lines, max_size=6))
def test_single_value_round_trip(lines: list[SingleValueLine]) -> None:
    log = SingleValueLog(lines=tuple(lines))
    assert SingleValueLog.parse(log.format()) == log


@given(st.binary(max_size=400))
def test_any_bytes_give_a_value(data: bytes) -> None:
    for family in (UUIDLog, KeyedLog, SingleValueLog):
        parsed = family.parse(data)
        assert family.parse(parsed.format()) == parsed  # stable after one rewrite
    for line_type in (UUIDLogLine, KeyedLine, SingleValueLine):
        with contextlib.suppress(LogFormatError):
            line_type.parse(data.split(b"\n")[0])
    config = BranchConfig.read(lambda _path: data)
    assert isinstance(config.known_uuids(), list)
    assert isinstance(config.clusters, dict)


@given(st.lists(uuid_lines, max_size=6), token, value, clocks)
def test_uuid_log_set_wins_and_is_compacted(
    lines: list[UUIDLogLine], uuid: bytes, new: bytes, now: Timestamp
) -> None:
    log = UUIDLog(lines=tuple(lines))
    after = UUIDLog.parse(log.with_value(uuid, new, now).format())
    assert after.values()[uuid] == new
    assert [ln.uuid for ln in after.lines] == sorted({ln.uuid for ln in after.lines})
    others = {u: v for u, v in log.values().items() if u != uuid}
    assert {u: v for u, v in after.values().items() if u != uuid} == others


@given(st.lists(keyed_lines, max_size=6), token, value, clocks)
def test_keyed_log_set_wins_and_is_compacted(
    lines: list[KeyedLine], field: bytes, new: bytes, now: Timestamp
) -> None:
    log = KeyedLog(lines=tuple(lines))
    after = KeyedLog.parse(log.with_value(field, new, now).format())
    assert after.values()[field] == new
    assert [ln.field for ln in after.lines] == sorted({ln.field for ln in after.lines})


@given(st.lists(single_lines, max_size=6), st.integers(0, 99), clocks)
def test_single_value_set_wins(lines: list[SingleValueLine], new: int, now: Timestamp) -> None:
    after = SingleValueLog.parse(SingleValueLog(lines=tuple(lines)).with_value(new, now).format())
    assert after.value() == new


# --- typed log modules: parse(format(x)) == x ------------------------------------------------


@given(st.dictionaries(uuids, st.text(max_size=20).filter(lambda t: "\\n" not in t), max_size=4))
def test_descriptions_round_trip(table: dict[str, str]) -> None:
    content = b""
    for uuid, text in table.items():
        content = descriptions.set_description(content, uuid, text, Timestamp.from_seconds(1))
    expected = {u: t.replace("\r", "") for u, t in table.items()}
    assert descriptions.parse_descriptions(content) == expected


@given(uuids, st.dictionaries(words, st.text(max_size=10), max_size=4))
def test_remote_config_round_trip(uuid: str, config: dict[str, str]) -> None:
    content = remoteconfig.set_remote_config(b"", uuid, config, Timestamp.from_seconds(1))
    assert remoteconfig.parse_remote_log(content) == {uuid: config}


@given(st.dictionaries(uuids, st.sampled_from(TrustLevel), max_size=4), whole_clocks)
def test_trust_round_trip(table: dict[str, TrustLevel], now: Timestamp) -> None:
    content = b""
    for uuid, level in table.items():
        content = trust.set_trust(content, uuid, level, now)
    assert trust.parse_trust_log(content) == table


@given(st.dictionaries(uuids, st.frozensets(words, max_size=3), max_size=4), whole_clocks)
def test_groups_round_trip(table: dict[str, frozenset[str]], now: Timestamp) -> None:
    content = b""
    for uuid, names in table.items():
        content = groups.set_groups(content, uuid, names, now)
    assert groups.parse_group_log(content) == table


@given(st.dictionaries(uuids, st.text(max_size=15), max_size=4), whole_clocks)
def test_expressions_round_trip(table: dict[str, str], now: Timestamp) -> None:
    table = {u: e.replace("\n", " ").replace("\r", " ") for u, e in table.items()}
    content, by_group = b"", b""
    for uuid, expr in table.items():
        content = wanted.set_expression(content, uuid, expr, now)
        by_group = wanted.set_group_expression(by_group, uuid, expr, now)
    assert wanted.parse_expressions(content) == table
    assert wanted.parse_group_expressions(by_group) == table


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=4), whole_clocks)
def test_copies_round_trip(values: list[int], now: Timestamp) -> None:
    content = b""
    for number in values:
        content = copies.set_copies(content, number, now)
    assert copies.parse_copies(content) == values[-1]


@given(st.dictionaries(words, st.text(min_size=1, max_size=8), max_size=4), whole_clocks)
def test_config_round_trip(table: dict[str, str], now: Timestamp) -> None:
    table = {k: v.replace("\n", "x").replace("\r", "x") for k, v in table.items()}
    content = b""
    for name, setting in table.items():
        content = configlog.set_config(content, name, setting, now)
    assert configlog.parse_config_log(content) == table


@given(st.dictionaries(uuids, st.integers(0, 10**15), max_size=4), whole_clocks)
def test_maxsize_round_trip(table: dict[str, int], now: Timestamp) -> None:
    content = b""
    for uuid, size in table.items():
        content = maxsize.set_maxsize(content, uuid, size, now)
    assert maxsize.parse_maxsize_log(content) == table


entries = st.builds(
    ProxyEntry, uuids, st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,8}", fullmatch=True)
)


@given(st.dictionaries(uuids, st.frozensets(entries, max_size=4), max_size=3), whole_clocks)
def test_proxy_round_trip(table: dict[str, frozenset[ProxyEntry]], now: Timestamp) -> None:
    content = b""
    for gateway, listed in table.items():
        content = proxy.set_proxies(content, gateway, listed, now)
    assert proxy.parse_proxy_log(content) == table


cluster_uuids = uuids.map(lambda u: "ac" + u[2:14] + "8" + u[15:])


@given(st.dictionaries(cluster_uuids, st.frozensets(uuids, max_size=4), max_size=3), whole_clocks)
def test_cluster_round_trip(table: dict[str, frozenset[str]], now: Timestamp) -> None:
    content = b""
    for group, nodes in table.items():
        content = cluster.set_cluster_nodes(content, group, nodes, now)
    assert cluster.parse_cluster_log(content) == table


presence_ish = st.lists(
    st.tuples(
        st.sampled_from([b"1795623909s", b"1795623909", b"17.5s", b"-0.5s", b"x", b"0001s"]),
        st.sampled_from([b" 1 ", b" 0 ", b" X ", b" 2 ", b"  ", b" 1"]),
        st.sampled_from([b"u1", b"u2", b"", b"a b"]),
        st.sampled_from([b"\n", b"\r\n", b"\n\n", b""]),
    ),
    max_size=8,
).map(lambda parts: b"".join(b"".join(p) for p in parts))


@given(st.one_of(presence_ish, st.binary(max_size=200)))
def test_present_infos_fast_path_agrees_with_resolution(content: bytes) -> None:
    resolved = presence.resolve(presence.parse_presence_log(content))
    expected = [i for i, line in resolved.items() if line.status is presence.PresenceStatus.PRESENT]
    assert presence.present_infos(content) == expected
