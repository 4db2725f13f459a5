"""Unit tests of the simulator's pure core: RNG, parser, formatting, op list, state, engine."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from annexproxy.keys import Key
from annexproxy.sim import SimError, SimParseError, parse_line, show, start
from annexproxy.sim.check import check_commands
from annexproxy.sim.commands import (
    connection_pairs,
    format_command,
    format_size,
    parse_sim_file,
    read_bool,
    read_int,
    show_double,
)
from annexproxy.sim.engine import Trace
from annexproxy.sim.metadata import apply_modification, parse_modification
from annexproxy.sim.oplist import OpList, Segment
from annexproxy.sim.report import pending_changes, summary
from annexproxy.sim.rng import SplitMix, sim_random
from annexproxy.sim.state import from_json, to_json
from annexproxy.uuids import RepoUUID


def _run(text: str) -> tuple[str, list[str]]:
    notes: list[str] = []
    state = start(text, initial_seed=0, note=notes.append)
    return show(state), notes


# --- random numbers (sim.md 4.1 check values) -------------------------------------------


def test_splitmix_int_draws() -> None:
    gen = SplitMix(137)
    assert [gen.next_int() for _ in range(4)] == [
        7879794327570578227,
        6883935014316540929,
        -1519291874655152001,
        2353271688382626589,
    ]


def test_splitmix_word64() -> None:
    gen = SplitMix(12345)
    assert [gen.next64() for _ in range(3)] == [
        10722946105376845081,
        10793536220097891668,
        859633534578629621,
    ]


def test_range_without_draw_when_bounds_equal() -> None:
    value, seed = sim_random(5, lambda g: g.range(3, 3))
    assert value == 3
    assert seed == SplitMix(5).next_int()


def test_uuids_and_keys_from_spec() -> None:
    state = start(
        "seed 12345\ninit foo\ninit bar\ninit baz\naddmulti 6 file 1MB 10MB foo\n",
        initial_seed=0,
        note=lambda _: None,
    )
    assert state.repos == {
        "foo": "b54ada45-5b62-5221-b2b8-5e1b82acb948",
        "bar": "6ee68563-3174-5256-a1d8-8fb954c44822",
        "baz": "f8b04e4a-efbc-50ad-b202-d4fc94da2035",
    }
    assert str(state.files["6file"]) == (
        "SHA256E-s8804402--160112021a428910a9e09b81665dc104f117cd82080487fecdc1784e792f71e1"
        ".this-is-a-test-key"
    )


# --- parsing and history ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "history"),
    [
        ("init   foo", "init foo"),
        ("wanted foo", "wanted foo "),
        ("wanted foo  include=*  or   present", "wanted foo include=* or present"),
        ("add a 10 foo bar", "add a 10.0B foo bar"),
        ("addmulti 3 .x 500kB 6MB src", "addmulti 3 .x 500.0kB 6.0MB src"),
        ("maxsize n1 1.024kB", "maxsize n1 1.024kB"),
        ("step 007", "step 7"),
        ("seed -5", "seed -5"),
        ("rebalance yes", "rebalance on"),
        ("rebalance 0", "rebalance off"),
        (
            "action a sync b while action c dropunwanted",
            "action a sync b while action c dropunwanted",
        ),
        ("connect a <-> b <-> c", "connect a <-> b <-> c"),
        ("# a comment  kept", "# a comment  kept"),
        ("-- also a comment", "-- also a comment"),
        ("   ", ""),
    ],
)
def test_history_form(line: str, history: str) -> None:
    assert format_command(parse_line(line)) == history


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("init foo bar", 'Unable to parse sim command: "init foo bar"'),
        ("step x", 'Unable to parse step value "x"'),
        ("step", 'Unable to parse sim command: "step"'),
        ("add a 10xyz foo", 'Unable to parse file size "10xyz"'),
        ("addmulti x .y 1 2", 'Unable to parse number "x"'),
        ("seed +1", 'Unable to parse seed value "+1"'),
        ("trustlevel a high", 'Unknown trust level "high".'),
        ("maxsize a lots", 'Unable to parse maxsize "lots"'),
        ("rebalance maybe", 'Unable to parse rebalance value "maybe"'),
        ("connect a ->", 'Bad connect syntax near "-> a"'),
        ("connect a -> b c", 'Bad connect syntax near "c b -> a"'),
        ("connect x a -> b", 'Bad connect syntax near "x"'),
        ("action a getwanted b extra", 'Unable to parse sim command: "extra"'),
        ("action a frob b", 'Unable to parse sim command: "action a frob b"'),
        ("frobnicate", 'Unable to parse sim command: "frobnicate"'),
    ],
)
def test_parse_errors(line: str, message: str) -> None:
    with pytest.raises(SimParseError) as info:
        parse_line(line)
    assert str(info.value) == message


def test_connection_pairs_quirk() -> None:
    assert connection_pairs(("a", "<->", "b", "<->", "c")) == [
        ("a", "b"),
        ("a", "b"),
        ("b", "c"),
        ("c", "b"),
    ]
    assert connection_pairs(("a", "<-", "b", "->", "c")) == [("b", "a"), ("b", "c")]


def test_read_int_and_bool() -> None:
    assert read_int("-12") == -12
    assert read_int("0x10") == 16
    assert read_int("+1") is None
    assert read_int(str(2**64 + 3)) == 3
    assert read_bool("TRUE") is True
    assert read_bool("1-2") is True
    assert read_bool("off") is False
    assert read_bool("0x1") is None


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0.0B"),
        (999, "999.0B"),
        (1000, "1.0kB"),
        (999999, "999.999kB"),
        (123456789, "123.456789MB"),
        (10**30, "1.0QB"),
        (10**40, "1.0e10QB"),
        (-5, "-5.0B"),
    ],
)
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text


def test_show_double() -> None:
    assert show_double(0.1) == "0.1"
    assert show_double(0.01) == "1.0e-2"
    assert show_double(1234567.5) == "1234567.5"
    assert show_double(12345678.0) == "1.2345678e7"


# --- metadata ---------------------------------------------------------------------------


def test_metadata_modifications() -> None:
    current: dict[str, set[str]] = {}
    for text in ("Year=2024", "year+=2025", "year-=2024", "tag?=a", "tag?=b"):
        apply_modification(current, parse_modification(text))
    assert current == {"year": {"2025"}, "tag": {"a"}}
    apply_modification(current, parse_modification("year=1"))
    assert current["year"] == {"1"}


# --- op list ----------------------------------------------------------------------------


@given(
    lengths=st.lists(st.integers(0, 6), min_size=1, max_size=6),
    picks=st.lists(st.integers(0, 10**6), max_size=40),
)
def test_oplist_pops_like_a_list(lengths: list[int], picks: list[int]) -> None:
    key = Key(variety="WORM", name="k")
    segments = [
        Segment("get", RepoUUID("a"), "a", RepoUUID("b"), "b", [(f"{n}", key)] * length)
        for n, length in enumerate(lengths)
    ]
    flat = [(s, i) for s in segments if s.files for i in range(len(s.files))]
    ops = OpList(segments)
    for pick in picks:
        if not flat:
            break
        index = pick % len(flat)
        assert ops.pop(index) == flat.pop(index)
        assert len(ops) == len(flat)


# --- engine -----------------------------------------------------------------------------

SMALL = """seed 1
init a
init b
init c
connect a <-> b
connect b -> c
group c pool
group b pool
wanted b balanced=pool
wanted c balanced=pool
wanted a nothing
addmulti 5 .x 1MB 3MB a
stepstable 30
"""


def test_same_seed_same_trace() -> None:
    first, second = Trace(), Trace()
    one = start(SMALL, initial_seed=0, note=lambda _: None, trace=first)
    two = start(SMALL, initial_seed=0, note=lambda _: None, trace=second)
    assert show(one) == show(two)
    assert first.samples == second.samples
    assert first.samples


def test_missing_seed_line_records_initial_seed() -> None:
    state = start("init a\n", initial_seed=-77, note=lambda _: None)
    assert show(state) == "seed -77\ninit a\n"


def test_stabilizes_and_reports() -> None:
    history, notes = _run(SMALL)
    assert notes[-1].startswith("Simulation has stabilized after")
    assert "present" in history


def test_unknown_repository_error() -> None:
    with pytest.raises(SimError) as info:
        start("seed 1\ninit b\ninit a\nwanted c anything\n", initial_seed=0, note=print)
    assert str(info.value) == 'No repository in the simulation is named "c". Choose from: a b'


def test_special_remote_cannot_connect() -> None:
    with pytest.raises(SimError) as info:
        start("seed 1\ninitremote s\ninit a\nconnect s -> a\n", initial_seed=0, note=print)
    assert str(info.value) == "s is a special remote, and cannot connect to a"


def test_bad_expression_error() -> None:
    with pytest.raises(SimError) as info:
        start("seed 1\ninit a\nwanted a foo=bar\n", initial_seed=0, note=print)
    assert str(info.value) == 'Failed parsing "foo=bar": Parse failure: near "foo=bar"'


def test_failed_check_sets_failed() -> None:
    notes: list[str] = []
    state = start("seed 1\ninit a\nadd f 10 a\nnotpresent a f\n", initial_seed=0, note=notes.append)
    assert state.failed
    assert notes == ["Expected f not to be present in a, but it is present."]


def test_state_json_round_trip() -> None:
    state = start(SMALL + "metadata 1.x year=2024\n", initial_seed=0, note=lambda _: None)
    data = json.loads(json.dumps(to_json(state)))
    again = from_json(data)
    assert to_json(again) == to_json(state)
    assert show(again) == show(state)


def test_rollback_restores_everything() -> None:
    state = start(SMALL.replace("stepstable 30\n", ""), initial_seed=0, note=lambda _: None)
    before = json.dumps(to_json(state), sort_keys=True)
    state.begin_undo()
    state.clock += 0
    state.add_history("x")
    state.set_rng(123)
    key = next(iter(state.files.values()))
    for uuid in state.repostate:
        state.set_present(True, uuid, state.name_of(uuid), key, uuid)
    state.rollback()
    assert json.dumps(to_json(state), sort_keys=True) == before


def test_pending_changes_and_summary() -> None:
    state = start(SMALL.replace("stepstable 30\n", ""), initial_seed=0, note=lambda _: None)
    rng = state.rng
    pending = pending_changes(state)
    assert pending
    assert state.rng == rng
    document = summary(state)
    assert document["stable"] is False
    assert {r["name"] for r in document["repositories"]} == {"a", "b", "c"}


def test_static_check_flags_negated_present() -> None:
    found = check_commands(
        parse_sim_file("seed 1\ninit a\ninit b\nwanted a not present\nwanted b balanced=g\n")
    )
    assert [(u.repository, u.terms) for u in found] == [("a", ("present",))]


def test_random_seeds_are_reproducible() -> None:
    seed = random.Random(4).getrandbits(63)
    text = f"seed {seed}\ninit a\ninit b\nconnect a <-> b\nrandomwanted b anything present\n"
    assert _run(text) == _run(text)


def test_vectorised_words_match_scalar(monkeypatch: pytest.MonkeyPatch) -> None:
    from annexproxy.sim import rng

    fast = rng.SplitMix(-424242)
    quick = fast.words(1024), fast.next64()
    monkeypatch.setattr(rng, "_NP", None)
    slow = rng.SplitMix(-424242)
    assert (slow.words(1024), slow.next64()) == quick
