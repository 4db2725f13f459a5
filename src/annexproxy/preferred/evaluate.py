"""want-get, want-drop and required content for any repository (sections 10-12).

`PreferredContent` takes a `MatchContext`, parses each distinct expression once, compiles
each repository's matcher once (``standard``/``groupwanted`` expanded for it, required
content OR-ed in, unparseable expressions replaced by ``present``), runs git-annex's
static check for unstable negations, and then answers questions with closures. It keeps
only caches derived from the frozen context: build a new one when the branch changes
(sizes are read live through the context's `SizeSource`). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from annexproxy.errors import ExpressionSyntaxError
from annexproxy.keys import Key
from annexproxy.preferred.context import MatchContext
from annexproxy.preferred.parser import (
    ANY,
    Expression,
    MAnd,
    MAny,
    Matcher,
    MNot,
    MOp,
    MOr,
    parse_expression,
)
from annexproxy.preferred.standard import STANDARD_GROUPS, standard_group_of
from annexproxy.preferred.termeval import (
    CompiledTerm,
    Indexes,
    Predicate,
    Question,
    compile_term,
    is_negation_unstable,
    present_predicate,
)
from annexproxy.preferred.terms import Keyword
from annexproxy.uuids import RepoUUID


@dataclass(frozen=True, slots=True)
class Verdict:
    """An answer, and whether a balanced term picked the repository.

    When ``wanted`` and ``reserve`` are both true, git-annex registers a live size change
    for the receiving repository (preferred-content.md 13.8): reserve space with
    `annexproxy.space.RepoSizeTracker.reserve` before transferring.
    """

    wanted: bool
    reserve: bool = False


@dataclass(frozen=True, slots=True)
class RepoMatcher:
    """The compiled preferred (or required) content of one repository.

    Attributes:
        configured: False when there is no expression or it is empty (callers' default).
        stable: False when a negated term is unstable: every evaluation is then false.
        error: the parse error when the expression was replaced by ``present``.
        unstable_terms: the negated unstable term words (for explanations).
    """

    configured: bool
    stable: bool
    predicate: Predicate
    error: str | None = None
    unstable_terms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Built:
    matcher: Matcher
    ops: dict[int, CompiledTerm]  # id(MOp) -> compiled


def _not_configured(question: Question) -> bool:
    del question
    return False


class PreferredContent:
    """Evaluate preferred and required content against one `MatchContext`."""

    def __init__(self, context: MatchContext) -> None:
        self.context = context
        self._indexes = Indexes(context)
        self._parsed: dict[str, Expression | ExpressionSyntaxError] = {}
        self._preferred: dict[RepoUUID, RepoMatcher | None] = {}
        self._required: dict[RepoUUID, RepoMatcher | None] = {}
        self._group_wanted = {g: e for g, e in context.group_wanted.items() if e != ""}

    # --- building ------------------------------------------------------------------

    def parse(self, source: str) -> Expression:
        """Parse an expression (cached per distinct text).

        Raises:
            ExpressionSyntaxError: the expression does not parse.
        """
        result = self._parsed.get(source)
        if result is None:
            try:
                result = parse_expression(source)
            except ExpressionSyntaxError as exc:
                result = exc
            self._parsed[source] = result
        if isinstance(result, ExpressionSyntaxError):
            raise result
        return result

    def _build(self, source: str, repo: RepoUUID, standard: bool, groupwanted: bool) -> _Built:
        """MakeMatcher's ``go``: parse and compile for ``repo`` with expansion flags."""
        matcher = self.parse(source).matcher
        ops: dict[int, CompiledTerm] = {}
        for op in _walk_ops(matcher):
            ops[id(op)] = self._compile_op(op, repo, standard, groupwanted)
        return _Built(matcher, ops)

    def _compile_op(
        self, op: MOp, repo: RepoUUID, standard: bool, groupwanted: bool
    ) -> CompiledTerm:
        term = op.term
        if isinstance(term, Keyword) and term.text in ("standard", "groupwanted"):
            expansion = self._expansion(term.text, repo, standard, groupwanted)
            if expansion is None:  # git-annex's unknownMatcher: present
                return CompiledTerm(present_predicate(repo, self._indexes), unstable=True)
            predicate = _to_predicate(expansion.matcher, expansion.ops)
            unstable = any(c.unstable for c in expansion.ops.values())
            return CompiledTerm(predicate, unstable)
        return CompiledTerm(compile_term(term, repo, self._indexes), is_negation_unstable(term))

    def _expansion(
        self, name: str, repo: RepoUUID, standard: bool, groupwanted: bool
    ) -> _Built | None:
        info = self.context.repositories.get(repo)
        groups = info.groups if info is not None else frozenset()
        if name == "standard":
            group = standard_group_of(groups) if standard else None
            if group is None:
                return None
            return self._build(STANDARD_GROUPS[group], repo, False, False)
        if not groupwanted:
            return None
        found = [e for g, e in self._group_wanted.items() if g in groups]
        if len(found) != 1:
            return None
        return self._build(found[0], repo, True, False)

    def _repo_matcher(self, repo: RepoUUID, sources: Iterable[str | None]) -> RepoMatcher | None:
        built: list[_Built] = []
        errors: list[str] = []
        present = [s for s in sources if s is not None]
        if not present:
            return None
        for source in present:
            try:
                built.append(self._build(source, repo, True, True))
            except ExpressionSyntaxError as exc:
                errors.append(str(exc.args[0]))
        if errors:
            fallback = present_predicate(repo, self._indexes)
            return RepoMatcher(True, True, fallback, error=" ".join(errors))
        matcher: Matcher = ANY
        ops: dict[int, CompiledTerm] = {}
        for item in built:
            ops.update(item.ops)
            # combineMatchers: an empty side yields the other one.
            if isinstance(matcher, MAny):
                matcher = item.matcher
            elif not isinstance(item.matcher, MAny):
                matcher = MOr(matcher, item.matcher)
        if isinstance(matcher, MAny):
            return RepoMatcher(False, True, _not_configured)
        unstable = tuple(op.term.text for op in _negated_ops(matcher) if ops[id(op)].unstable)
        predicate = _to_predicate(matcher, ops)
        return RepoMatcher(True, not unstable, predicate, unstable_terms=unstable)

    def preferred(self, repo: RepoUUID) -> RepoMatcher | None:
        """The effective preferred content of ``repo`` (None: no expression logged)."""
        if repo not in self._preferred:
            info = self.context.repositories.get(repo)
            sources = (info.wanted, info.required) if info is not None else ()
            self._preferred[repo] = self._repo_matcher(repo, sources)
        return self._preferred[repo]

    def required(self, repo: RepoUUID) -> RepoMatcher | None:
        """The required content of ``repo`` (None: no expression logged)."""
        if repo not in self._required:
            info = self.context.repositories.get(repo)
            sources = (info.required,) if info is not None else ()
            self._required[repo] = self._repo_matcher(repo, sources)
        return self._required[repo]

    # --- questions -------------------------------------------------------------------

    def _check(
        self,
        matcher: RepoMatcher | None,
        key: Key,
        file: str | None,
        not_present: frozenset[RepoUUID],
        default: bool,
    ) -> Verdict:
        if matcher is None or not matcher.configured:
            return Verdict(default)
        if not matcher.stable:  # section 12: the expression is not used at all
            return Verdict(False)
        question = Question(self._indexes, key, file, not_present)
        wanted = matcher.predicate(question)
        return Verdict(wanted, reserve=wanted and question.picked)

    def want_get_verdict(
        self, repo: RepoUUID, key: Key, file: str | None = None, *, default: bool = False
    ) -> Verdict:
        """Whether ``repo`` wants ``key`` (for ``file``; None: key-only), section 11.1.

        Args:
            repo: the evaluating repository.
            key: the key.
            file: the associated file relative to the top of the work tree, or None.
            default: the answer when ``repo`` has no preferred content (``find`` and
                ``copy --auto`` use False; ``sync --content`` uses True).

        Returns:
            The answer and whether a balanced term picked ``repo`` (reserve space).
        """
        return self._check(self.preferred(repo), key, file, frozenset(), default)

    def want_get(
        self, repo: RepoUUID, key: Key, file: str | None = None, *, default: bool = False
    ) -> bool:
        """`want_get_verdict` without the reservation flag."""
        return self.want_get_verdict(repo, key, file, default=default).wanted

    def want_drop(
        self,
        repo: RepoUUID,
        key: Key,
        file: str | None = None,
        *,
        other_files: Iterable[str] = (),
        default: bool = False,
    ) -> bool:
        """Whether ``repo`` may drop ``key`` as far as preferred content goes (11.2).

        Evaluates with NP = {repo}; the content is kept when ``file`` or any of
        ``other_files`` (other files using the same key) is wanted. Numcopies safety is
        the caller's business.
        """
        matcher = self.preferred(repo)
        np = frozenset((repo,))
        for candidate in (file, *other_files) if other_files else (file,):
            if self._check(matcher, key, candidate, np, default).wanted:
                return False
        return True

    def is_required(
        self, repo: RepoUUID, key: Key, file: str | None = None, *, assume_dropped: bool = False
    ) -> bool:
        """Whether ``key`` is required content of ``repo`` (NP = {repo} if assume_dropped)."""
        np = frozenset((repo,)) if assume_dropped else frozenset()
        return self._check(self.required(repo), key, file, np, False).wanted


def _walk_ops(matcher: Matcher) -> Iterable[MOp]:
    stack = [matcher]
    while stack:
        node = stack.pop()
        if isinstance(node, MOp):
            yield node
        elif isinstance(node, MAnd | MOr):
            stack.extend((node.right, node.left))
        elif isinstance(node, MNot):
            stack.append(node.inner)


def _negated_ops(matcher: Matcher) -> list[MOp]:
    """``findNegated``: operations under an odd number of ``not``."""
    found: list[MOp] = []
    stack: list[tuple[Matcher, bool]] = [(matcher, False)]
    while stack:
        node, negated = stack.pop()
        if isinstance(node, MOp):
            if negated:
                found.append(node)
        elif isinstance(node, MAnd | MOr):
            stack.extend(((node.right, negated), (node.left, negated)))
        elif isinstance(node, MNot):
            stack.append((node.inner, not negated))
    return found


def _to_predicate(matcher: Matcher, ops: dict[int, CompiledTerm]) -> Predicate:
    """Compile a tree into nested short-circuit closures (left operand first)."""
    if isinstance(matcher, MOp):
        return ops[id(matcher)].predicate
    if isinstance(matcher, MAnd):
        left, right = _to_predicate(matcher.left, ops), _to_predicate(matcher.right, ops)
        return lambda q: left(q) and right(q)
    if isinstance(matcher, MOr):
        left, right = _to_predicate(matcher.left, ops), _to_predicate(matcher.right, ops)
        return lambda q: left(q) or right(q)
    if isinstance(matcher, MNot):
        inner = _to_predicate(matcher.inner, ops)
        return lambda q: not inner(q)
    return lambda q: True
