"""Terms one by one: sizes, counts, globs, metadata, URLs, securehash, directories, groups.

Expected values were checked against git-annex 10.20261026 (``git annex wanted`` for
parsing, ``git annex matchexpression`` for globs, ``find --want-get`` for securehash).
"""

from __future__ import annotations

import math

import pytest

from annexproxy.keys import Key
from annexproxy.preferred import (
    STANDARD_GROUPS,
    MatchContext,
    PreferredContent,
    Repository,
    TrustLevel,
    parse_expression,
    standard_group_of,
)
from annexproxy.preferred.glob import compile_glob
from annexproxy.preferred.termeval import in_directory, strip_downloader
from annexproxy.space.numbers import read_double_exact, readish_int
from annexproxy.space.units import parse_size
from annexproxy.uuids import RepoUUID

HERE = RepoUUID("11111111-1111-1111-1111-111111111111")
A = RepoUUID("aaaaaaaa-0000-0000-0000-000000000000")
B = RepoUUID("bbbbbbbb-0000-0000-0000-000000000000")
C = RepoUUID("cccccccc-0000-0000-0000-000000000000")
CLUSTER = RepoUUID("ac000000-0000-8000-0000-000000000000")
KEY = Key.parse("SHA256E-s1000--" + "0" * 64 + ".txt")


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1mb", 1_000_000),
        ("1MiB", 1_048_576),
        ("1k", 1000),
        ("1Ki", 1024),
        ("1kbit", 125),
        ("1e3", 1000),
        ("0x10", 16),
        ("100 KiloBytes", 100_000),
        ("0.5 gb", 500_000_000),
        ("0.5b", 0),
        ("2.5b", 2),
        ("1.5kb", 1500),
        ("1mb!!", 1_000_000),
        ("1_000", 1),
        ("1.5e1kb", 15_000),
        ("1.", 1),
        ("-5", -5),
        ("1kilobits", 125),
        ("1M\u0130b", 1_048_576),
        ("Infinity", 1 << 1024),
        ("NaN", -3 * (1 << 1023)),
        ("1e-99999999999999999999", 1 << 1024),
    ],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["mb", "1xyz", ".5", "+5", "", "kb1", "0x"])
def test_bad_sizes(text: str) -> None:
    assert parse_size(text) is None


@pytest.mark.parametrize(
    ("text", "value"),
    [("2abc", 2), ("0x2", 2), ("-1", -1), ("2.", 2), ("0o17", 15), ("18446744073709551617", 1)],
)
def test_readish_counts(text: str, value: int) -> None:
    assert readish_int(text) == value


@pytest.mark.parametrize("text", ["2.5", "2e1", "+2", "", " ", "x"])
def test_bad_counts(text: str) -> None:
    assert readish_int(text) is None


def test_read_double_exact() -> None:
    assert read_double_exact(" 150 ") == 150.0
    assert read_double_exact("(1.5)") == 1.5
    assert read_double_exact("abc") is None
    assert read_double_exact("1x") is None
    value = read_double_exact("NaN")
    assert value is not None
    assert math.isnan(value)


# (glob, value, matches) as git-annex matchexpression answered.
GLOBS = [
    ("it's.txt", "it's.txt", False),  # \' is an end-of-buffer anchor in regex-tdfa
    ("a<b", "a<b", False),
    ("[]a]", "]", True),
    ("[]a]", "a", True),
    ("[\\]", "\\", True),
    ("a\\b", "a\\\\\\b", True),
    ("a/b", "a//b", True),
    ("*.mp3", "x.txt\nb.mp3", True),
    ("[!a]", "\n", False),
    ("?", "\n", False),
    ("a{2}", "a{2}", True),
    ("a|b", "a|b", True),
    ("[[:alpha:]]", "\u00e9", False),
    ("[a-]", "-", True),
    ("[^a]", "^", True),
    ("[!]a]", "]", False),
    ("[[.a.]]", "a", False),
    ("[[=a=]]", "a", True),
    ("*.mp3", "a/b/c.mp3", True),
    ("photos/IMG[[:space:]]1.jpg", "photos/IMG 1.jpg", True),
]


@pytest.mark.parametrize(("glob", "value", "matches"), GLOBS)
def test_globs(glob: str, value: str, matches: bool) -> None:
    assert compile_glob(glob, case_sensitive=True, file_path=True).matches(value) is matches


@pytest.mark.parametrize("glob", ["[abc", "x[", "[z-a]", "[]"])
def test_uncompilable_globs(glob: str) -> None:
    compiled = compile_glob(glob, case_sensitive=True, file_path=True)
    assert compiled.error is not None
    assert compiled.error.startswith("failed to compile regex: ^")
    assert not compiled.matches(glob)


def test_case_insensitive_glob() -> None:
    glob = compile_glob("*SMITH", case_sensitive=False, file_path=False)
    assert glob.matches("Jane Smith")
    assert not compile_glob("*SMITH", case_sensitive=True, file_path=False).matches("Jane Smith")


@pytest.mark.parametrize(
    ("path", "folder", "inside"),
    [
        ("pubdir/a.html", "pubdir", True),
        ("x/pubdir/a.html", "pubdir", True),
        ("pubdir/y/a.html", "pubdir", False),
        ("a.html", "pubdir", False),
        ("x/y/a.html", "x/", True),
    ],
)
def test_in_directory(path: str, folder: str, inside: bool) -> None:
    assert in_directory(path, folder) is inside


def test_strip_downloader() -> None:
    assert strip_downloader("yt:https://x") == "https://x"
    assert strip_downloader("quvi:https://x") == "https://x"
    assert strip_downloader(":https://x") == "https://x"
    assert strip_downloader("https://x") == "https://x"


def test_standard_groups() -> None:
    assert len(STANDARD_GROUPS) == 10
    for expression in STANDARD_GROUPS.values():
        assert not parse_expression(expression).is_empty
    assert standard_group_of({"client", "mine"}) == "client"
    assert standard_group_of({"client", "archive"}) is None
    assert standard_group_of({"mine"}) is None
    assert STANDARD_GROUPS["archive"] == (
        "(not (copies=archive:1 or copies=smallarchive:1)) or approxlackingcopies=1"
    )


def evaluator(
    wanted: str,
    locations: frozenset[RepoUUID] = frozenset(),
    *,
    repos: tuple[Repository, ...] = (),
    **context: object,
) -> PreferredContent:
    table = {r.uuid: r for r in repos}
    table.setdefault(A, Repository(uuid=A))
    table[A] = Repository(
        uuid=A,
        trust=table[A].trust,
        groups=table[A].groups,
        maxsize=table[A].maxsize,
        wanted=wanted,
    )
    ctx = MatchContext(
        here=HERE,
        repositories=table,
        locations=lambda key: locations,
        **context,  # type: ignore[arg-type]
    )
    return PreferredContent(ctx)


@pytest.mark.parametrize(
    ("variety", "secure"),
    [
        ("SHA256E", True),
        ("BLAKE3_256", True),
        ("BLAKE2SP224", True),
        ("BLAKE2SP512", False),
        ("SKEIN512", True),
        ("SHA3_256", True),
        ("GITBUNDLE", True),
        ("GITMANIFEST", False),
        ("VURL", True),
        ("XXH3", False),
        ("SHA1E", False),
        ("MD5", False),
        ("WORM", False),
        ("XFOO", False),
    ],
)
def test_securehash(variety: str, secure: bool) -> None:
    key = Key.parse(f"{variety}-s10--abcdef")
    assert evaluator("securehash").want_get(A, key, "f") is secure


def test_copies_ignores_cluster_and_dead() -> None:
    repos = (Repository(uuid=C, trust=TrustLevel.DEAD),)
    ev = evaluator("copies=2", frozenset({B, C}), repos=repos, clusters={CLUSTER: frozenset({B})})
    assert not ev.want_get(A, KEY, "f")
    ev = evaluator("present", frozenset({B}), clusters={A: frozenset({B})})
    assert ev.want_get(A, KEY, "f")  # a cluster is present where one of its nodes is


def test_key_only_evaluation() -> None:
    assert evaluator("exclude=*").want_get(A, KEY)
    assert not evaluator("include=*").want_get(A, KEY)
    assert evaluator("unused", unused=lambda key: True).want_get(A, KEY)
    assert not evaluator("unused", unused=lambda key: True).want_get(A, KEY, "f")


def test_metadata_numeric_and_string_comparisons() -> None:
    meta = {"Year": {"2019"}, "tag": {"Done"}}
    assert evaluator("metadata=year>=2019", metadata=lambda k: meta).want_get(A, KEY, "f")
    assert evaluator("metadata=tag=done", metadata=lambda k: meta).want_get(A, KEY, "f")
    assert evaluator("metadata=tag>abc", metadata=lambda k: meta).want_get(A, KEY, "f") is False
    assert evaluator("metadata=tag<abc", metadata=lambda k: meta).want_get(A, KEY, "f")


def test_unstable_negation_disables_the_expression() -> None:
    ev = evaluator("include=* or not present")
    matcher = ev.preferred(A)
    assert matcher is not None
    assert not matcher.stable
    assert matcher.unstable_terms == ("present",)
    assert not ev.want_get(A, KEY, "f")
    assert ev.want_drop(A, KEY, "f")
    assert evaluator("not not present", frozenset({A})).want_get(A, KEY, "f")


def test_unparseable_expression_means_present() -> None:
    ev = evaluator("include=*.mp3 and frobnicate", frozenset({A}))
    matcher = ev.preferred(A)
    assert matcher is not None
    assert matcher.error == 'Parse failure: near "frobnicate"'
    assert ev.want_get(A, KEY, "x.txt")
    assert not ev.want_drop(A, KEY, "x.txt")


def test_not_configured_uses_the_default() -> None:
    ev = evaluator("")
    assert not ev.want_get(A, KEY, "f")
    assert ev.want_get(A, KEY, "f", default=True)
    assert ev.want_drop(A, KEY, "f")


def test_want_drop_keeps_content_wanted_by_another_file() -> None:
    ev = evaluator("include=*.mp3")
    assert ev.want_drop(A, KEY, "a.txt")
    assert not ev.want_drop(A, KEY, "a.txt", other_files=["b.mp3"])


def test_balanced_verdict_asks_for_a_reservation() -> None:
    repos = (Repository(uuid=A, groups=frozenset({"g"})),)
    ev = evaluator("balanced=g", repos=repos)
    verdict = ev.want_get_verdict(A, KEY, "f")
    assert verdict.wanted
    assert verdict.reserve
    assert not evaluator("anything").want_get_verdict(A, KEY, "f").reserve
