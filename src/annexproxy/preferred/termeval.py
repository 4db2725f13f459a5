"""How each term is evaluated (section 4), compiled once into a predicate per repository.

`Indexes` holds what every evaluation derives from the `MatchContext` (trust sets, group
members, pickers, maxsizes, cluster membership); `Question` is one (key, file, assumed
not present) question with its location sets computed lazily and shared by all terms.
`compile_term` turns a term into a ``Question -> bool`` closure for one evaluating
repository. ``standard`` and ``groupwanted`` are expanded by the caller
(`annexproxy.preferred.evaluate`). Pure: no I/O.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Collection
from dataclasses import dataclass

from annexproxy.keys import Key
from annexproxy.preferred.balanced import GroupPicker, SpaceView, choose_candidates, is_picked
from annexproxy.preferred.context import MatchContext
from annexproxy.preferred.glob import compile_glob
from annexproxy.preferred.terms import (
    Balanced,
    Copies,
    GroupTerm,
    InBackend,
    Include,
    Keyword,
    LackingCopies,
    MetaData,
    SizeLimit,
    Term,
    TrustLevel,
    Url,
)
from annexproxy.space.numbers import read_double_exact
from annexproxy.uuids import RepoUUID, is_cluster_uuid

Predicate = Callable[["Question"], bool]

# Backend.Hash.cryptographicallySecure, plus GITBUNDLE (sha256) and BLAKE3 in the binary.
_SECURE = frozenset(
    [f"SHA{n}" for n in (256, 512, 224, 384)]
    + [f"SHA3_{n}" for n in (256, 512, 224, 384)]
    + [f"SKEIN{n}" for n in (256, 512)]
    + [f"BLAKE2B{n}" for n in (256, 512, 160, 224, 384)]
    + ["BLAKE2BP512"]
    + [f"BLAKE2S{n}" for n in (256, 160, 224)]
    + [f"BLAKE2SP{n}" for n in (256, 224)]
    + ["BLAKE3_256"]
)
_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def configured_copies(value: int | None) -> int:
    """Numcopies as git-annex configures it: unset -> 1, values below 1 -> 1."""
    return 1 if value is None or value < 1 else value


class Indexes:
    """Context-derived lookups shared by all evaluations (built once, O(repositories))."""

    def __init__(self, context: MatchContext) -> None:
        self.context = context
        repos = context.repositories
        self.trust: dict[RepoUUID, TrustLevel] = {u: r.trust for u, r in repos.items()}
        self.dead = frozenset(u for u, t in self.trust.items() if t is TrustLevel.DEAD)
        self.untrusted = frozenset(u for u, t in self.trust.items() if t is TrustLevel.UNTRUSTED)
        members: dict[str, set[RepoUUID]] = {}
        for uuid, repo in repos.items():
            for group in repo.groups:
                members.setdefault(group, set()).add(uuid)
        self.members = {g: frozenset(m) for g, m in members.items()}
        self.pickers = {g: GroupPicker.for_members(m) for g, m in self.members.items()}
        self.maxsize = {u: r.maxsize for u, r in repos.items() if r.maxsize is not None}
        node_clusters: dict[RepoUUID, list[RepoUUID]] = {}
        for cluster, nodes in context.clusters.items():
            for node in nodes:
                node_clusters.setdefault(node, []).append(cluster)
        self.node_clusters = {n: tuple(c) for n, c in node_clusters.items()}
        self.numcopies = configured_copies(context.numcopies)

    def trust_of(self, uuid: RepoUUID) -> TrustLevel:
        """Trust level of a repository (semitrusted when unknown)."""
        return self.trust.get(uuid, TrustLevel.SEMITRUSTED)


class Question:
    """One evaluation: key, file (None: key only), assumed-not-present set (NP)."""

    __slots__ = ("_live", "_raw", "file", "indexes", "key", "not_present", "picked")

    def __init__(
        self, indexes: Indexes, key: Key, file: str | None, not_present: frozenset[RepoUUID]
    ) -> None:
        self.indexes = indexes
        self.key = key
        self.file = file
        self.not_present = not_present
        self.picked = False  # a balanced term chose the repository (live size update)
        self._raw: frozenset[RepoUUID] | None = None
        self._live: frozenset[RepoUUID] | None = None

    def raw_locations(self) -> frozenset[RepoUUID]:
        """loggedLocations: the location log plus clusters of nodes that have the key."""
        if self._raw is None:
            locs = set(self.indexes.context.locations(self.key))
            clusters = self.indexes.node_clusters
            if clusters:
                for node in list(locs):
                    locs.update(clusters.get(node, ()))
            self._raw = frozenset(locs)
        return self._raw

    def key_locations(self) -> frozenset[RepoUUID]:
        """keyLocations: raw locations without dead repositories."""
        if self._live is None:
            raw = self.raw_locations()
            dead = self.indexes.dead
            self._live = raw - dead if dead and not raw.isdisjoint(dead) else raw
        return self._live

    def numcopies(self, *, approx: bool) -> int:
        """Numcopies for this file (gitattributes first) or the global value."""
        if not approx and self.file is not None:
            attr = self.indexes.context.numcopies_attr(self.file)
            if attr is not None:
                return configured_copies(attr)
        return self.indexes.numcopies

    def lacking(self, *, approx: bool, exclude: Collection[RepoUUID] = ()) -> int:
        """Numcopies minus non-untrusted, non-cluster copies not in NP (nor in exclude)."""
        untrusted = self.indexes.untrusted
        have = sum(
            1
            for u in self.key_locations()
            if u not in self.not_present
            and u not in untrusted
            and u not in exclude
            and not is_cluster_uuid(u)
        )
        return self.numcopies(approx=approx) - have


def present_predicate(repo: RepoUUID, indexes: Indexes) -> Predicate:
    """``present`` for ``repo``: local content for *here*, else the location log (4.12)."""
    here_has = indexes.context.here_has
    if repo == indexes.context.here and here_has is not None:
        return lambda q: here_has(q.key)
    return lambda q: repo in q.key_locations()


def _take_directory(path: str) -> str:
    # System.FilePath.Posix.takeDirectory
    cut = path.rfind("/")
    folder = path[: cut + 1] if cut >= 0 else "./"
    if folder and not folder.strip("/"):
        return folder  # a drive: only slashes
    stripped = folder.rstrip("/")
    return stripped or folder


def _split_path(path: str) -> list[str]:
    # System.FilePath.Posix.splitPath: components keep their trailing slashes.
    lead = len(path) - len(path.lstrip("/"))
    parts = [path[:lead]] if lead else []
    rest = path[lead:]
    while rest:
        cut = rest.find("/")
        if cut < 0:
            parts.append(rest)
            break
        end = cut
        while end < len(rest) and rest[end] == "/":
            end += 1
        parts.append(rest[:end])
        rest = rest[end:]
    return parts


def in_directory(path: str, directory: str) -> bool:
    """``limitInDir``: ``directory`` is a component of takeDirectory(path) (4.13)."""
    return directory in _split_path(_take_directory(path))


def _is_secure(key: Key, indexes: Indexes) -> bool:
    if key.variety == "GITBUNDLE":
        return True
    base = key.variety[:-1] if key.variety.endswith("E") else key.variety
    if key.variety != "VURL":
        return base in _SECURE
    equivalents = [k for k in indexes.context.equivalent_keys(key) if k.variety != "VURL"]
    return all(_is_secure(k, indexes) for k in equivalents)


def _keyword(term: Keyword, repo: RepoUUID, indexes: Indexes) -> Predicate:
    name = term.text
    if name == "anything":
        return lambda q: True
    if name == "nothing":
        return lambda q: False
    if name == "present":
        return present_predicate(repo, indexes)
    if name == "securehash":
        return lambda q: _is_secure(q.key, indexes)
    if name == "inpreferreddir":
        info = indexes.context.repositories.get(repo)
        folder = info.preferreddir if info and info.preferreddir is not None else "public"
        return lambda q: q.file is not None and in_directory(q.file, folder)
    if name == "unused":
        unused = indexes.context.unused
        return lambda q: q.file is None and unused(q.key)
    raise AssertionError(f"{name} is expanded by the evaluator")


def copies_predicate(term: Copies, indexes: Indexes) -> Predicate:
    """``copies=...`` (4.4): counted copies not in NP reach the number."""
    want = term.count
    if term.group is not None:
        group = indexes.members.get(term.group, frozenset())

        def good(u: RepoUUID) -> bool:
            return u in group
    elif term.trust is not None:
        level, at_least = term.trust, term.at_least

        def good(u: RepoUUID) -> bool:
            trust = indexes.trust_of(u)
            return trust >= level if at_least else trust == level
    else:

        def good(u: RepoUUID) -> bool:
            return True

    def check(q: Question) -> bool:
        count = sum(
            1
            for u in q.key_locations()
            if u not in q.not_present and not is_cluster_uuid(u) and good(u)
        )
        return count >= want

    return check


def lacking_predicate(term: LackingCopies) -> Predicate:
    """``lackingcopies=N`` / ``approxlackingcopies=N`` (4.5)."""
    return lambda q: q.lacking(approx=term.approx) >= term.needed


def _group_term(term: GroupTerm, indexes: Indexes) -> Predicate:
    want = indexes.members.get(term.group, frozenset())
    if term.all_members:
        if not want:
            return lambda q: True
        return lambda q: want.isdisjoint(q.not_present) and want <= q.key_locations()
    if not want:
        return lambda q: False

    def only_in(q: Question) -> bool:
        present = q.key_locations() - q.not_present
        return not present.isdisjoint(want) and present <= want

    return only_in


def _metadata(term: MetaData, indexes: Indexes) -> Predicate:
    folded = term.field.casefold()
    source = indexes.context.metadata
    if term.op == "=":
        glob = compile_glob(term.value, case_sensitive=False, file_path=False)

        def satisfied(value: str) -> bool:
            return glob.matches(value)
    else:
        compare = _COMPARE[term.op]
        bound, number = term.value, read_double_exact(term.value)

        def satisfied(value: str) -> bool:
            parsed = read_double_exact(value)
            if number is not None and parsed is not None:
                return bool(compare(parsed, number))
            return bool(compare(value, bound))

    def check(q: Question) -> bool:
        for name, values in source(q.key).items():
            if name.casefold() == folded and any(satisfied(v) for v in values):
                return True
        return False

    return check


def strip_downloader(url: str) -> str:
    """``getDownloader``: drop a ``yt:``, ``quvi:`` or empty prefix before the first colon."""
    head, _, tail = url.partition(":")
    return tail if head in ("yt", "quvi", "") else url


def _url(term: Url, indexes: Indexes) -> Predicate:
    glob = compile_glob(term.glob, case_sensitive=True, file_path=False)
    urls = indexes.context.urls
    return lambda q: any(glob.matches(strip_downloader(u)) for u in urls(q.key))


def _fully_balanced(term: Balanced, repo: RepoUUID, indexes: Indexes) -> Predicate:
    members = indexes.members.get(term.group, frozenset())
    picker = indexes.pickers.get(term.group)
    if picker is None or repo not in members:
        return lambda q: False
    ctx = indexes.context
    ordered = picker.members

    def check(q: Question) -> bool:
        count = q.lacking(approx=False, exclude=members) if term.count is None else term.count
        raw = q.raw_locations()
        view = SpaceView(
            size_of=ctx.sizes.size_of,
            maxsize_of=indexes.maxsize.get,
            key_size=q.key.size or 0,
            in_repo=raw.__contains__,
        )
        candidates = choose_candidates(
            ordered,
            view,
            count,
            by_size=term.by_size,
            rebalance=ctx.rebalance,
            threshold_percent=ctx.fully_balanced_threshold,
        )
        wanted = is_picked(picker, candidates, str(q.key), count, repo)
        if wanted:
            q.picked = True
        return wanted

    return check


def _balanced(term: Balanced, repo: RepoUUID, indexes: Indexes) -> Predicate:
    fully = _fully_balanced(term, repo, indexes)
    if term.fully or indexes.context.rebalance:
        return fully
    present = present_predicate(repo, indexes)
    if term.copies is None:
        lacking = lacking_predicate(LackingCopies(term.text, 1, approx=False))
        return lambda q: present(q) or (lacking(q) and fully(q))
    copies = copies_predicate(term.copies, indexes)
    return lambda q: present(q) or (not copies(q) and fully(q))


def compile_term(term: Term, repo: RepoUUID, indexes: Indexes) -> Predicate:
    """The predicate of one term for evaluating repository ``repo``."""
    if isinstance(term, Keyword):
        return _keyword(term, repo, indexes)
    if isinstance(term, Include):
        glob = compile_glob(term.glob, case_sensitive=True, file_path=True)
        if glob.error is not None:
            return lambda q: False  # git-annex errors out (or hangs); never a match
        if term.negate:
            return lambda q: q.file is None or not glob.matches(q.file)
        return lambda q: q.file is not None and glob.matches(q.file)
    if isinstance(term, SizeLimit):
        limit, larger = term.size, term.larger
        return lambda q: (
            (q.key.size is not None and (q.key.size > limit if larger else q.key.size < limit))
            or (q.key.size is None and not larger)
        )
    if isinstance(term, Copies):
        return copies_predicate(term, indexes)
    if isinstance(term, LackingCopies):
        return lacking_predicate(term)
    if isinstance(term, InBackend):
        return lambda q: q.key.variety == term.name
    if isinstance(term, GroupTerm):
        return _group_term(term, indexes)
    if isinstance(term, MetaData):
        return _metadata(term, indexes)
    if isinstance(term, Url):
        return _url(term, indexes)
    return _balanced(term, repo, indexes)


def is_negation_unstable(term: Term) -> bool:
    """Terms that can flip as a result of acting on them (section 12), before expansion."""
    if isinstance(term, Keyword):
        return term.text == "present"
    return isinstance(term, Balanced) and not term.fully


@dataclass(frozen=True, slots=True)
class CompiledTerm:
    """A compiled operation: predicate and negation-instability (expansions included)."""

    predicate: Predicate
    unstable: bool
