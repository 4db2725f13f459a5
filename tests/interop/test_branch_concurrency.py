"""annexproxy and git-annex changing the same logs of one repository at the same time."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from annexproxy.branch.commit import commit_journal
from annexproxy.branch.git_plumbing import GitPlumbing
from annexproxy.branch.journal import Journal
from annexproxy.branch.logs import groups, maxsize
from annexproxy.branch.logs.presence import present_infos
from annexproxy.branch.logs.timestamps import Timestamp
from annexproxy.branch.paths import location_log_path
from annexproxy.branch.view import BranchView
from annexproxy.keys import Key
from annexproxy.testing.realannex import AnnexRepo

pytestmark = pytest.mark.interop

KEY = Key.parse("SHA256E-s3--98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4")
ROUNDS = 24


def ours(i: int) -> str:
    return f"a{i:07d}-1111-2222-3333-444444444444"


def theirs(i: int) -> str:
    return f"b{i:07d}-1111-2222-3333-444444444444"


def _set_maxsize(uuid: str, size: int, now: Timestamp) -> Callable[[bytes], bytes]:
    return lambda content: maxsize.set_maxsize(content, uuid, size, now)


def _set_groups(uuid: str, group: str, now: Timestamp) -> Callable[[bytes], bytes]:
    return lambda content: groups.set_groups(content, uuid, [group], now)


def test_interleaved_changes_lose_nothing(annex_repo_factory: Callable[..., AnnexRepo]) -> None:
    repo = annex_repo_factory("r")
    errors: list[BaseException] = []

    def annexproxy_side() -> None:
        try:
            with GitPlumbing(repo.path) as plumbing:
                journal = Journal(plumbing.annexdir, plumbing)
                for i in range(ROUNDS):
                    now = Timestamp.from_seconds(1795700000 + i)
                    journal.record_presence(KEY, ours(i), True, now)
                    journal.modify(maxsize.PATH, _set_maxsize(ours(i), i, now))
                    journal.modify(groups.PATH, _set_groups(ours(i), f"g{i}", now))
                    if i % 3 == 2:
                        commit_journal(plumbing, journal)
                commit_journal(plumbing, journal)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    worker = threading.Thread(target=annexproxy_side)
    worker.start()
    for i in range(ROUNDS):
        repo.annex("setpresentkey", str(KEY), theirs(i), "1")
        if i % 4 == 0:
            repo.annex("group", "here", f"h{i}")
    worker.join(timeout=120)
    assert not worker.is_alive()
    assert errors == []

    # git-annex sees everything: whereis counts every copy from both writers.
    out = repo.annex("whereis", f"--key={KEY}").stdout
    assert f"({2 * ROUNDS} copies)" in out
    with GitPlumbing(repo.path) as plumbing:
        journal = Journal(plumbing.annexdir, plumbing)
        view = BranchView(plumbing, journal)
        log = view.read(location_log_path(KEY)) or b""
        present = {info.decode() for info in present_infos(log)}
        assert present >= {ours(i) for i in range(ROUNDS)} | {theirs(i) for i in range(ROUNDS)}
        config = view.config()
    assert config.maxsize == {ours(i): i for i in range(ROUNDS)}
    assert {config.groups[ours(i)] for i in range(ROUNDS)} == {
        frozenset({f"g{i}"}) for i in range(ROUNDS)
    }
    assert config.groups[repo.uuid] == {f"h{i}" for i in range(0, ROUNDS, 4)}
    fsck = repo.git("fsck", "--no-progress", check=False)
    assert fsck.returncode == 0, fsck.stderr
    assert "error" not in fsck.stderr.lower()
    # git-annex's own next commit keeps our lines (its index re-synced with our commits).
    repo.annex("numcopies", "3")
    blob = repo.git("cat-file", "-p", "git-annex:maxsize.log").stdout
    assert all(ours(i) in blob for i in range(ROUNDS))
