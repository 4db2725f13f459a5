"""Properties of the preferred-content core.

* any string parses to an expression or raises ExpressionSyntaxError, nothing else;
* the printer round-trips: parse(format(parse(x))) == parse(x);
* git-annex's prop_balanced_stable (the HMAC picker self-test);
* adding a repository with space to a group never leaves a key unwanted by every member
  (balanced placement stays total);
* evaluating 100,000 (repository, key) questions on 16 nodes takes seconds.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from annexproxy.errors import ExpressionSyntaxError
from annexproxy.keys import Key
from annexproxy.preferred import (
    GroupPicker,
    MatchContext,
    PreferredContent,
    Repository,
    format_expression,
    parse_expression,
    pick,
)
from annexproxy.space import RepoSizeTracker
from annexproxy.uuids import RepoUUID

pytestmark = pytest.mark.property

WORDS = [
    "and", "or", "not", "(", ")", "()", "anything", "nothing", "present", "standard",
    "groupwanted", "include=*.mp3", "exclude=a/*", "largerthan=1kb", "smallerthan=2",
    "copies=2", "copies=trusted+:1", "copies=g:1", "lackingcopies=1", "inallgroup=g",
    "onlyingroup=g", "metadata=tag=a*", "metadata=year<2", "url=*x*", "inbackend=WORM",
    "securehash", "unused", "inpreferreddir", "balanced=g:2", "fullysizebalanced=g",
    "foo", "copies=x", "largerthan=mb", "include", "AND", "(include=a", "b)",
]  # fmt: skip


@given(st.text())
def test_any_text_parses_or_raises_syntax_error(text: str) -> None:
    try:
        expression = parse_expression(text)
    except ExpressionSyntaxError as exc:
        start, end = exc.span
        assert 0 <= start < end <= len(text) or (start, end) == (0, len(text))
    else:
        assert expression.source == text


@given(st.lists(st.sampled_from(WORDS), max_size=14))
def test_printer_round_trip(words: list[str]) -> None:
    try:
        parsed = parse_expression(" ".join(words))
    except ExpressionSyntaxError:
        return
    printed = format_expression(parsed)
    assert parse_expression(printed).matcher == parsed.matcher
    assert format_expression(parse_expression(printed)) == printed


def test_prop_balanced_stable() -> None:
    members = [RepoUUID(str(n)) for n in range(1, 501)]
    picker = GroupPicker.for_members(members)
    assert pick(picker, members, "WORM--test", 1) == ["332"]
    assert pick(picker, members, "WORM--test", 3) == ["332", "333", "334"]


def _uuid(n: int) -> RepoUUID:
    return RepoUUID(f"{n:08x}-1111-2222-3333-444444444444")


@given(
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)), min_size=1, max_size=6),
    st.lists(st.integers(0, 2 * 10**5), min_size=1, max_size=8),
    st.sampled_from(["balanced=g", "fullybalanced=g:2", "sizebalanced=g", "balanced=g:2"]),
)
def test_adding_a_repository_with_space_keeps_every_key_wanted(
    members: list[tuple[int, int]], key_sizes: list[int], expression: str
) -> None:
    here = RepoUUID("ffffffff-0000-0000-0000-000000000000")
    repos = {
        _uuid(i): Repository(
            uuid=_uuid(i), groups=frozenset({"g"}), wanted=expression, maxsize=maxsize
        )
        for i, (maxsize, _) in enumerate(members)
    }
    sizes = {_uuid(i): used for i, (_, used) in enumerate(members)}
    keys = [Key.parse(f"SHA256E-s{s}--{i:064x}") for i, s in enumerate(key_sizes)]

    def wanted_by_some(table: dict[RepoUUID, Repository]) -> list[bool]:
        tracker = RepoSizeTracker(known=table)
        for uuid, used in sizes.items():
            if used:
                tracker.set_present(Key.parse(f"WORM-s{used}--filler{uuid}"), uuid, present=True)
        context = MatchContext(
            here=here, repositories=table, locations=lambda key: (), sizes=tracker
        )
        evaluator = PreferredContent(context)
        return [any(evaluator.want_get(u, k, "f") for u in table) for k in keys]

    before = wanted_by_some(repos)
    newcomer = _uuid(99)
    biggest = max(key_sizes) + 1
    with_new = dict(repos)
    with_new[newcomer] = Repository(
        uuid=newcomer, groups=frozenset({"g"}), wanted=expression, maxsize=biggest
    )
    after = wanted_by_some(with_new)
    assert all(after), (before, after)


def test_hundred_thousand_questions_on_sixteen_nodes_take_seconds() -> None:
    here = RepoUUID("ffffffff-0000-0000-0000-000000000000")
    nodes = [_uuid(i) for i in range(16)]
    expressions = ["balanced=pool:2", "standard", "include=*.jpg or copies=pool:2"]
    repos = {
        u: Repository(
            uuid=u,
            groups=frozenset({"pool", "backup" if i % 2 else "archive"}),
            wanted=expressions[i % 3],
            maxsize=10**12,
        )
        for i, u in enumerate(nodes)
    }
    keys = [Key.parse(f"SHA256E-s{1000 + i}--{i:064x}.jpg") for i in range(6250)]
    where = {
        k: frozenset(nodes[(i * 7 + j) % 16] for j in range(i % 3)) for i, k in enumerate(keys)
    }
    tracker = RepoSizeTracker.from_locations(where, known=nodes)
    context = MatchContext(
        here=here, repositories=repos, locations=where.__getitem__, numcopies=2, sizes=tracker
    )
    evaluator = PreferredContent(context)
    start = time.perf_counter()
    answers = 0
    for key in keys:
        for node in nodes:
            answers += evaluator.want_get(node, key, "photos/x.jpg")
    elapsed = time.perf_counter() - start
    assert answers > 0
    assert elapsed < 10, elapsed
