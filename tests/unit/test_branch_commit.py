"""Committing the journal, merging sibling refs and batch reads, on a repository built with
pygit2 only."""

from __future__ import annotations

import os
from pathlib import Path

import pygit2
import pytest

from annexproxy.branch.commit import commit_journal, merge_message, merge_siblings
from annexproxy.branch.configmemo import ConfigMemo
from annexproxy.branch.git_plumbing import BRANCH_REF, GitPlumbing
from annexproxy.branch.journal import Journal
from annexproxy.branch.logs.snapshot import BranchConfig
from annexproxy.branch.logs.trust import TrustLevel
from annexproxy.branch.paths import journal_name, location_log_path
from annexproxy.branch.view import BranchView, RecentSiblings, union_lines
from annexproxy.keys import Key

U = "2fe550a4-fab9-462f-8322-ece2616932ad"


@pytest.fixture
def plumbing(tmp_path: Path) -> GitPlumbing:
    repo = pygit2.init_repository(str(tmp_path / "r"), bare=True)
    repo.config["annex.uuid"] = U
    sig = pygit2.Signature("t", "t@t", 1700000000, 0)
    empty = repo.TreeBuilder().write()
    repo.create_commit(BRANCH_REF, sig, sig, "branch created", empty, [])
    (tmp_path / "r" / "annex").mkdir()
    return GitPlumbing(tmp_path / "r")


def add_commit(plumbing: GitPlumbing, ref: str, base: str, files: dict[str, bytes]) -> str:
    commit = plumbing.commit(plumbing.tree_with(base, files), [base], "x")
    assert plumbing.update_ref(ref, commit, plumbing.resolve_ref(ref))
    return commit


def test_union_lines_sorts_and_dedups() -> None:
    assert union_lines(b"b\na\n", b"a\nc") == b"a\nb\nc\n"


def test_commit_journal_and_cas(plumbing: GitPlumbing) -> None:
    journal = Journal(plumbing.annexdir, plumbing)
    root = plumbing.resolve_ref()
    assert root is not None
    journal.modify("e7d/d01/K.log", lambda _: b"1s 1 " + U.encode() + b"\n")
    journal.modify("proxy.log", lambda _: b"1s " + U.encode() + b" \n")
    result = commit_journal(plumbing, journal)
    assert result.commit is not None
    assert result.committed_files == ("e7d/d01/K.log", "proxy.log")
    assert journal.files() == {}
    assert plumbing.read_file_at(result.commit, "proxy.log") == b"1s " + U.encode() + b" \n"
    assert commit_journal(plumbing, journal).commit is None
    # compare-and-swap: a stale expected value changes nothing
    assert not plumbing.update_ref(BRANCH_REF, root, root)
    assert plumbing.resolve_ref() == result.commit


def test_merge_diverged_sibling(plumbing: GitPlumbing) -> None:
    journal = Journal(plumbing.annexdir, plumbing)
    root = plumbing.resolve_ref()
    assert root is not None
    ours = add_commit(plumbing, BRANCH_REF, root, {"group.log": b"b line\n", "a.log": b"x\n"})
    theirs = add_commit(
        plumbing, "refs/remotes/gw/git-annex", root, {"group.log": b"a line\n", "n.log": b"n\n"}
    )
    synced = add_commit(plumbing, "refs/heads/synced/git-annex", root, {"z.log": b"z\n"})
    journal.modify("j.log", lambda _: b"j\n")
    view = BranchView(plumbing, journal)
    assert view.read("group.log") == b"a line\nb line\n"  # union before any merge
    assert view.read("n.log") == b"n\n"
    result = merge_siblings(plumbing, journal)
    assert result.commit is not None
    assert result.merged_refs == ("refs/heads/synced/git-annex", "refs/remotes/gw/git-annex")
    repo = pygit2.Repository(str(plumbing.gitdir))
    commit = repo[pygit2.Oid(hex=result.commit)].peel(pygit2.Commit)
    assert [str(p) for p in commit.parent_ids] == [ours, synced, theirs]
    assert commit.message == merge_message(list(result.merged_refs)) + "\n"
    repo.free()
    assert commit.message == "merging synced/git-annex gw/git-annex into git-annex\n"
    for path, content in {
        "group.log": b"a line\nb line\n",
        "a.log": b"x\n",
        "n.log": b"n\n",
        "z.log": b"z\n",
        "j.log": b"j\n",
    }.items():
        assert plumbing.read_file_at(result.commit, path) == content
    assert journal.files() == {}
    assert merge_siblings(plumbing, journal).commit is None  # nothing left to merge


def test_fast_forward_when_journal_clean(plumbing: GitPlumbing) -> None:
    journal = Journal(plumbing.annexdir, plumbing)
    root = plumbing.resolve_ref()
    assert root is not None
    ahead = add_commit(plumbing, "refs/heads/synced/git-annex", root, {"x.log": b"x\n"})
    result = merge_siblings(plumbing, journal)
    assert result.fast_forward
    assert plumbing.resolve_ref() == ahead


def test_journal_listing_is_trusted_only_when_settled(plumbing: GitPlumbing) -> None:
    journal = Journal(plumbing.annexdir, plumbing)
    journal_dir = plumbing.annexdir / "journal"
    journal_dir.mkdir()
    (journal_dir / "uuid.log").write_bytes(b"1s " + U.encode() + b" a\n")
    old = 1_000_000_000
    os.utime(journal_dir, (old, old))
    assert journal.read_journal_only("uuid.log") is not None
    assert journal.read_journal_only("trust.log") is None  # answered from the listing
    # A new file changes the directory's mtime to now: the listing is not trusted.
    (journal_dir / "trust.log").write_bytes(b"1s " + U.encode() + b" 1\n")
    assert journal.read_journal_only("trust.log") == b"1s " + U.encode() + b" 1\n"
    # Settled again (old mtime, different from the cached one): listed afresh.
    os.utime(journal_dir, (old + 5, old + 5))
    assert journal.read_journal_only("trust.log") is not None
    (journal_dir / "trust.log").unlink()
    os.utime(journal_dir, (old + 9, old + 9))
    assert journal.read_journal_only("trust.log") is None


def test_commit_message_follows_annex_commitmessage(plumbing: GitPlumbing) -> None:
    plumbing.set_config("annex.commitmessage", "gateway sync")
    journal = Journal(plumbing.annexdir, plumbing)
    (plumbing.annexdir / "journal").mkdir()
    (plumbing.annexdir / "journal" / "uuid.log").write_bytes(b"1s " + U.encode() + b" gw\n")
    result = commit_journal(plumbing, journal)
    assert result.commit is not None
    repo = pygit2.Repository(str(plumbing.gitdir))
    assert repo[pygit2.Oid(hex=result.commit)].peel(pygit2.Commit).message.strip() == "gateway sync"


def test_recent_siblings_are_listed_again_after_a_second_or_a_new_tip(
    plumbing: GitPlumbing,
) -> None:
    journal = Journal(plumbing.annexdir, plumbing)
    root = plumbing.resolve_ref()
    assert root is not None
    now = [100.0]
    recent = RecentSiblings(max_age=1.0, clock=lambda: now[0])
    assert BranchView(plumbing, journal, recent_siblings=recent).unmerged == {}
    theirs = add_commit(plumbing, "refs/remotes/gw/git-annex", root, {"n.log": b"n\n"})
    now[0] += 0.5
    assert BranchView(plumbing, journal, recent_siblings=recent).unmerged == {}  # reused
    now[0] += 0.6
    view = BranchView(plumbing, journal, recent_siblings=recent)
    assert view.unmerged == {"refs/remotes/gw/git-annex": theirs}
    assert view.read("n.log") == b"n\n"
    add_commit(plumbing, "refs/remotes/gw2/git-annex", root, {"m.log": b"m\n"})
    add_commit(plumbing, BRANCH_REF, root, {"o.log": b"o\n"})  # a new tip: listed again
    assert len(BranchView(plumbing, journal, recent_siblings=recent).unmerged) == 2


def test_present_many_agrees_with_present(plumbing: GitPlumbing) -> None:
    """Batch reads list the journals once; each key's answer is the same as alone."""
    other = "5a1b2c3d-0000-4000-8000-000000000001"
    keys = [Key.parse(f"SHA256E-s{i}--{i:064x}") for i in range(1, 7)]
    paths = [location_log_path(k) for k in keys]
    root = plumbing.resolve_ref()
    assert root is not None
    add_commit(
        plumbing,
        BRANCH_REF,
        root,
        {paths[i]: b"1700000000s 1 " + U.encode() + b"\n" for i in range(4)},
    )
    journal = Journal(plumbing.annexdir, plumbing)
    # keys[1]: dropped since, in the journal; keys[4]: only in the journal; keys[2]: a
    # private journal line; keys[5] and keys[3] are nowhere but the branch, or nowhere.
    journal.modify(paths[1], lambda _: b"1700000001s 0 " + U.encode() + b"\n")
    journal.modify(paths[4], lambda _: b"1700000001s 1 " + other.encode() + b"\n")
    private_dir = plumbing.annexdir / "journal-private"
    private_dir.mkdir()
    (private_dir / journal_name(paths[2])).write_bytes(b"1700000002s 1 " + other.encode() + b"\n")

    def agree() -> dict[Key, list[str]]:
        view = BranchView(plumbing, journal)
        config = view.config()
        alone = {k: view.present(k, config) for k in keys}
        assert view.present_many(reversed(keys), config) == alone
        return alone

    racy = agree()  # the journals just changed: their listings are not trusted yet
    old = 1_000_000_000
    for directory in (plumbing.annexdir / "journal", private_dir):
        os.utime(directory, (old, old))
    assert journal.names_if_stable() is not None
    settled = agree()
    assert racy == settled
    assert settled[keys[0]] == [U]
    assert settled[keys[1]] == []
    assert sorted(settled[keys[2]]) == sorted([U, other])
    assert settled[keys[3]] == [U]
    assert settled[keys[4]] == [other]
    assert settled[keys[5]] == []


def test_config_memo_follows_the_tip_the_journal_and_siblings(plumbing: GitPlumbing) -> None:
    """The memo hands out the same configuration until one of its files changes anywhere."""
    journal = Journal(plumbing.annexdir, plumbing)
    memo = ConfigMemo()
    root = plumbing.resolve_ref()
    assert root is not None
    line = U.encode() + b" mine timestamp=1700000000s\n"

    def config() -> BranchConfig:
        got = BranchView(plumbing, journal, config_memo=memo).config()
        assert got == BranchView(plumbing, journal).config()  # as without a memo
        return got

    first = config()
    assert config() is first  # nothing changed: not parsed again
    add_commit(plumbing, BRANCH_REF, root, {"group.log": line})  # a new tip
    second = config()
    assert second.groups == {U: frozenset({"mine"})}
    tip = plumbing.resolve_ref()
    assert tip is not None
    add_commit(plumbing, BRANCH_REF, tip, {"a.log": b"x\n"})  # a new tip, same config
    assert config() is second
    journal.modify("trust.log", lambda _: U.encode() + b" 0 timestamp=1700000001s\n")
    third = config()
    assert third.trust_of(U) is TrustLevel.UNTRUSTED
    assert config() is third
    tip = plumbing.resolve_ref()
    assert tip is not None
    other = U.encode() + b" theirs timestamp=1700000002s\n"
    add_commit(plumbing, "refs/remotes/gw/git-annex", tip, {"group.log": other})
    assert config().groups == {U: frozenset({"theirs"})}  # a sibling's newer line


def test_config_memo_sees_journal_changes_by_others_within_its_max_age(
    plumbing: GitPlumbing,
) -> None:
    """A configuration log changed in the journal by another process (git-annex by hand)
    shows once the memo's max_age passed; one this process writes shows at once."""
    journal = Journal(plumbing.annexdir, plumbing)
    now = [1000.0]
    memo = ConfigMemo(max_age=1.0, clock=lambda: now[0])

    def config() -> BranchConfig:
        return BranchView(plumbing, journal, config_memo=memo).config()

    first = config()
    assert first.trust_of(U) is TrustLevel.SEMITRUSTED
    journal_dir = plumbing.annexdir / "journal"
    journal_dir.mkdir(exist_ok=True)
    (journal_dir / "trust.log").write_bytes(U.encode() + b" 0 timestamp=1700000001s\n")
    now[0] += 0.5
    assert config() is first  # within max_age: not looked at again
    now[0] += 0.6
    assert config().trust_of(U) is TrustLevel.UNTRUSTED
    # Our own write of a top-level log counts at once, whatever the clock says.
    journal.modify("trust.log", lambda _: U.encode() + b" X timestamp=1700000002s\n")
    assert config().trust_of(U) is TrustLevel.DEAD
    # Per-key logs do not make it read the configuration again.
    written = journal.top_level_writes
    journal.record_presence(Key.parse("SHA256E-s1--" + "a" * 64), U, True)
    assert journal.top_level_writes == written
