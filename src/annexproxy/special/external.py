"""The ``external``-type special remote backend: runs ``git-annex-remote-<externaltype>``.

Owns the pool of program processes of one remote and the temp files they transfer
through, and maps requests and answers onto `RemoteBackend`. The protocol (messages,
conversation) is `external_protocol`; one process and its pipes are
`external_process.ExternalProgram`. It must not parse or format protocol lines itself.

How git-annex runs these programs (Annex/ExternalAddonProcess.hs, checked with
git-annex 10.20261026): found on PATH, no arguments, stdin/stdout piped, the caller's
environment plus ``GIT_DIR`` and ``GIT_WORK_TREE``, relative to its working directory
(where git-annex was started; ``.git`` and ``.`` at the top, GETGITDIR answers the same).
We start it in the gateway repository's top directory and give absolute paths. One
program handles one request at a time; like git-annex, concurrent requests start more
processes (at most `MAX_PROCESSES`), idle ones are kept for reuse. A process that dies,
says ERROR, breaks the protocol or is abandoned mid-request (a download the caller
stopped reading) is killed and a fresh one is started on next use.

Uploads: the protocol only transfers files (``TRANSFER STORE Key File``), so an upload
is spooled (once) to a temp file under ``annex/tmp`` and stored at `commit`. Downloads go
to a file there too; when the program answers ``GETORDERED`` with ``ORDERED`` the file
is streamed to the caller while it grows (as git-annex's proxy does), else once the
transfer has succeeded. Before a spool grows, the file system must keep
``annex.diskreserve`` free (`annexproxy.special.spool`; git-annex's gateway does not
check). Upload spools are deleted in every case, each as soon as its object is stored.
The stores of one cluster fan-out (external nodes given the same bytes) keep one spool
per object between them (`ExternalBackend.store_shared`), not one per node.

A download spool is named by the remote and key (``annex/tmp/annexproxy-partial/<uuid>/
<keyfile>``, held under a lock while in use). An interrupted download (the program
failed, the caller stopped reading) keeps it, and the next download of that key hands
the same file to the program: the protocol says "the File may already exist, if its
retrieval was interrupted before. That lets the remote resume downloading, if it's
able to". Kept spools are bounded (`KEEP_PARTIAL_BYTES`, `KEEP_PARTIAL_FILES`, oldest
removed first); a completed download's spool is deleted.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import BinaryIO

from annexproxy.errors import (
    ConfigError,
    KeyNotPresent,
    NodeUnavailable,
    StorageError,
)
from annexproxy.keys import Key
from annexproxy.space.reserve import DEFAULT_DISK_RESERVE
from annexproxy.special import external_protocol as p
from annexproxy.special.backend import LocalSettings, RemoteBackend, StoreSession
from annexproxy.special.external_process import ExternalProgram
from annexproxy.special.remote import SpecialRemote
from annexproxy.special.spool import SpoolArea, SpoolClaim, free_bytes, sweep, temp_prefix
from annexproxy.storage.contentlock import FileLock, try_lock

MAX_PROCESSES = 4
REQUEST_TIMEOUT = 600.0
"""Seconds a program may take over PREPARE, CHECKPRESENT, REMOVE or GETORDERED (requests
that move no content; transfers are not bounded, like git-annex without stall detection)."""
GROW_POLL = 0.04
"""Seconds between looks at a download that grows without PROGRESS (git-annex: 40 ms)."""
CHUNK = 256 * 1024
KEEP_PARTIAL_BYTES = 1_000_000_000
"""At most this many bytes of interrupted downloads are kept per remote for resuming."""
KEEP_PARTIAL_FILES = 16
"""At most this many interrupted downloads are kept per remote for resuming."""


def find_gitdir(base: Path) -> tuple[Path, bool]:
    """The git directory of the repository at ``base`` and whether it is bare.

    Raises:
        ConfigError: ``base`` has a ``.git`` file that does not name a git directory.
    """
    dotgit = base / ".git"
    if dotgit.is_dir():
        return dotgit.resolve(), False
    if dotgit.is_file():
        text = dotgit.read_text(encoding="utf-8", errors="surrogateescape").strip()
        if not text.startswith("gitdir:"):
            raise ConfigError(f"{dotgit} is not a 'gitdir:' file; is {base} a git repository?")
        return (base / text[len("gitdir:") :].strip()).resolve(), False
    return base.resolve(), True


# --- credentials (Creds.hs: environment, then annex/creds/, then the remote's config) ---


def _creds_name(uuid: str, setting: str) -> str:
    return f"{uuid}-{setting}".replace("/", "_")


def lookup_creds(
    remote: SpecialRemote, gitdir: Path, environ: Mapping[str, str], setting: str
) -> tuple[str, str] | None:
    """The login and password stored for ``setting`` of ``remote``, as git-annex finds them.

    Looks at the environment variables ``<uuid>-<setting>login`` / ``...password``, then
    the cache file ``annex/creds/<uuid>-<setting>``, then (for unencrypted remotes) the
    base64 value of the setting in the remote's configuration.
    """
    name = _creds_name(str(remote.uuid), setting)
    login, password = environ.get(name + "login"), environ.get(name + "password")
    if login is not None and password is not None:
        return login, password
    with contextlib.suppress(OSError, UnicodeDecodeError):
        lines = (gitdir / "annex" / "creds" / name).read_text(encoding="utf-8").splitlines()
        if len(lines) == 2:
            return lines[0], lines[1]
    embedded = remote.params.get(setting)
    if embedded and "cipher" not in remote.params:
        with contextlib.suppress(binascii.Error, UnicodeDecodeError):
            lines = base64.b64decode(embedded, validate=True).decode("utf-8").splitlines()
            if len(lines) == 2:
                return lines[0], lines[1]
    return None


class _GrowingFile:
    """A download's temp file, read while the program writes it."""

    def __init__(self, path: Path, offset: int) -> None:
        self.path = path
        self._file = path.open("rb")
        self._file.seek(offset)

    def read(self) -> bytes:
        """The next bytes written so far (``b""``: none yet)."""
        return self._file.read(CHUNK)

    def follow(self) -> None:
        """Reopen at the same position if the program replaced the file by a new one.

        Some programs download to a file of their own and rename it over ours; the
        handle opened before would then read the old, empty file.
        """
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino != os.fstat(self._file.fileno()).st_ino:
                position = self._file.tell()
                self._file.close()
                self._file = self.path.open("rb")
                self._file.seek(position)

    def close(self) -> None:
        """Close the handle."""
        self._file.close()


class _StoreSpool:
    """An upload's spool file; one fan-out's stores of the same object may share it.

    Every user is fed the same bytes in the same order: a range already in the file is
    skipped, the rest appended. The file goes once every user is done with it.
    """

    def __init__(self, path: Path, out: BinaryIO, claim: SpoolClaim) -> None:
        self.path = path
        self._out = out
        self._claim = claim
        self.written = 0
        self.users = 0
        self._closed = False

    def write_at(self, position: int, data: bytes) -> None:
        """Make the file hold ``data`` at ``position`` (appending what it lacks).

        Raises:
            OutOfSpace: the bytes would eat into annex.diskreserve.
            StorageError: the file could not be written, or ``position`` is past its end.
        """
        if position > self.written:
            raise StorageError(
                f"the upload spool {self.path} holds {self.written} bytes; cannot add bytes "
                f"at {position}"
            )
        piece = data[self.written - position :]
        if not piece:
            return
        if self._closed:
            raise StorageError(f"the upload spool {self.path} was already completed")
        self._claim.wrote(len(piece))
        try:
            self._out.write(piece)
        except OSError as exc:
            raise StorageError(f"cannot write the upload's temp file {self.path}: {exc}") from exc
        self.written += len(piece)

    def complete(self) -> None:
        """Flush and close the file (idempotent): it is ready for TRANSFER STORE.

        Raises:
            StorageError: the file could not be written.
        """
        if self._closed:
            return
        self._closed = True
        try:
            self._out.close()
        except OSError as exc:
            raise StorageError(f"cannot write the upload's temp file {self.path}: {exc}") from exc

    def leave(self) -> bool:
        """One user is done; the last one deletes the file. True when it was the last."""
        self.users -= 1
        if self.users > 0:
            return False
        with contextlib.suppress(OSError):
            self._out.close()
        self.path.unlink(missing_ok=True)
        self._claim.release()
        return True


_Slot = tuple[object, Path, str]
_SHARED: dict[_Slot, _StoreSpool] = {}
"""Upload spools shared by the stores of one fan-out: by (group, spool directory, name)."""


class _Upload:
    """An upload spooled to a temp file, stored with TRANSFER STORE at `commit`.

    Nothing reaches the program before `commit`; during the transfer, that the key is not
    yet visible is up to the program (the protocol requires CHECKPRESENT not to say
    present until all the data has been sent).
    """

    def __init__(
        self, backend: ExternalBackend, name: Key, spool: _StoreSpool, slot: _Slot | None
    ) -> None:
        self._backend = backend
        self._name = name
        self._spool = spool
        self._slot = slot
        self._position = 0
        self._released = False
        spool.users += 1

    def release(self) -> None:
        """Be done with the spool (idempotent); the last user of a shared one deletes it."""
        if self._released:
            return
        self._released = True
        if self._spool.leave() and self._slot is not None:
            _SHARED.pop(self._slot, None)

    async def write(self, data: bytes) -> None:
        """Append bytes to the spool file (those another store of the group wrote: no).

        Raises:
            OutOfSpace: the bytes would eat into annex.diskreserve.
            StorageError: the temp file could not be written (disk full, ...).
        """
        self._spool.write_at(self._position, data)
        self._position += len(data)

    async def commit(self) -> None:
        """Have the program store the spooled file.

        Raises:
            StorageError: the program refused (TRANSFER-FAILURE) or failed.
            NodeUnavailable: the program died or broke the protocol.
        """
        self._spool.complete()
        if self._spool.written != self._position:
            raise StorageError(
                f"the upload spool {self._spool.path} holds {self._spool.written} bytes, "
                f"not the {self._position} given; nothing was stored"
            )
        path = str(self._spool.path)
        request = p.Transfer(direction=p.Direction.STORE, key=self._name, file=path)
        async with self._backend.program() as program:
            response = await program.request(request)
        if isinstance(response, p.TransferFailure):
            raise StorageError(
                f"{self._backend.label} could not store {self._name}: "
                f"{response.error or 'TRANSFER failed with no reason given'}"
            )
        # Stored: the spool can go now (a chunked upload's next chunks need no room for
        # this one's), though the session lasts until the whole upload ends.
        self.release()


class _DownloadSpool:
    """The file one download spools to: the key's kept spool when it can be had."""

    def __init__(self, backend: ExternalBackend, name: Key) -> None:
        self._backend = backend
        self._name = name
        self._lock: FileLock | None = None
        self.partial = False
        """Whether the file holds part of an interrupted transfer (kept at `close`)."""
        self.path = backend.partial_dir / name.keyfile()
        self._owned = False  # whether `path` is ours to keep or delete
        self.claim: SpoolClaim = backend.spool.claim(str(name), 0)

    def open(self) -> None:
        """Take the key's spool (or, while another download holds it, a fresh file).

        Raises:
            OutOfSpace: the rest of the object would eat into annex.diskreserve.
            StorageError: the file cannot be made.
        """
        directory = self._backend.partial_dir
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._lock = try_lock(directory / ("lck." + self._name.keyfile()), exclusive=True)
            if self._lock is None:
                if not self._backend.swept(directory, "retrieve"):
                    sweep(directory, "retrieve")
                fd, path = tempfile.mkstemp(prefix=temp_prefix("retrieve"), dir=directory)
                os.close(fd)
                self.path = Path(path)
            else:
                self.path.touch()
            self._owned = True
            have = self.path.stat().st_size
            self.partial = have > 0  # a kept spool stays kept unless replaced
        except OSError as exc:
            self.close(keep=False)
            raise StorageError(
                f"cannot make a temp file in {directory} for {self._name}: {exc}"
            ) from exc
        # As git-annex: a key of unknown size needs 1 byte; what is spooled already, none.
        size = self._name.size
        try:
            self.claim.grow(1 if size is None else size - have)
        except StorageError:
            self.close(keep=self.partial)
            raise

    def close(self, *, keep: bool) -> None:
        """Release the spool: keep it for a later download (bounded), or delete it."""
        self.claim.release()
        lock, self._lock = self._lock, None
        owned, self._owned = self._owned, False
        with contextlib.suppress(OSError):
            if not owned:
                pass  # another download's spool (or none was made)
            elif not keep or lock is None or self.path.stat().st_size == 0:
                self.path.unlink(missing_ok=True)
            else:
                os.utime(self.path)  # the newest kept spool goes last
                _prune(self._backend.partial_dir)
        if lock is not None:
            with contextlib.suppress(OSError):
                lock.release(unlink=True)


def _prune(directory: Path) -> None:
    """Delete the oldest kept spools beyond the bounds, skipping those in use."""
    kept = []
    for entry in directory.iterdir():
        if entry.name.startswith(("lck.", "annexproxy-retrieve-")):
            continue
        with contextlib.suppress(OSError):
            info = entry.stat()
            kept.append((info.st_mtime_ns, info.st_size, entry))
    kept.sort()
    total = sum(size for _, size, _ in kept)
    count = len(kept)
    for _, size, entry in kept:
        if total <= KEEP_PARTIAL_BYTES and count <= KEEP_PARTIAL_FILES:
            break
        try:
            lock = try_lock(directory / ("lck." + entry.name), exclusive=True)
        except StorageError:
            continue
        if lock is None:
            continue  # another download is using it
        try:
            entry.unlink(missing_ok=True)
        finally:
            lock.release(unlink=True)
        total -= size
        count -= 1


class ExternalBackend:
    """A `RemoteBackend` served by an external special remote program."""

    def __init__(
        self,
        remote: SpecialRemote,
        *,
        program: str,
        base: Path,
        environ: Mapping[str, str] | None = None,
        max_processes: int = MAX_PROCESSES,
        request_timeout: float = REQUEST_TIMEOUT,
        disk_reserve: int = DEFAULT_DISK_RESERVE,
        free_space: Callable[[Path], int] = free_bytes,
    ) -> None:
        self.remote = remote
        self.program_name = program
        self.label = f"special remote {remote.name!r} ({program})"
        self.base = base.resolve()
        self.gitdir, bare = find_gitdir(self.base)
        self.tmpdir = self.gitdir / "annex" / "tmp"
        self.spool = SpoolArea(self.tmpdir, disk_reserve, free=free_space)
        self._swept: set[tuple[Path, str]] = set()
        self.partial_dir = self.tmpdir / "annexproxy-partial" / str(remote.uuid)
        env = dict(os.environ if environ is None else environ)
        env["GIT_DIR"] = str(self.gitdir)
        if bare:
            env.pop("GIT_WORK_TREE", None)
        else:
            env["GIT_WORK_TREE"] = str(self.base)
        self._env = env
        self._context = p.ExternalContext(
            uuid=str(remote.uuid),
            gitdir=str(self.gitdir),
            remote_name=remote.name,
            config=dict(remote.params),
            creds=lambda setting: lookup_creds(remote, self.gitdir, self._env, setting),
        )
        self._idle: list[ExternalProgram] = []
        self._slots = asyncio.Semaphore(max_processes)
        self._closed = False
        self.request_timeout = request_timeout
        self.started = 0
        """How many processes were started (for tests and statistics)."""

    # --- processes ----------------------------------------------------------------

    async def _start(self) -> ExternalProgram:
        path = shutil.which(self.program_name, path=self._env.get("PATH"))
        if path is None:
            raise NodeUnavailable(
                f"cannot run {self.program_name} for special remote {self.remote.name!r}: it "
                f"is not installed in PATH ({self._env.get('PATH', '')}); install it on the "
                "gateway"
            )
        try:
            proc = await asyncio.create_subprocess_exec(
                path,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._env,
                cwd=self.base,
                limit=p.MAX_LINE_BYTES + 2,
            )
        except OSError as exc:
            raise NodeUnavailable(
                f"cannot run {path} for special remote {self.remote.name!r}: {exc}; make "
                "sure it is executable and its dependencies are installed"
            ) from exc
        self.started += 1
        program = ExternalProgram(proc, p.ExternalConversation(self._context), self.label)
        try:
            async with self._bounded("PREPARE"):
                await program.start()
        except BaseException:
            await program.close(force=True)
            raise
        return program

    @asynccontextmanager
    async def _bounded(self, what: str) -> AsyncIterator[None]:
        """Bound a request that moves no content by `request_timeout`.

        Raises:
            NodeUnavailable: the program did not answer in time (it is then killed, as
                its conversation is left mid-request).
        """
        try:
            async with asyncio.timeout(self.request_timeout):
                yield
        except TimeoutError:
            raise NodeUnavailable(
                f"{self.label} did not answer {what} within {self.request_timeout:g} s; it "
                "is stopped and started again on next use"
            ) from None

    async def _take(self) -> ExternalProgram:
        """An idle program that is still running, else a new one."""
        while self._idle:
            program = self._idle.pop()
            if program.idle:
                return program
            # It died while idle (killed, crashed on its own): reap it, start another.
            await program.close(force=True)
        return await self._start()

    @asynccontextmanager
    async def program(self) -> AsyncIterator[ExternalProgram]:
        """A prepared program for one request, returned to the pool if still usable.

        Raises:
            NodeUnavailable: no program could be started, or the backend is closed.
        """
        if self._closed:
            raise NodeUnavailable(f"{self.label}: the backend has been closed")
        async with self._slots:
            program = await self._take()
            try:
                yield program
            finally:
                if program.idle and not self._closed:
                    self._idle.append(program)
                else:
                    await program.close(force=True)

    # --- RemoteBackend --------------------------------------------------------------

    def swept(self, directory: Path, what: str) -> bool:
        """Whether ``what`` spools in ``directory`` were swept already (then or now: once)."""
        done = (directory, what) in self._swept
        self._swept.add((directory, what))
        return done

    def _tempfile(self, name: Key, what: str) -> tuple[Path, BinaryIO]:
        try:
            self.tmpdir.mkdir(parents=True, exist_ok=True)
            if not self.swept(self.tmpdir, what):
                sweep(self.tmpdir, what)
            fd, path = tempfile.mkstemp(prefix=temp_prefix(what), dir=self.tmpdir)
        except OSError as exc:
            raise StorageError(
                f"cannot make a temp file in {self.tmpdir} for {name}: {exc}"
            ) from exc
        return Path(path), os.fdopen(fd, "wb")

    def store(self, name: Key, size: int | None) -> AbstractAsyncContextManager[StoreSession]:
        """Spool the object to a temp file; `commit` has the program store it.

        Raises:
            OutOfSpace: spooling ``size`` bytes would eat into annex.diskreserve.
            StorageError: the temp file cannot be made.
        """
        return self._store(name, size, None)

    def store_shared(
        self, name: Key, size: int | None, group: object
    ) -> AbstractAsyncContextManager[StoreSession]:
        """As `store`, keeping one spool for the stores of ``group`` (one fan-out).

        Raises:
            OutOfSpace: spooling ``size`` bytes would eat into annex.diskreserve.
            StorageError: the temp file cannot be made.
        """
        return self._store(name, size, group)

    @asynccontextmanager
    async def _store(
        self, name: Key, size: int | None, group: object | None
    ) -> AsyncIterator[StoreSession]:
        slot = None if group is None else (group, self.tmpdir, str(name))
        spool = None if slot is None else _SHARED.get(slot)
        if spool is None:
            # An object of unknown size claims room as it grows (SpoolClaim.wrote).
            claim = self.spool.claim(str(name), size or 0)
            try:
                path, out = self._tempfile(name, "store")
            except BaseException:
                claim.release()
                raise
            spool = _StoreSpool(path, out, claim)
            if slot is not None:
                _SHARED[slot] = spool
        upload = _Upload(self, name, spool, slot)
        try:
            yield upload
        finally:
            upload.release()

    async def retrieve(self, name: Key, offset: int = 0) -> AsyncGenerator[bytes, None]:
        """Download with TRANSFER RETRIEVE; stream it while it grows when ORDERED.

        The download spool is kept for the next download of ``name`` when this one is
        interrupted (see the module docstring).

        Raises:
            KeyNotPresent: the program does not have the object.
            OutOfSpace: spooling it would eat into annex.diskreserve.
            StorageError: the download failed (possibly after some bytes were yielded).
            NodeUnavailable: the program died or broke the protocol.
        """
        spool = _DownloadSpool(self, name)
        await asyncio.to_thread(spool.open)
        try:
            source = _GrowingFile(spool.path, offset)
            try:
                async for chunk in self._download(name, spool, source):
                    # An object of unknown length (an encrypted one) claims room as it is
                    # read, so a download that outgrows the disk stops at the reserve.
                    grown = len(chunk) if name.size is None else min(len(chunk), spool.claim.left)
                    spool.claim.wrote(grown)
                    yield chunk
            finally:
                source.close()
        finally:
            await asyncio.to_thread(spool.close, keep=spool.partial)

    async def _download(
        self, name: Key, spool: _DownloadSpool, source: _GrowingFile
    ) -> AsyncIterator[bytes]:
        request = p.Transfer(direction=p.Direction.RETRIEVE, key=name, file=str(spool.path))
        async with self.program() as program:
            async with self._bounded("GETORDERED"):
                ordered = await program.is_ordered()
            spool.partial = True  # until the program says the transfer succeeded
            if ordered:
                # Stream the file while the program writes it (git-annex's proxy looks
                # every 40 ms too); the request runs in a task this generator owns.
                waiter = asyncio.ensure_future(program.request(request))
                try:
                    while not waiter.done():
                        chunk = source.read()
                        if chunk:
                            yield chunk
                        else:
                            await asyncio.wait({waiter}, timeout=GROW_POLL)
                finally:
                    if not waiter.done():
                        waiter.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StorageError):
                        await waiter
                response = waiter.result()
            else:
                response = await program.request(request)
            if isinstance(response, p.TransferFailure):
                async with self._bounded("CHECKPRESENT"):
                    present = await program.request(p.CheckPresent(key=name))
        if isinstance(response, p.TransferFailure):
            reason = response.error or "TRANSFER failed with no reason given"
            if isinstance(present, p.CheckPresentFailure):
                spool.partial = False  # nothing worth keeping
                raise KeyNotPresent(f"{self.label} does not have {name}: {reason}", key=str(name))
            raise StorageError(f"{self.label} could not send {name}: {reason}")
        # Complete: not kept once read (a reader that stops early loses nothing worth
        # keeping that the program cannot send again).
        spool.partial = False
        source.follow()
        while chunk := source.read():
            yield chunk

    def local_path(self, name: Key) -> Path | None:
        """None: the program's storage is not a local file we know of."""
        return None

    async def present(self, name: Key) -> bool:
        """CHECKPRESENT.

        Raises:
            NodeUnavailable: CHECKPRESENT-UNKNOWN, or the program failed.
        """
        async with self.program() as program, self._bounded("CHECKPRESENT"):
            response = await program.request(p.CheckPresent(key=name))
        if isinstance(response, p.CheckPresentUnknown):
            raise NodeUnavailable(
                f"{self.label} cannot tell whether it has {name}: "
                f"{response.error or 'CHECKPRESENT failed with no reason given'}"
            )
        return isinstance(response, p.CheckPresentSuccess)

    async def remove(self, name: Key) -> None:
        """REMOVE (the program answers success for an absent object too).

        Raises:
            StorageError: REMOVE-FAILURE.
            NodeUnavailable: the program failed.
        """
        async with self.program() as program, self._bounded("REMOVE"):
            response = await program.request(p.Remove(key=name))
        if isinstance(response, p.RemoveFailure):
            raise StorageError(
                f"{self.label} could not remove {name}: "
                f"{response.error or 'REMOVE failed with no reason given'}"
            )

    async def aclose(self) -> None:
        """End the idle programs (busy ones end when their request does)."""
        self._closed = True
        idle, self._idle = self._idle, []
        for program in idle:
            await program.close(force=False)


async def open_external(
    remote: SpecialRemote, *, base: Path, local: LocalSettings | None = None
) -> RemoteBackend:
    """Open the backend of ``remote``; its program is started on first use.

    Args:
        remote: the special remote (``externaltype`` from remote.log, or git config
            ``remote.NAME.annex-externaltype``).
        base: the gateway repository's top directory (working directory of the program).
        local: the gateway's settings (its annex.diskreserve bounds the spools).

    Raises:
        ConfigError: no ``externaltype``, or ``readonly`` mode (not supported).
    """
    externaltype = remote.setting("externaltype")
    if not externaltype:
        raise ConfigError(
            f"special remote {remote.name!r} has type external but no externaltype; set it "
            f"with 'git annex enableremote {remote.name} externaltype=NAME'"
        )
    if externaltype == "readonly" or remote.params.get("readonly") == "true":
        raise ConfigError(
            f"special remote {remote.name!r} is an external remote in readonly mode (it "
            "downloads from recorded URLs), which annexproxy cannot proxy"
        )
    local = local or LocalSettings()
    return ExternalBackend(
        remote,
        program=f"git-annex-remote-{externaltype}",
        base=base,
        disk_reserve=local.disk_reserve,
    )
