"""Our journal writes against real git-annex: visibility, byte identity, concurrency."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from annexproxy.branch.git_plumbing import GitPlumbing
from annexproxy.branch.journal import Journal
from annexproxy.branch.logs.presence import present_infos
from annexproxy.branch.logs.timestamps import Timestamp
from annexproxy.branch.paths import journal_name, location_log_path
from annexproxy.branch.presence_batch import PresenceBatch
from annexproxy.errors import RepositoryError
from annexproxy.keys import Key
from annexproxy.testing.realannex import AnnexRepo, annex_env, run
from annexproxy.uuids import UUIDFormatError

pytestmark = pytest.mark.interop

KEY = Key.parse("SHA256E-s3--98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4")
KEY2 = Key.parse(
    "SHA256E-s12--a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447.txt"
)
U1 = "11111111-2222-3333-4444-555555555555"
U2 = "22222222-2222-3333-4444-555555555555"
U3 = "33333333-2222-3333-4444-555555555555"
U4 = "44444444-2222-3333-4444-555555555555"
F = "f0000000-2222-3333-4444-555555555555"
A = "a0000000-2222-3333-4444-555555555555"
NEW = "b0000000-2222-3333-4444-555555555555"

MakeRepo = Callable[..., AnnexRepo]


@pytest.fixture
def journal_of() -> Iterator[Callable[[AnnexRepo], Journal]]:
    opened: list[GitPlumbing] = []

    def open_journal(repo: AnnexRepo) -> Journal:
        plumbing = GitPlumbing(repo.path)
        opened.append(plumbing)
        return Journal(plumbing.annexdir, plumbing)

    yield open_journal
    for plumbing in opened:
        plumbing.close()


def whereis(repo: AnnexRepo, key: Key) -> str:
    return repo.annex("whereis", f"--key={key}", check=False).stdout


def setpresentkey(repo: AnnexRepo, key: Key, uuid: str, present: bool, clock: str) -> None:
    run(
        ["git", "annex", "setpresentkey", str(key), uuid, "1" if present else "0"],
        repo.path,
        env=annex_env({"GIT_ANNEX_VECTOR_CLOCK": clock}),
    )


def journal_files(repo: AnnexRepo) -> dict[str, bytes]:
    directory = repo.annexdir / "journal"
    if not directory.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def commit_branch_file(repo: AnnexRepo, path: str, content: bytes) -> None:
    """Commit a file to refs/heads/git-annex with plumbing (as in examples/08)."""
    env = annex_env({"GIT_INDEX_FILE": str(repo.gitdir / "test-branch-index")})
    blob = run(["git", "hash-object", "-w", "--stdin"], repo.path, input=content).stdout.strip()
    run(["git", "read-tree", "refs/heads/git-annex"], repo.path, env=env)
    run(
        ["git", "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}"], repo.path, env=env
    )
    tree = run(["git", "write-tree"], repo.path, env=env).stdout.strip()
    old = repo.git("rev-parse", "refs/heads/git-annex").stdout.strip()
    new = repo.git("commit-tree", tree, "-p", old, "-m", "merged file").stdout.strip()
    repo.git("update-ref", "refs/heads/git-annex", new, old)


def branch_blob(repo: AnnexRepo, path: str) -> bytes:
    proc = subprocess.run(
        ["git", "cat-file", "blob", f"refs/heads/git-annex:{path}"],
        cwd=repo.path,
        env=annex_env(),
        capture_output=True,
        check=True,
    )
    return proc.stdout


# --- (1) git-annex reads what we record ---------------------------------------------------


def test_whereis_sees_our_records(
    annex_repo_factory: MakeRepo, journal_of: Callable[[AnnexRepo], Journal]
) -> None:
    repo = annex_repo_factory("r")
    journal = journal_of(repo)
    assert journal.record_presence(KEY, U1, True)
    assert journal.record_presence(KEY, repo.uuid, True)
    assert not journal.record_presence(KEY, U1, True)  # already in effect
    out = whereis(repo, KEY)
    assert "(2 copies)" in out
    assert U1 in out
    assert repo.uuid in out
    # whereis committed the journal; the next change starts from the branch blob.
    assert journal_files(repo) == {}
    assert journal.record_presence(KEY, U1, False)
    out = whereis(repo, KEY)
    assert U1 not in out
    assert "(1 copy)" in out


def test_bare_repository_and_concurrent_batched_records(
    annex_repo_factory: MakeRepo, journal_of: Callable[[AnnexRepo], Journal]
) -> None:
    repo = annex_repo_factory("bare", bare=True)
    journal = journal_of(repo)
    uuids = [f"{i:08d}-0000-4000-8000-000000000000" for i in range(8)]

    async def record_many() -> None:
        queue = PresenceBatch(journal)
        async with asyncio.TaskGroup() as group:
            for u in uuids:
                group.create_task(queue.record(KEY, u, True))

    asyncio.run(record_many())
    logged = journal.read_journal_only(location_log_path(KEY))
    assert logged is not None
    assert len(logged.splitlines()) == len(uuids)  # one line each, none lost to a race
    assert present_infos(logged) == sorted(u.encode() for u in uuids)
    assert "(8 copies)" in whereis(repo, KEY)


def test_batched_records_read_by_git_annex_as_sequential_writes(
    annex_repo_factory: MakeRepo, journal_of: Callable[[AnnexRepo], Journal]
) -> None:
    """Changes queued together are one journal write per key, with the bytes of one-by-one."""
    batched_repo = annex_repo_factory("batched")
    sequential_repo = annex_repo_factory("sequential")
    batched = journal_of(batched_repo)
    sequential = journal_of(sequential_repo)
    uuids = [f"{i:08d}-0000-4000-8000-000000000000" for i in range(4)]
    changes = [(KEY, u, True) for u in uuids] + [(KEY, uuids[1], False), (KEY2, U1, True)]
    queue = PresenceBatch(batched)
    writes: list[str] = []
    record_presences = batched.record_presences

    def counting(
        key: Key,
        key_changes: Sequence[tuple[str, bool]],
        now: Timestamp | int | None = None,
        *,
        wait: bool = True,
    ) -> bool | None:
        writes.append(str(key))
        return record_presences(key, key_changes, wait=wait)

    batched.record_presences = counting  # type: ignore[method-assign,assignment]

    async def record_all() -> list[BaseException | None]:
        async def one(key: Key, uuid: str, present: bool) -> None:
            await queue.record(key, uuid, present)

        outcomes = await asyncio.gather(
            *(one(*change) for change in changes),
            one(KEY, "not a uuid", True),
            return_exceptions=True,
        )
        return [o if isinstance(o, BaseException) else None for o in outcomes]

    *good, bad = asyncio.run(record_all())
    assert good == [None] * len(changes)
    assert isinstance(bad, UUIDFormatError)  # refused alone, before it was queued
    assert sorted(writes) == sorted([str(KEY), str(KEY2)])  # one write per key
    for key, uuid, present in changes:
        sequential.record_presence(key, uuid, present)
    for key in (KEY, KEY2):
        path = location_log_path(key)
        assert batched.read_journal_only(path) == sequential.read_journal_only(path)
    out = whereis(batched_repo, KEY)
    assert "(3 copies)" in out
    assert uuids[1] not in out


_HOLD_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o666)
fcntl.lockf(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.readline()
"""


def _hold_journal_lock(journal: Journal) -> subprocess.Popen[str]:
    """Another process holding ``journal.lck`` (as git-annex does while it commits)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(journal.annexdir / "journal.lck")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == "locked\n"
    return holder


def _release(holder: subprocess.Popen[str]) -> None:
    holder.communicate(timeout=30)  # closes its stdin (it lets go) and its stdout


def test_try_modify_gives_up_while_the_lock_is_taken(
    annex_repo_factory: MakeRepo, journal_of: Callable[[AnnexRepo], Journal]
) -> None:
    """No wait and no write while another thread or process holds the lock; a write after."""
    journal = journal_of(annex_repo_factory("trylock"))
    path = location_log_path(KEY)
    line = U1.encode() + b" 1 timestamp=1700000000s\n"
    with journal.locked():  # this process (another thread would be refused alike)
        assert journal.try_modify(path, lambda _: line) is None
    holder = _hold_journal_lock(journal)
    try:
        assert journal.try_modify(path, lambda _: line) is None
        assert journal.record_presences(KEY, [(U1, True)], wait=False) is None
    finally:
        _release(holder)
    assert journal.read_journal_only(path) is None  # nothing was written meanwhile
    assert journal.try_modify(path, lambda _: line) is True
    assert journal.read_journal_only(path) == line


def test_batched_records_wait_for_a_taken_lock_off_the_event_loop(
    annex_repo_factory: MakeRepo, journal_of: Callable[[AnnexRepo], Journal]
) -> None:
    """While git-annex holds the journal lock, a record waits in a worker thread (the event
    loop goes on), and is written once the lock is free; git-annex then reads it."""
    repo = annex_repo_factory("waiting")
    journal = journal_of(repo)

    async def scenario() -> None:
        queue = PresenceBatch(journal)
        holder = _hold_journal_lock(journal)
        try:
            record = asyncio.create_task(queue.record(KEY, U1, True))
            for _ in range(20):  # the loop keeps running while the record waits
                await asyncio.sleep(0)
            assert not record.done()
        finally:
            _release(holder)
        await asyncio.wait_for(record, timeout=30)
        await queue.record(KEY, U2, True)  # the lock is free: written on the loop

    asyncio.run(scenario())
    logged = journal.read_journal_only(location_log_path(KEY))
    assert logged is not None
    assert present_infos(logged) == sorted([U1.encode(), U2.encode()])
    assert "(2 copies)" in whereis(repo, KEY)


# --- (2) byte identity with git-annex's own writes ----------------------------------------

# (key, uuid, present, GIT_ANNEX_VECTOR_CLOCK)
SEQUENCE = [
    (KEY, U1, True, "1000"),
    (KEY, U2, True, "1000"),  # another info: no advance
    (KEY, U1, False, "1000"),  # prev == now: 1001s
    (KEY, U1, False, "2000"),  # status already in effect: nothing written
    (KEY, U2, False, "500"),  # prev > now: 1001s
    (KEY, U3, True, "1500.250"),  # fractional clock: 1500.25s
    (KEY, U4, True, "-0.5"),  # git-annex reads "-0.5" as 0.5
    (KEY, U1, True, "0001"),  # leading zeros; advance to 1002s
    # KEY2 starts from a merged, uncompacted, unsorted branch file (see below).
    (KEY2, NEW, True, "1750000000"),  # compaction of every other info
    (KEY2, F, False, "1750000000"),  # F present by the tie rule: now written absent
    (KEY2, A, True, "1700000000"),  # A absent by the tie rule; advance to 1700000002s
    (KEY2, A, True, "1800000000"),  # no change
]

MERGED_KEY2 = (
    f"1700000000s 1 {F}\n"
    f"1700000000s 0 {F}\n"
    f"1600000000s 1 {U2}\n"
    f"1700000001s 0 {A}\n"
    f"1700000001s 1 {A}\n"
    f"1500000000s 1 {U1}\n"
    f"1500000000s 0 {U1}\n"
).encode()


def test_journal_bytes_identical_to_git_annex(
    annex_repo_factory: MakeRepo, journal_of: Callable[[AnnexRepo], Journal]
) -> None:
    theirs = annex_repo_factory("theirs")
    ours = annex_repo_factory("ours")
    theirs.git("config", "annex.alwayscommit", "false")  # keep git-annex's writes in the journal
    path2 = location_log_path(KEY2)
    for repo in (theirs, ours):
        commit_branch_file(repo, path2, MERGED_KEY2)
    journal = journal_of(ours)
    for key, uuid, present, clock in SEQUENCE:
        setpresentkey(theirs, key, uuid, present, clock)
        journal.record_presence(key, uuid, present, now=Timestamp.parse(clock))
        assert journal_files(ours) == journal_files(theirs), (uuid, present, clock)
    assert (
        journal_files(ours)[journal_name(path2)]
        == (
            f"1500000000s 1 {U1}\n"
            f"1600000000s 1 {U2}\n"
            f"1700000002s 1 {A}\n"
            f"1750000000s 1 {NEW}\n"
            f"1750000000s 0 {F}\n"
        ).encode()
    )
    # Our journal reads back the same through git-annex's reader, and git-annex commits
    # it to the same blobs.
    for repo in (theirs, ours):
        repo.annex("merge")
        assert journal_files(repo) == {}
    for key in (KEY, KEY2):
        path = location_log_path(key)
        assert branch_blob(ours, path) == branch_blob(theirs, path)
        assert journal.read(path) == branch_blob(ours, path)


# --- (3) concurrency with git-annex -------------------------------------------------------

BATCH_LINES = 150
ONE_SHOT_RUNS = 4
MAX_OURS = 600


def _theirs_uuid(i: int) -> str:
    return f"{i:08d}-aaaa-4000-8000-000000000000"


def _ours_uuid(i: int) -> str:
    return f"{i:08d}-bbbb-4000-8000-000000000000"


def _drive_git_annex(repo: AnnexRepo, errors: list[BaseException], done: threading.Event) -> None:
    """Write BATCH_LINES changes through one batch process, then a few one-shot runs."""
    try:
        proc = subprocess.Popen(
            ["git", "annex", "setpresentkey", "--batch"],
            cwd=repo.path,
            env=annex_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert proc.stdin is not None
        assert proc.stdout is not None
        for i in range(BATCH_LINES):
            proc.stdin.write(f"{KEY} {_theirs_uuid(i)} 1\n".encode())
            proc.stdin.flush()
            reply = proc.stdout.readline()  # the change is in the journal once it answers
            assert reply.rstrip().endswith(b" ok"), reply
        proc.stdin.close()
        assert proc.wait(timeout=120) == 0
        proc.stdout.close()
        for i in range(BATCH_LINES, BATCH_LINES + ONE_SHOT_RUNS):
            # Each one-shot run also commits the journal when it ends.
            run(["git", "annex", "setpresentkey", str(KEY), _theirs_uuid(i), "1"], repo.path)
    except BaseException as exc:
        errors.append(exc)
    finally:
        done.set()


def test_concurrent_writers_lose_no_change(
    annex_repo_factory: MakeRepo, journal_of: Callable[[AnnexRepo], Journal]
) -> None:
    repo = annex_repo_factory("r")
    journal = journal_of(repo)
    errors: list[BaseException] = []
    done = threading.Event()
    driver = threading.Thread(target=_drive_git_annex, args=(repo, errors, done))
    driver.start()
    written = 0
    try:
        while not done.is_set() and written < MAX_OURS:
            assert journal.record_presence(KEY, _ours_uuid(written), True)
            written += 1
    finally:
        driver.join()
    assert errors == []
    expected = {_theirs_uuid(i) for i in range(BATCH_LINES + ONE_SHOT_RUNS)}
    expected |= {_ours_uuid(i) for i in range(written)}
    content = journal.read(location_log_path(KEY))
    assert content is not None
    assert {info.decode() for info in present_infos(content)} == expected
    match = re.search(r"\((\d+) copies\)", whereis(repo, KEY))
    assert match is not None
    assert int(match.group(1)) == len(expected)
    assert written > 0


def test_journal_file_written_by_us_is_where_git_annex_looks(
    annex_repo_factory: MakeRepo, journal_of: Callable[[AnnexRepo], Journal]
) -> None:
    repo = annex_repo_factory("r")
    repo.git("config", "annex.alwayscommit", "false")
    journal = journal_of(repo)
    setpresentkey(repo, KEY, U1, True, "1000")
    names = set(journal_files(repo))
    journal.record_presence(KEY, U2, True, now=1000)
    assert set(journal_files(repo)) == names == {journal_name(location_log_path(KEY))}
    tmp = Path(repo.annexdir / "othertmp")
    assert not tmp.exists() or list(tmp.iterdir()) == []


@pytest.mark.parametrize("shared", ["group", "all", "false"])
def test_permissions_match_git_annex(
    annex_repo_factory: MakeRepo, journal_of: Callable[[AnnexRepo], Journal], shared: str
) -> None:
    theirs = annex_repo_factory("theirs")
    ours = annex_repo_factory("ours")
    for repo in (theirs, ours):
        repo.git("config", "core.sharedRepository", shared)
        repo.git("config", "annex.alwayscommit", "false")
    setpresentkey(theirs, KEY, U1, True, "1000")
    journal_of(ours).record_presence(KEY, U1, True, now=1000)
    name = journal_name(location_log_path(KEY))
    for relative in ("journal", f"journal/{name}", "journal.lck", "othertmp.lck"):
        mode_ours = (ours.annexdir / relative).stat().st_mode
        mode_theirs = (theirs.annexdir / relative).stat().st_mode
        assert oct(mode_ours) == oct(mode_theirs), relative


def test_write_after_git_annex_removed_othertmp_and_journal(
    annex_repo_factory: MakeRepo, journal_of: Callable[[AnnexRepo], Journal]
) -> None:
    # git-annex deletes othertmp/ when a process ends, and a commit can leave no journal
    # directory: a write makes both again and git-annex reads it.
    repo = annex_repo_factory("r")
    journal = journal_of(repo)
    assert journal.record_presence(KEY, U1, True)
    for name in ("othertmp", "journal"):
        target = repo.annexdir / name
        for child in target.iterdir():
            child.unlink()
        target.rmdir()
    assert journal.record_presence(KEY2, U2, True)
    assert U2 in whereis(repo, KEY2)


def test_missing_annex_directory_is_named(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path / "plain")], check=True)
    with GitPlumbing(tmp_path / "plain") as plumbing:
        journal = Journal(plumbing.annexdir, plumbing)
        with pytest.raises(RepositoryError, match="git annex init"):
            journal.record_presence(KEY, U1, True)
