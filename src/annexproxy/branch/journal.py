"""The git-annex journal: read branch files as git-annex sees them, change them under its lock.

Owns ``<annexdir>/journal/`` and the locking discipline git-annex uses for it
(branch.md sections 11 and 13 A, example 09 C):

* reading a branch file: the journal file wins over the branch blob; an interrupted
  append (trailing bytes after the last LF) is dropped, as git-annex drops it;
* changing one: take the exclusive fcntl (POSIX record) lock on
  ``<annexdir>/journal.lck`` (blocking), read the current content (journal file, else
  branch blob), compute the new content, write it to a temporary file in
  ``<annexdir>/othertmp/`` and rename it over the journal file, then unlock.

While a temporary file exists in ``othertmp/`` a *shared* lock on
``<annexdir>/othertmp.lck`` is held: every git-annex process, when it ends, takes that
lock exclusively if it can and deletes the whole ``othertmp`` directory
(``Annex/Tmp.hs``), which would otherwise pull the file from under us.

This module does I/O but no log formatting: what to write comes from the pure
``branch.logs`` modules. It never commits the journal and never touches git-annex's
index; ``branch/commit.py`` commits and merges while holding `Journal.locked`, using
`Journal.files` and `Journal.discard`.

POSIX record locks belong to a process, not to a thread, and closing *any* descriptor
of the lock file drops them. So changes from threads of this process are serialised by
a per-lock-file `threading.Lock` before the fcntl lock is taken.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from annexproxy.branch.git_plumbing import GitPlumbing, RepoSettings, SharedRepository
from annexproxy.branch.logs.presence import PresenceStatus, change_presence
from annexproxy.branch.logs.timestamps import Timestamp
from annexproxy.branch.paths import journal_name, location_log_path
from annexproxy.errors import LogFormatError, RepositoryError
from annexproxy.keys import Key
from annexproxy.uuids import RepoUUID, is_cluster_uuid, parse_uuid

JOURNAL_DIR = "journal"
PRIVATE_JOURNAL_DIR = "journal-private"
JOURNAL_LOCK = "journal.lck"
OTHERTMP_DIR = "othertmp"
OTHERTMP_LOCK = "othertmp.lck"
VECTOR_CLOCK_ENV = "GIT_ANNEX_VECTOR_CLOCK"

_READ_SIZE = 64 << 10
_PROCESS_LOCKS: dict[str, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()
# Per journal lock file: how many top-level files (configuration logs, not per-key logs)
# any `Journal` of this process wrote there; read by `Journal.top_level_writes`.
_TOP_LEVEL_WRITES: dict[str, int] = {}

# Modes git-annex adds for core.sharedRepository (Annex/Perms.hs setAnnexPerm').
_SHARED_FILE_MODES = {
    SharedRepository.GROUP: stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IWGRP,
    SharedRepository.ALL: stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IWGRP | stat.S_IROTH,
}
_SHARED_DIR_EXTRA = {
    SharedRepository.GROUP: stat.S_IXUSR | stat.S_IXGRP,
    SharedRepository.ALL: stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH,
}


_RACY_SECONDS = 2
"""A journal directory changed this recently is listed again rather than trusted."""


def vector_clock(environ: Mapping[str, str] | None = None) -> Timestamp:
    """The clock git-annex would use for a new log line right now.

    ``GIT_ANNEX_VECTOR_CLOCK`` replaces the real clock when set and parseable (git-annex
    ignores an unparseable value); otherwise the current time in whole seconds.

    Args:
        environ: the environment to consult; the process environment by default.
    """
    value = (os.environ if environ is None else environ).get(VECTOR_CLOCK_ENV)
    if value is not None:
        with suppress(LogFormatError):
            return Timestamp.parse(value)
    return Timestamp.from_seconds(int(time.time()))


def discard_incomplete_append(content: bytes) -> bytes:
    """Drop bytes after the last LF, as git-annex does when reading a journal file.

    An interrupted append (``annex.alwayscompact=false``) can leave a partial last line.
    """
    if not content or content.endswith(b"\n"):
        return content
    return content[: content.rfind(b"\n") + 1]


def _process_lock(path: str) -> threading.Lock:
    key = os.path.realpath(path)
    with _PROCESS_LOCKS_GUARD:
        return _PROCESS_LOCKS.setdefault(key, threading.Lock())


def _read_file(path: str) -> bytes:
    """A small file's bytes with four system calls (a Python file object takes seven).

    Raises:
        OSError: FileNotFoundError when there is no such file.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, _READ_SIZE):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


@contextmanager
def _os_errors(what: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise RepositoryError(f"{what}: {exc}") from exc


class Journal:
    """The journal of one git-annex repository."""

    def __init__(
        self,
        annexdir: Path,
        plumbing: GitPlumbing,
        *,
        clock: Callable[[], Timestamp] = vector_clock,
    ) -> None:
        """Use the journal in ``annexdir`` with branch content read through ``plumbing``.

        Args:
            annexdir: ``<gitdir>/annex`` of the repository (see `GitPlumbing.annexdir`).
            plumbing: the open repository; it stays owned by the caller.
            clock: where ``now`` comes from when a change does not give it.

        Raises:
            RepositoryError: the repository config cannot be read.
        """
        self.annexdir = Path(annexdir)
        self._plumbing = plumbing
        self._clock = clock
        self._settings: RepoSettings = plumbing.read_settings()
        self._journal_prefix = os.path.join(self.annexdir, JOURNAL_DIR, "")
        self._private_prefix = os.path.join(self.annexdir, PRIVATE_JOURNAL_DIR, "")
        self._listings: dict[str, tuple[int, frozenset[str]]] = {}
        # Plain strings for the paths used on every change: Path arithmetic costs more
        # than the system calls it leads to.
        self._annexdir = os.fspath(self.annexdir)
        self._journal_dir = os.path.join(self._annexdir, JOURNAL_DIR)
        self._lockfile = os.path.join(self._annexdir, JOURNAL_LOCK)
        self._othertmp = os.path.join(self._annexdir, OTHERTMP_DIR)
        self._othertmp_lock = os.path.join(self._annexdir, OTHERTMP_LOCK)
        self._process_lock = _process_lock(self._lockfile)
        self._writes_key = os.path.realpath(self._lockfile)

    @property
    def journal_dir(self) -> Path:
        """``<annexdir>/journal``."""
        return self.annexdir / JOURNAL_DIR

    @property
    def settings(self) -> RepoSettings:
        """The repository settings read when the journal was opened."""
        return self._settings

    @property
    def top_level_writes(self) -> int:
        """How many top-level branch files (``uuid.log``, ...) this process wrote here.

        A change of it tells a reader that remembers configuration logs (`ConfigMemo`)
        that we changed one; per-key logs, in hash directories, do not count.
        """
        return _TOP_LEVEL_WRITES.get(self._writes_key, 0)

    def read(self, path: str) -> bytes | None:
        """Read a branch file as git-annex sees it: journal file if any, else the branch.

        Reads take no lock (git-annex's do not either): journal files are replaced by
        rename, so a reader sees the old or the new content, never a mix.

        Args:
            path: ``/``-separated branch path, e.g. from `location_log_path`.

        Returns:
            The content, or None when neither the journal nor the branch has the file.

        Raises:
            LogFormatError: ``path`` is not a possible branch path.
            RepositoryError: the journal file or the branch cannot be read.
        """
        name = journal_name(path)
        with _os_errors(f"cannot read journal file {name} in {self._journal_dir}"):
            try:
                content = _read_file(self._journal_prefix + name)
            except FileNotFoundError:
                return self._plumbing.read_branch_file(path)
        return discard_incomplete_append(content)

    def read_journal_only(self, path: str) -> bytes | None:
        """The journal file for a branch path, or None when there is none.

        Raises:
            LogFormatError: ``path`` is not a possible branch path.
            RepositoryError: the journal file cannot be read.
        """
        return self._read_journal_file(self._journal_prefix, journal_name(path))

    def read_private(self, path: str) -> bytes | None:
        """The private journal's file for a branch path (``journal-private/``), or None.

        git-annex keeps what concerns private repositories (``annex.private``, remotes
        with ``annex-private``) there, never on the branch; a reader appends it to
        what the branch or journal holds.

        Raises:
            LogFormatError: ``path`` is not a possible branch path.
            RepositoryError: the file cannot be read.
        """
        return self._read_journal_file(self._private_prefix, journal_name(path))

    def names_if_stable(self) -> frozenset[str] | None:
        """Names in the journal and the private journal; None if either is not stable.

        For a batch of reads: when both listings can be trusted now (see
        `_stable_listing`), a name not listed here has no journal file in either.
        """
        shared = self._stable_listing(self._journal_prefix)
        private = self._stable_listing(self._private_prefix)
        if shared is None or private is None:
            return None
        return shared | private if private else shared

    def _read_journal_file(self, prefix: str, name: str) -> bytes | None:
        listing = self._stable_listing(prefix)
        if listing is not None and name not in listing:
            return None
        try:
            # plain strings, not Path objects: this runs once per key looked up
            return discard_incomplete_append(_read_file(prefix + name))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RepositoryError(f"cannot read journal file {name} in {prefix}: {exc}") from exc

    def _stable_listing(self, prefix: str) -> frozenset[str] | None:
        """The file names in a journal directory, when a listing can be trusted; else None.

        A listing is reused while the directory's mtime is unchanged (every journal
        file is created by a rename into it). Within `_RACY_SECONDS` of the last
        change the mtime cannot be trusted (file systems stamp coarsely), so None
        tells the caller to look for the file itself, as git does with a racy index.
        """
        try:
            mtime = os.stat(prefix).st_mtime_ns
        except FileNotFoundError:
            return frozenset()
        except OSError:
            return None
        if time.time_ns() - mtime < _RACY_SECONDS * 1_000_000_000:
            self._listings.pop(prefix, None)
            return None
        cached = self._listings.get(prefix)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        try:
            listing = frozenset(os.listdir(prefix))
        except OSError:
            return None
        self._listings[prefix] = (mtime, listing)
        return listing

    def modify(self, path: str, change: Callable[[bytes], bytes | None]) -> bool:
        """Change one branch file through the journal, under the journal lock.

        Blocks until the lock is free; from asyncio, call it in a worker thread.

        Args:
            path: ``/``-separated branch path.
            change: given the current content (``b""`` when there is none), returns the
                complete new content, or None to leave the file alone. It runs with the
                lock held, so it must be quick and must not touch the journal.

        Returns:
            True when a new journal file was written.

        Raises:
            LogFormatError: ``path`` is not a possible branch path.
            RepositoryError: the repository uses ``annex.pidlock`` (its locks are not
                fcntl locks), or a file could not be read or written.
        """
        with self._locked():
            return self._modify_locked(path, change)

    def try_modify(self, path: str, change: Callable[[bytes], bytes | None]) -> bool | None:
        """`modify` only if the journal lock is free now; None (nothing done) when it is not.

        For callers that must not wait (an event loop): the lock may be held for long by
        git-annex (committing) or by another thread of ours. What is done with the lock
        held is a few small-file system calls.

        Raises:
            as for `modify`.
        """
        with self._locked(wait=False) as held:
            return self._modify_locked(path, change) if held else None

    def _modify_locked(self, path: str, change: Callable[[bytes], bytes | None]) -> bool:
        name = journal_name(path)
        current = self.read(path)
        new = change(b"" if current is None else current)
        if new is None:
            return False
        self._write(name, new)
        if "/" not in path:
            with _PROCESS_LOCKS_GUARD:
                _TOP_LEVEL_WRITES[self._writes_key] = self.top_level_writes + 1
        return True

    def record_presence(
        self,
        key: Key,
        uuid: str,
        present: bool,
        now: Timestamp | int | None = None,
    ) -> bool:
        """Record in the location log of ``key`` that ``uuid`` has it, or not.

        Writes exactly what git-annex's ``logChange`` writes: a compacted, sorted file
        with the advance rule applied, or nothing when the status is already in effect.
        Like git-annex, a cluster UUID is never written (its presence is derived).

        Args:
            key: the key.
            uuid: the repository UUID.
            present: True for present (``1``), False for not present (``0``).
            now: the clock for the new line; by default `vector_clock`
                (``GIT_ANNEX_VECTOR_CLOCK`` or the current whole second).

        Returns:
            True when the journal was changed.

        Raises:
            UUIDFormatError: ``uuid`` is not a UUID.
            RepositoryError: ``uuid`` is private to this repository (it would belong in
                ``journal-private/``, not supported yet), or as for `modify`.
        """
        return bool(self.record_presences(key, [(uuid, present)], now))

    def record_presences(
        self,
        key: Key,
        changes: Sequence[tuple[str, bool]],
        now: Timestamp | int | None = None,
        *,
        wait: bool = True,
    ) -> bool | None:
        """`record_presence` for several UUIDs in order, in one journal write.

        The file written is the one the changes made one after the other would leave.

        Args:
            key: the key.
            changes: (UUID, present) pairs, in the order they happened.
            now: as for `record_presence`.
            wait: False to give up at once, returning None, when the journal lock is
                taken (`try_modify`).

        Returns:
            True when the journal was changed; None when ``wait`` is False and the lock
            was taken.

        Raises:
            UUIDFormatError: a UUID is not a UUID; nothing is written.
            RepositoryError: as for `record_presence`; nothing is written.
        """
        wanted = [
            (repo_uuid, PresenceStatus.PRESENT if present else PresenceStatus.MISSING)
            for repo_uuid, present in ((self.loggable_uuid(u), p) for u, p in changes)
            if repo_uuid is not None
        ]
        if not wanted:
            return False
        if now is None:
            clock = self._clock()
        else:
            clock = now if isinstance(now, Timestamp) else Timestamp.from_seconds(now)

        def change(content: bytes) -> bytes | None:
            changed = False
            for repo_uuid, status in wanted:
                new = change_presence(content, repo_uuid, status, clock)
                if new is not None:
                    content, changed = new, True
            return content if changed else None

        path = location_log_path(key, branchhash1=self._settings.branchhash1)
        return self.modify(path, change) if wait else self.try_modify(path, change)

    def loggable_uuid(self, uuid: str) -> RepoUUID | None:
        """``uuid`` as location logs here take it, or None for a cluster UUID (never logged).

        Raises:
            UUIDFormatError: ``uuid`` is not a UUID.
            RepositoryError: ``uuid`` is private to this repository (its changes belong
                in ``journal-private/``, which annexproxy cannot write yet).
        """
        repo_uuid = parse_uuid(uuid)
        if is_cluster_uuid(repo_uuid):
            return None
        if repo_uuid in self._settings.private_uuids:
            raise RepositoryError(
                f"{repo_uuid} is a private repository; its location changes go to "
                "journal-private/, which annexproxy cannot write yet"
            )
        return repo_uuid

    # --- the journal as a whole, for committing ---------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the journal lock (blocking), as git-annex does to commit or merge.

        Not re-entrant: do not call `modify` while holding it.

        Raises:
            RepositoryError: as for `modify`.
        """
        with self._locked():
            yield

    def files(self) -> dict[str, bytes]:
        """Every journal file, by journal name, content as a reader sees it.

        An interrupted append is dropped; names git-annex would not write (hidden or
        not regular files) are left out.

        Raises:
            RepositoryError: the journal cannot be read.
        """
        found: dict[str, bytes] = {}
        with _os_errors(f"cannot list {self._journal_dir}"):
            try:
                with os.scandir(self._journal_dir) as listing:
                    names = sorted(
                        entry.name
                        for entry in listing
                        if not entry.name.startswith(".") and entry.is_file()
                    )
            except FileNotFoundError:
                return found
            for name in names:
                try:
                    found[name] = discard_incomplete_append(_read_file(self._journal_prefix + name))
                except FileNotFoundError:
                    continue
        return found

    def discard(self, names: Iterator[str] | list[str]) -> None:
        """Delete journal files once their content is committed (hold `locked`).

        Raises:
            RepositoryError: a file could not be deleted.
        """
        with _os_errors(f"cannot delete a journal file in {self._journal_dir}"):
            for name in names:
                with suppress(FileNotFoundError):
                    os.unlink(self._journal_prefix + name)

    # --- locking and writing ------------------------------------------------------------

    @contextmanager
    def _locked(self, *, wait: bool = True) -> Iterator[bool]:
        """Hold the journal lock; yields False (not held) when ``wait`` is False and it is taken."""
        if self._settings.pidlock:
            raise RepositoryError(
                f"{self.annexdir.parent} sets annex.pidlock; annexproxy cannot share its "
                "journal lock. Unset annex.pidlock or write through a sibling ref."
            )
        if not self._process_lock.acquire(blocking=wait):
            yield False
            return
        try:
            with self._fcntl_lock(self._lockfile, exclusive=True, wait=wait) as held:
                yield held
        finally:
            self._process_lock.release()

    @contextmanager
    def _fcntl_lock(self, lockfile: str, *, exclusive: bool, wait: bool = True) -> Iterator[bool]:
        flags = (os.O_RDWR if exclusive else os.O_RDONLY) | os.O_CREAT | os.O_CLOEXEC
        with _os_errors(f"cannot open lock file {lockfile}"):
            try:
                fd = os.open(lockfile, flags, 0o666)
            except FileNotFoundError:
                self._require_annexdir()
                raise
        try:
            self._share(lockfile, is_dir=False)
            mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
            with _os_errors(f"cannot lock {lockfile}"):
                try:
                    fcntl.lockf(fd, mode if wait else mode | fcntl.LOCK_NB)
                    held = True
                except (BlockingIOError, PermissionError):  # EAGAIN or EACCES: taken
                    if wait:
                        raise
                    held = False
            yield held
        finally:
            os.close(fd)  # also releases the record lock

    def _write(self, name: str, content: bytes) -> None:
        with self._fcntl_lock(self._othertmp_lock, exclusive=False):
            tmp = os.path.join(self._othertmp, f"annexproxy-{secrets.token_hex(8)}")
            with _os_errors(f"cannot write journal file {name} in {self._journal_dir}"):
                fd = self._create_tmp(tmp)
                try:
                    try:
                        view = memoryview(content)
                        while view:
                            view = view[os.write(fd, view) :]
                    finally:
                        os.close(fd)
                    self._share(tmp, is_dir=False)
                    try:
                        os.replace(tmp, self._journal_prefix + name)
                    except FileNotFoundError:  # no journal directory yet
                        self._ensure_dir(self._journal_dir)
                        os.replace(tmp, self._journal_prefix + name)
                except BaseException:
                    with suppress(OSError):
                        os.unlink(tmp)
                    raise

    def _create_tmp(self, tmp: str) -> int:
        # mode 0666 minus the umask, like git-annex's own temporary file.
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        try:
            return os.open(tmp, flags, 0o666)
        except FileNotFoundError:  # othertmp/ is made when needed, and git-annex removes it
            self._ensure_dir(self._othertmp)
            return os.open(tmp, flags, 0o666)

    def _require_annexdir(self) -> None:
        if not os.path.isdir(self._annexdir):
            raise RepositoryError(
                f"{self.annexdir} does not exist: not a git-annex repository, or not "
                "initialised (run `git annex init` there)"
            )

    def _ensure_dir(self, path: str) -> None:
        if os.path.isdir(path):
            return
        with _os_errors(f"cannot create {path}"):
            try:
                os.mkdir(path)  # mode 0777 minus the umask, as git-annex
            except FileExistsError:
                return
        self._share(path, is_dir=True)

    def _share(self, path: str, *, is_dir: bool) -> None:
        """Add the modes core.sharedRepository asks for; best effort, like git-annex."""
        shared = self._settings.shared
        if shared is SharedRepository.UNSHARED:
            return
        wanted = _SHARED_FILE_MODES[shared] | (_SHARED_DIR_EXTRA[shared] if is_dir else 0)
        with suppress(OSError):
            mode = stat.S_IMODE(os.stat(path).st_mode)
            if mode | wanted != mode:
                os.chmod(path, mode | wanted)
