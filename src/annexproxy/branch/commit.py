"""Committing the journal to ``refs/heads/git-annex`` and merging sibling refs into it.

Owns the write side of branch.md 12 and 13 (procedure A followed by our own commit),
always inside one hold of ``journal.lck`` - the lock every git-annex process holds while
it changes ``refs/heads/git-annex`` - so git-annex's own commits and ours never
interleave:

* `commit_journal`: tree = branch tree + every journal file (journal wins per file);
  one-parent commit with message ``update``; compare-and-swap of the ref (a ``git push``
  into the repository takes no journal lock, so the swap can fail: we then rebuild on
  the new tip, a bounded number of times); then delete exactly the journal files that
  were committed.
* `merge_siblings`: like git-annex's branch update: the journal is staged, every
  sibling ref the branch does not contain is union-merged file by file (branch.md 12:
  paths only one side has are taken, both sides' lines are sorted and de-duplicated,
  deletions never propagate), and a commit with message
  ``merging <ref> <ref>... into git-annex`` gets the old tip first and then each merged
  ref as parents. When the journal is empty and one ref already contains the branch,
  the ref is fast-forwarded instead.

Never deleted: lines, files, history. Never touched: git-annex's ``annex/index`` and
``index.lck`` (git-annex notices the branch moved and re-syncs its index itself,
branch.md 13 example 09 F), ``mergedrefs``. No git subprocess is run: everything goes
through `GitPlumbing` in-process.
"""

from __future__ import annotations

from dataclasses import dataclass

from annexproxy.branch.git_plumbing import BRANCH_REF, GitPlumbing
from annexproxy.branch.journal import Journal
from annexproxy.branch.paths import branch_path
from annexproxy.branch.view import union_lines, unmerged_siblings
from annexproxy.errors import RepositoryError

#: How often a commit is rebuilt when a push moves the branch under us.
MAX_ATTEMPTS = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitResult:
    """What `commit_journal` or `merge_siblings` did."""

    commit: str | None  # the new branch tip, or None when the branch was not moved
    committed_files: tuple[str, ...] = ()  # branch paths taken from the journal
    merged_refs: tuple[str, ...] = ()  # sibling ref names merged
    fast_forward: bool = False


def describe_ref(name: str) -> str:
    """A ref as git-annex names it in merge messages (``node1/git-annex``)."""
    for prefix in ("refs/heads/", "refs/remotes/"):
        if name.startswith(prefix):
            return name.removeprefix(prefix)
    return name.removeprefix("refs/")


def merge_message(ref_names: list[str]) -> str:
    """The subject git-annex gives a merge commit (branch.md 1)."""
    return "merging " + " ".join(describe_ref(n) for n in ref_names) + " into git-annex"


def commit_journal(
    plumbing: GitPlumbing, journal: Journal, message: str | None = None
) -> CommitResult:
    """Commit every journal file to ``refs/heads/git-annex`` (branch.md 13 A, example 09 F).

    Args:
        plumbing: the open repository.
        journal: its journal.
        message: the commit message; by default ``annex.commitmessage``, else
            git-annex's ``update``.

    Returns:
        The new tip and the committed paths; ``commit`` None when the journal was empty
        or changed nothing.

    Raises:
        RepositoryError: there is no git-annex branch (run ``git annex init``), the
            branch kept moving, or git failed.
    """
    with journal.locked():
        return _commit_locked(plumbing, journal, message or journal.settings.commit_message)


def _commit_locked(plumbing: GitPlumbing, journal: Journal, message: str) -> CommitResult:
    staged = journal.files()
    if not staged:
        return CommitResult(commit=None)
    files = {branch_path(name): content for name, content in staged.items()}
    for _ in range(MAX_ATTEMPTS):
        old = _require_tip(plumbing)
        new = plumbing.commit_files(old, files, message)
        if new is None:
            journal.discard(list(staged))
            return CommitResult(commit=None, committed_files=tuple(sorted(files)))
        if plumbing.update_ref(BRANCH_REF, new, old):
            journal.discard(list(staged))
            return CommitResult(commit=new, committed_files=tuple(sorted(files)))
    raise RepositoryError(f"{BRANCH_REF} kept moving while committing the journal; try again")


def _require_tip(plumbing: GitPlumbing) -> str:
    tip = plumbing.resolve_ref(BRANCH_REF)
    if tip is None:
        raise RepositoryError(
            f"{plumbing.gitdir} has no git-annex branch: run `git annex init` there first"
        )
    return tip


def merge_siblings(plumbing: GitPlumbing, journal: Journal) -> CommitResult:
    """Merge unmerged sibling ``*/git-annex`` refs and the journal into the branch.

    This is what git-annex does before it reads the branch (branch.md 12 steps 1-3);
    with no sibling to merge it is `commit_journal`.

    Returns:
        The new tip, the committed journal paths and the merged refs.

    Raises:
        RepositoryError: there is no git-annex branch, the branch kept moving, or git
            failed.
    """
    with journal.locked():
        for _ in range(MAX_ATTEMPTS):
            old = _require_tip(plumbing)
            refs = unmerged_siblings(plumbing, old)
            if not refs:
                return _commit_locked(plumbing, journal, journal.settings.commit_message)
            result = _merge_once(plumbing, journal, old, refs)
            if result is not None:
                return result
    raise RepositoryError(f"{BRANCH_REF} kept moving while merging; try again")


def _merge_once(
    plumbing: GitPlumbing, journal: Journal, old: str, refs: dict[str, str]
) -> CommitResult | None:
    staged = journal.files()
    names = list(refs)
    if not staged and len(refs) == 1:
        (ref_commit,) = refs.values()
        if plumbing.is_ancestor(old, ref_commit):
            if not plumbing.update_ref(BRANCH_REF, ref_commit, old):
                return None
            return CommitResult(commit=ref_commit, merged_refs=tuple(names), fast_forward=True)
    files = {branch_path(name): content for name, content in staged.items()}
    base = plumbing.tree_with(old, files) if files else plumbing.tree_of(old)
    changes: dict[str, bytes] = dict(files)
    for commit in refs.values():
        for path in plumbing.changed_files(base, commit):
            theirs = plumbing.read_file_at(commit, path) or b""
            ours = changes.get(path)
            if ours is None:
                ours = plumbing.read_file_at(old, path)
            changes[path] = theirs if ours is None else union_lines(ours, theirs)
    tree = plumbing.tree_with(old, changes)
    new = plumbing.commit(tree, [old, *refs.values()], merge_message(names))
    if not plumbing.update_ref(BRANCH_REF, new, old):
        return None
    journal.discard(list(staged))
    return CommitResult(commit=new, committed_files=tuple(sorted(files)), merged_refs=tuple(names))
