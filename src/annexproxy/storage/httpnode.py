"""`HttpNodeStorage`: a repository behind a P2P-over-HTTP server (annex+http), as a `Storage`.

This is the client side of git-annex's HTTP API (wire.md 5), spoken with aiohttp to
``git annex p2phttp`` or ``annexproxy serve``: one JSON request per operation, a streamed
GET for retrieval, a streamed POST for uploads and a long-poll ``keeplocked`` request per
held content lock. It owns one `aiohttp.ClientSession` (created on first use, closed by
`HttpNodeStorage.aclose`) and converts every aiohttp failure and unexpected HTTP status
into a `StorageError` at this boundary. It knows nothing of clusters or location logs:
``plusuuids`` lists are returned as `Others` for the caller to record.

Size: over the 500-line aim because the URL/JSON helpers (pure, and candidates for a
``p2phttp/client.py`` in the pure core) live here with the three objects handed out.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote, urlsplit

import aiohttp
from yarl import URL

from annexproxy.errors import (
    ConfigError,
    ContentLocked,
    KeyNotPresent,
    NodeUnavailable,
    PartialRemoval,
    StorageError,
    VerificationFailed,
)
from annexproxy.keys import Key
from annexproxy.p2phttp.api import DATA_LENGTH, ROUTE_VERSIONS, HttpError, unwrap
from annexproxy.storage.base import Others, PresenceLog
from annexproxy.uuids import RepoUUID

log = logging.getLogger(__name__)

Params = list[tuple[str, str]]

VERSIONS: Final = (4, 3, 2, 1, 0)  # tried in this order, falling back only on 404 (5.3)
DEFAULT_PORT: Final = 9417
JSON_LIMIT: Final = 1 << 20  # bytes of a JSON answer we are willing to read
EXIT_TIMEOUT: Final = 30.0  # seconds to wait for the answer to an abandoned body
_UNSIGNED = re.compile(r"[0-9]+\Z")
# Asked about during version negotiation when an operation has no key of its own.
PROBE_KEY: Final = Key.parse(
    "SHA256E-s0--e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)


# --- URLs (wire.md 5.2, 6.1) --------------------------------------------------------------


def api_base(annex_url: str, uuid: str) -> URL:
    """The URL below which the API of repository ``uuid`` lives, e.g. ``.../git-annex/U/``.

    Applies the base-path rule of wire.md 6.1: a path of exactly ``/git-annex`` (or none)
    means the root; any other path is a prefix that ``git-annex/U/`` is appended to.

    Raises:
        ConfigError: ``annex_url`` is not an ``annex+http(s)://host[:port]/...`` URL.
    """
    parts = urlsplit(annex_url)
    if parts.scheme not in ("annex+http", "annex+https") or not parts.hostname:
        raise ConfigError(
            f"{annex_url!r} is not an annex+http:// or annex+https:// URL with a host"
        )
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError as exc:
        raise ConfigError(f"{annex_url!r} has a bad port: {exc}") from exc
    path = parts.path
    if path in ("", "/git-annex", "/git-annex/"):
        path = "/"
    elif not path.endswith("/"):
        path += "/"
    path += f"git-annex/{quote(wrap(uuid), safe='')}/"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    scheme = parts.scheme.removeprefix("annex+")
    return URL(f"{scheme}://{host}:{port}{path}", encoded=True)


def wrap(value: str) -> str:
    """Wrap a value as ``[base64url]`` when it must be (wire.md 5.2), else return it.

    Values that are not valid UTF-8 (surrogate-escaped bytes) or that start with ``[``
    are wrapped, as in the spec's example (``[x y].txt`` -> ``[W3ggeV0udHh0]``); a
    superset of the values that would otherwise be misread as wrapped.
    """
    try:
        value.encode("utf-8")
        if not value.startswith("["):
            return value
    except UnicodeEncodeError:
        pass
    raw = value.encode("utf-8", "surrogateescape")
    return "[" + base64.urlsafe_b64encode(raw).decode("ascii") + "]"


def endpoint_url(base: URL, version: int, endpoint: str, params: Params) -> URL:
    """The full, percent-encoded URL of one request (``key`` takes the key in the path).

    Every value is encoded, ``,`` ``&`` ``+`` and space included, as git-annex does.
    """
    path = f"v{version}/{endpoint}"
    query = "&".join(f"{name}={quote(wrap(value), safe='')}" for name, value in params)
    return URL(f"{base}{path}" + (f"?{query}" if query else ""), encoded=True)


def basic_auth(user: str, password: str) -> str:
    """The ``Authorization`` value for HTTP Basic (wire.md 5.8), UTF-8 encoded.

    Raises:
        ConfigError: the user name holds a colon, which Basic cannot carry.
    """
    if ":" in user:
        raise ConfigError(f"HTTP user name {user!r} must not contain ':'")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


# --- JSON answers (wire.md 5.4, "JSON bodies at a glance") ---------------------------------


def _missing(answer: dict[str, object], name: str, kind: str, where: str) -> StorageError:
    return StorageError(f"{where}: answer {answer!r} lacks a {kind} {name!r}")


def _bool(answer: dict[str, object], name: str, where: str) -> bool:
    value = answer.get(name)
    if not isinstance(value, bool):
        raise _missing(answer, name, "boolean", where)
    return value


def _int(answer: dict[str, object], name: str, where: str) -> int:
    value = answer.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _missing(answer, name, "non-negative integer", where)
    return value


def _str(answer: dict[str, object], name: str, where: str) -> str:
    value = answer.get(name)
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        raise _missing(answer, name, "token", where)
    return value


def _plus(answer: dict[str, object], where: str) -> Others:
    """The ``plusuuids`` list (absent before v2), accepting ``[base64url]`` entries."""
    value = answer.get("plusuuids", [])
    if not isinstance(value, list) or not all(isinstance(u, str) and u for u in value):
        raise StorageError(f"{where}: bad plusuuids in {answer!r}")
    try:
        return tuple(RepoUUID(unwrap(u)) for u in value)
    except HttpError as exc:
        raise StorageError(f"{where}: bad plusuuids in {answer!r}: {exc}") from exc


class _StatusError(StorageError):
    """A request got an HTTP status other than 200 (used to single out 500 on remove)."""

    def __init__(self, message: str, *, status: int, body: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


# --- the objects handed out ---------------------------------------------------------------


class _HttpSource:
    """A streamed GET response; valid only when exactly the declared length arrives."""

    def __init__(self, resp: aiohttp.ClientResponse, offset: int, length: int, where: str) -> None:
        self._resp = resp
        self._offset = offset
        self._length = length
        self._where = where
        self._received = 0
        self._overlong = False
        self.done = length == 0

    @property
    def length(self) -> int:
        return self._length

    @property
    def offset(self) -> int:
        return self._offset

    @property
    def fd(self) -> int | None:
        return None

    async def chunks(self, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        if self.done:
            return
        try:
            while self._received < self._length:
                want = min(chunk_size, self._length - self._received)
                with _map_errors(f"reading from {self._where}"):
                    piece = await self._resp.content.read(want)
                if not piece:
                    break  # short body: the server signals invalid content (5.4.1)
                self._received += len(piece)
                yield piece
            if self._received == self._length:
                with _map_errors(f"reading from {self._where}"):
                    self._overlong = bool(await self._resp.content.read(1))
        finally:
            self.done = True

    def unchanged(self) -> bool:
        return self.done and self._received == self._length and not self._overlong


class _HttpUpload:
    """A ``put`` whose body is fed from `write` through a queue (wire.md 5.4.8).

    The request starts with the first byte and ends in `commit`. The last byte of the
    object is held back until `commit`, so that ``sender_valid=False`` can be signalled
    the git-annex way: by sending one byte less than announced.
    """

    def __init__(
        self, node: HttpNodeStorage, key: Key, start: int | Others, af: str | None
    ) -> None:
        self._node = node
        self._key = key
        self._af = af
        self._already = start if isinstance(start, tuple) else None
        self._offset = (key.size or 0) if isinstance(start, tuple) else start
        self._sent = 0
        self._held = b""
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=1)
        self._task: asyncio.Task[tuple[bool, Others]] | None = None
        self.stored = False

    @property
    def offset(self) -> int:
        return self._offset

    @property
    def already_have(self) -> Others | None:
        return self._already

    def _announced(self) -> int:
        if self._key.size is None:
            raise StorageError(
                f"{self._key} has no size field; an HTTP upload must announce its length"
            )
        return max(0, self._key.size - self._offset)

    def _start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._request())

    async def _request(self) -> tuple[bool, Others]:
        async def body() -> AsyncIterator[bytes]:
            while (chunk := await self._queue.get()) is not None:
                yield chunk

        params = [("key", str(self._key)), *self._node.common_params()]
        if self._af is not None:
            params.append(("associatedfile", self._af))
        params.append(("offset", str(self._offset)))
        headers = {DATA_LENGTH: str(self._announced()), "Content-Type": "application/octet-stream"}
        answer = await self._node.call("put", params, data=body(), headers=headers)
        where = f"put of {self._key} to {self._node.where}"
        return _bool(answer, "stored", where), _plus(answer, where)

    async def _feed(self, chunk: bytes | None) -> bool:
        """Hand a chunk (None: the end) to the body; False if the request already ended.

        Raises:
            StorageError: the request failed.
        """
        assert self._task is not None
        put = asyncio.ensure_future(self._queue.put(chunk))
        try:
            await asyncio.wait({put, self._task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            put.cancel()
        if put.done() and not put.cancelled():
            return True
        self._task.result()  # raises the request's error, if it had one
        return False

    async def write(self, data: bytes) -> None:
        if self._already is not None or not data:
            return
        announced = self._announced()
        total = self._sent + len(self._held) + len(data)
        if total > announced:
            raise VerificationFailed(
                f"{self._key}: more bytes than its size",
                key=str(self._key),
                expected=str(announced),
                got=str(total),
            )
        chunk = self._held + data
        chunk, self._held = (chunk[:-1], chunk[-1:]) if total == announced else (chunk, b"")
        self._start()
        if chunk and not await self._feed(chunk):
            raise StorageError(f"{self._node.where} answered the put of {self._key} too early")
        self._sent += len(chunk)

    async def commit(self, *, sender_valid: bool) -> Others:
        if self._already is not None:
            self.stored = True
            return self._already
        announced = self._announced()
        if self._task is None and (announced > 0 or not sender_valid):
            raise self._failed(f"{self._sent} of {announced} bytes sent", announced, "")
        self._start()
        if self._held and sender_valid and await self._feed(self._held):
            self._sent, self._held = self._sent + len(self._held), b""
        await self._feed(None)
        assert self._task is not None
        stored, others = await self._task
        if self._sent != announced:
            raise self._failed(f"{self._sent} of {announced} bytes sent", announced, "")
        if not stored:
            raise self._failed(f"{self._node.where} did not store it", announced, "stored:false")
        self.stored = True
        await self._node.log_presence(self._key, True)
        return others

    def _failed(self, why: str, announced: int, got: str) -> VerificationFailed:
        return VerificationFailed(
            f"upload of {self._key} failed: {why}",
            key=str(self._key),
            expected=str(announced),
            got=got or str(self._sent),
        )

    async def abandon(self, *, cut: bool) -> None:
        """End an uncommitted upload; the server keeps the bytes sent for a resume.

        Ending the body short is what a cut connection means to the server (INVALID,
        partial bytes kept, wire.md 5.4.8); doing it gracefully lets us wait until the
        server is done with the key. ``cut`` (on cancellation) closes the connection.
        """
        task = self._task
        if task is None or task.done():
            return
        if not cut:
            with contextlib.suppress(StorageError, TimeoutError):
                await asyncio.wait_for(self._feed(None), EXIT_TIMEOUT)
            await asyncio.wait({task}, timeout=EXIT_TIMEOUT)
        await _finish(task, f"abandoned put of {self._key}")


class _HttpLock:
    """A lock kept by an open ``keeplocked`` request (wire.md 5.4.10)."""

    def __init__(self, node: HttpNodeStorage, key: Key, lock_id: str) -> None:
        self._node = node
        self._key = key
        self._lock_id = lock_id
        self._first_sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._unlock = asyncio.Event()
        self._task: asyncio.Task[dict[str, object]] | None = None
        self._released = False

    async def _body(self) -> AsyncIterator[bytes]:
        yield b'{"unlock":false}\n'
        if not self._first_sent.done():
            self._first_sent.set_result(None)
        await self._unlock.wait()
        yield b'{"unlock":true}\n'

    async def start(self) -> None:
        params = [("lockid", self._lock_id), *self._node.common_params()]
        headers = {"Content-Type": "application/json;charset=utf-8"}
        call = self._node.call("keeplocked", params, data=self._body(), headers=headers)
        self._task = task = asyncio.get_running_loop().create_task(call)
        waiters: set[asyncio.Future[Any]] = {self._first_sent, task}
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            self._released = True
            task.result()  # its error, if any
            raise StorageError(
                f"{self._node.where} ended keeplocked for {self._key} at once; the lock is not held"
            )

    async def release(self) -> None:
        """Send ``{"unlock":true}``, end the body and wait for the answer (idempotent)."""
        if self._released or self._task is None:
            return
        self._released = True
        task = self._task
        if task.done():
            log.warning("the lock on %s at %s was lost early", self._key, self._node.where)
        self._unlock.set()
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            task.cancel()  # a cut keeplocked connection releases the lock too
            raise
        finally:
            self._node.forget_lock(self)
        # The server releases a lock whose keeplocked connection breaks: only log.
        await _finish(task, f"releasing the lock on {self._key}")

    async def abort(self) -> None:
        """Cut the keeplocked connection (the server then releases the lock)."""
        self._released = True
        if self._task is not None:
            await _finish(self._task, f"cutting the lock on {self._key}")


async def _finish(task: asyncio.Task[Any], what: str) -> None:
    """Cancel ``task`` if it still runs, wait for it, and log (not raise) its failure."""
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("%s: %s", what, exc)


@contextlib.contextmanager
def _map_errors(what: str) -> Iterator[None]:
    """Turn aiohttp and socket failures into `NodeUnavailable` (STYLE habit 4)."""
    try:
        yield
    except aiohttp.ClientConnectorError as exc:
        raise NodeUnavailable(f"{what}: cannot connect: {exc}; is the server running?") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise NodeUnavailable(f"{what}: connection failed: {exc!r}") from exc


# --- the storage --------------------------------------------------------------------------


class HttpNodeStorage:
    """A `Storage` whose objects live behind an annex+http server.

    Construct it with the node's UUID, its annex+http(s) URL and our own UUID (sent as
    ``clientuuid``); close it with `aclose` or use it as an async context manager. Each
    held content lock keeps one connection (of ``max_connections``) open.
    """

    def __init__(
        self,
        uuid: RepoUUID,
        annex_url: str,
        *,
        client_uuid: RepoUUID,
        credentials: tuple[str, str] | None = None,
        bypass: tuple[RepoUUID, ...] = (),
        presence_log: PresenceLog | None = None,
        max_connections: int = 32,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float = 30.0,
    ) -> None:
        """Reach repository ``uuid`` through the server at ``annex_url``.

        Raises:
            ConfigError: the URL is not an annex+http(s) URL, or max_connections < 1.
        """
        if max_connections < 1:
            raise ConfigError("max_connections must be at least 1")
        self._uuid = uuid
        self._base = api_base(annex_url, uuid)
        self.where = f"{uuid} at {annex_url}"
        self._client_uuid = client_uuid
        self._headers = {"Accept-Encoding": "identity"}  # lengths are of raw bytes (5.2)
        if credentials is not None:
            self._headers["Authorization"] = basic_auth(*credentials)
        self._bypass = bypass
        self._presence_log = presence_log
        self._max_connections = max_connections
        self._ssl_context = ssl_context
        self._connect_timeout = connect_timeout
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._version: int | None = None
        self._negotiation = asyncio.Lock()
        self._key_locks: dict[Key, tuple[asyncio.Lock, int]] = {}
        self._locks: set[_HttpLock] = set()

    @property
    def uuid(self) -> RepoUUID:
        """The node's repository UUID."""
        return self._uuid

    @property
    def version(self) -> int | None:
        """The API version the server answered to (None until the first request)."""
        return self._version

    async def __aenter__(self) -> HttpNodeStorage:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release held locks (cutting them if the server does not answer) and close."""
        self._closed = True
        for lock in list(self._locks):
            try:
                await asyncio.wait_for(lock.release(), 5.0)
            except TimeoutError:
                await lock.abort()
        self._locks.clear()
        if self._session is not None:
            await self._session.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._closed:
            raise StorageError(f"the storage for {self.where} is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, ssl=self._ssl_context or True
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout),
            )
        return self._session

    def common_params(self) -> Params:
        """``clientuuid`` and the ``bypass`` list, sent with every request."""
        return [("clientuuid", self._client_uuid), *(("bypass", u) for u in self._bypass)]

    async def log_presence(self, key: Key, present: bool) -> None:
        """Tell the presence log (if any) that ``key`` arrived or left."""
        if self._presence_log is not None:
            await self._presence_log(key, present)

    def forget_lock(self, lock: _HttpLock) -> None:
        """Stop tracking a released lock."""
        self._locks.discard(lock)

    # --- requests and version negotiation (wire.md 5.3) ---------------------------------

    async def _post(
        self,
        version: int,
        endpoint: str,
        params: Params,
        data: AsyncIterator[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> bytes:
        """POST and read the (bounded) answer; raise `_StatusError` unless it is 200."""
        url = endpoint_url(self._base, version, endpoint, params)
        what = f"{endpoint} at {self.where}"
        with _map_errors(what):
            async with self._http().post(url, data=data, headers=headers) as resp:
                body = await resp.content.read(JSON_LIMIT + 1)
                while len(body) <= JSON_LIMIT and (more := await resp.content.read(JSON_LIMIT)):
                    body += more
                if resp.status != 200:
                    raise _status_error(what, resp.status, body)
                if len(body) > JSON_LIMIT:
                    raise StorageError(f"{what}: answer longer than {JSON_LIMIT} bytes")
                return body

    async def call(
        self,
        endpoint: str,
        params: Params,
        *,
        data: AsyncIterator[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, object]:
        """Make one JSON request at the negotiated version and decode the answer.

        Until a version is known, bodiless requests are tried from v4 down and fall back
        on 404; a request with a body (``data``) or one missing from older versions falls
        back to a checkpresent probe at those versions. The version that answered is kept
        for the life of the storage.

        Raises:
            NodeUnavailable: the server cannot be reached, or knows no such repository.
            StorageError: any other failure, or the server's version lacks ``endpoint``.
        """
        version = self._version
        if version is None:
            async with self._negotiation:
                if self._version is None:
                    real = None if data is not None else endpoint
                    body = await self._negotiate(real, params)
                    if body is not None:
                        return _decode(body, f"{endpoint} at {self.where}")
                version = self._version
                assert version is not None
        if version not in ROUTE_VERSIONS[endpoint]:
            raise StorageError(
                f"{self.where} speaks API v{version}, which has no {endpoint}; "
                f"it needs v{min(ROUTE_VERSIONS[endpoint])} or later"
            )
        body = await self._post(version, endpoint, params, data, headers)
        return _decode(body, f"{endpoint} at {self.where}")

    async def _negotiate(self, endpoint: str | None, params: Params) -> bytes | None:
        """Find the newest version the server answers; return the real answer if one was made."""
        for version in VERSIONS:
            real = endpoint is not None and version in ROUTE_VERSIONS[endpoint]
            try:
                if real:
                    assert endpoint is not None
                    body = await self._post(version, endpoint, params)
                else:
                    key = next((v for n, v in params if n == "key"), str(PROBE_KEY))
                    probe_params = [("key", key), *self.common_params()]
                    await self._post(version, "checkpresent", probe_params)
            except _StatusError as exc:
                if exc.status == 404:
                    continue
                raise
            self._version = version
            return body if real else None
        raise NodeUnavailable(
            f"{self.where}: 404 for API v4 to v0; the server does not serve this UUID "
            "(check the node's UUID and annex URL)"
        )

    async def _version_for(self, key: Key) -> int:
        if self._version is None:
            await self.call("checkpresent", [("key", str(key)), *self.common_params()])
        assert self._version is not None
        return self._version

    # --- Storage ------------------------------------------------------------------------

    async def checkpresent(self, key: Key) -> bool:
        """POST checkpresent.

        Raises:
            StorageError: the server could not say (NodeUnavailable if unreachable).
        """
        answer = await self.call("checkpresent", [("key", str(key)), *self.common_params()])
        return _bool(answer, "present", f"checkpresent at {self.where}")

    @asynccontextmanager
    async def retrieve(self, key: Key, offset: int = 0) -> AsyncIterator[_HttpSource]:
        """GET the object from ``offset``, streamed.

        Raises:
            KeyNotPresent: the server sent nothing for a key that has bytes there.
            StorageError: the request failed (NodeUnavailable if unreachable).
        """
        version = await self._version_for(key)
        params = self.common_params() + ([("offset", str(offset))] if offset else [])
        url = endpoint_url(self._base, version, "key/" + quote(wrap(str(key)), safe=""), params)
        what = f"GET {key} from {self.where}"
        with _map_errors(what):
            resp = await self._http().get(url)
        source: _HttpSource | None = None
        try:
            if resp.status != 200:
                with _map_errors(what):
                    raise _status_error(what, resp.status, await resp.content.read(1024))
            length = _data_length(resp.headers.get(DATA_LENGTH), what)
            if length == 0 and await self._absent(key, offset, resp):
                raise KeyNotPresent(f"{key} is not on {self.where}", key=str(key))
            source = _HttpSource(resp, offset, length, self.where)
            yield source
        finally:
            if source is not None and source.unchanged():
                resp.release()
            else:
                resp.close()  # unread or bad bytes: the connection cannot be reused

    async def _absent(self, key: Key, offset: int, resp: aiohttp.ClientResponse) -> bool:
        """Length 0 means "not present" unless nothing was left to send (5.4.1)."""
        if key.size is not None:
            return offset < key.size
        resp.release()
        return not await self.checkpresent(key)

    @asynccontextmanager
    async def upload(
        self, key: Key, associated_file: str | None = None
    ) -> AsyncIterator[_HttpUpload]:
        """putoffset, then a put streamed from the writes.

        Leaving without commit ends the body short, which the server treats like a cut
        connection (it keeps the bytes for a resume); cancellation cuts the connection.
        """
        async with self._key_lock(key):
            upload = _HttpUpload(self, key, await self._putoffset(key), associated_file)
            try:
                yield upload
            except BaseException as exc:
                await upload.abandon(cut=not isinstance(exc, Exception))
                raise
            if not upload.stored:
                await upload.abandon(cut=False)

    async def _putoffset(self, key: Key) -> int | Others:
        params = [("key", str(key)), *self.common_params()]
        await self._version_for(key)
        if self._version == 0:
            return 0  # v0 has no putoffset; git-annex then starts at 0 (5.3)
        answer = await self.call("putoffset", params)
        where = f"putoffset at {self.where}"
        if answer.get("alreadyhave") is True:
            return _plus(answer, where)
        return _int(answer, "offset", where)

    @asynccontextmanager
    async def _key_lock(self, key: Key) -> AsyncIterator[None]:
        """Uploads of one key are exclusive (base.Upload); the server does not hold them."""
        lock, users = self._key_locks.get(key, (asyncio.Lock(), 0))
        self._key_locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._key_locks[key]
            if users == 1:
                del self._key_locks[key]
            else:
                self._key_locks[key] = (lock, users - 1)

    async def lock_content(self, key: Key) -> _HttpLock:
        """lockcontent, then keep the lock with an open keeplocked request.

        Raises:
            KeyNotPresent: nothing to lock.
            ContentLocked: the server would not lock content it has.
            StorageError: the request failed (NodeUnavailable if unreachable).
        """
        answer = await self.call("lockcontent", [("key", str(key)), *self.common_params()])
        where = f"lockcontent at {self.where}"
        if not _bool(answer, "locked", where):
            if await self.checkpresent(key):
                raise ContentLocked(f"{self.where} would not lock {key}", key=str(key))
            raise KeyNotPresent(f"{key} is not on {self.where}", key=str(key))
        lock = _HttpLock(self, key, _str(answer, "lockid", where))
        self._locks.add(lock)
        try:
            await lock.start()
        except BaseException:
            self._locks.discard(lock)
            await lock.abort()
            raise
        return lock

    async def remove(self, key: Key, *, before: int | None = None) -> Others:
        """remove, or remove-before with ``timestamp=before``.

        Asks checkpresent first: the server answers ``removed:true`` for absent content
        too, and the presence log must only hear of real removals.

        Raises:
            ContentLocked: the content is locked there.
            PartialRemoval: not removed, but removed from the listed other UUIDs.
            StorageError: the deadline passed, or the removal failed.
        """
        if not await self.checkpresent(key):
            return ()
        params = [("key", str(key)), *self.common_params()]
        endpoint = "remove" if before is None else "remove-before"
        if before is not None:
            params.append(("timestamp", str(before)))
        try:
            answer = await self.call(endpoint, params)
            removed = _bool(answer, "removed", f"{endpoint} at {self.where}")
            others = _plus(answer, f"{endpoint} at {self.where}")
        except _StatusError as exc:
            if exc.status != 500:
                raise
            removed, others = False, ()  # git-annex's answer to locked content (5.4.4)
        if not removed:
            if others:
                raise PartialRemoval(
                    f"{self.where} removed {key} only from {' '.join(others)}", others=others
                )
            if before is not None:
                raise StorageError(
                    f"{self.where} did not remove {key} before {before}: the deadline passed "
                    "or the content is locked; lock the other copies again and retry"
                )
            if await self.checkpresent(key):
                raise ContentLocked(f"{self.where} refused to remove {key}", key=str(key))
            raise StorageError(f"{self.where} said it did not remove {key}, yet it is gone")
        await self.log_presence(key, False)
        return others

    async def timestamp(self) -> int:
        """POST gettimestamp (v3 and later).

        Raises:
            StorageError: the request failed, or the server is older than v3.
        """
        answer = await self.call("gettimestamp", self.common_params())
        return _int(answer, "timestamp", f"gettimestamp at {self.where}")


def _status_error(what: str, status: int, body: bytes) -> StorageError:
    text = body[:200].decode("utf-8", "replace").strip()
    if status in (401, 403):
        return _StatusError(
            f"{what}: HTTP {status}: not allowed; give the node's credentials "
            "(user, password) or check the server's --authenv/--unauth options",
            status=status,
            body=text,
        )
    if status in (502, 503):
        return NodeUnavailable(f"{what}: HTTP {status} {text}; the server's proxy is busy or down")
    return _StatusError(f"{what}: HTTP {status} {text}".rstrip(), status=status, body=text)


def _data_length(value: str | None, what: str) -> int:
    if value is None or not _UNSIGNED.match(value.strip()):
        raise StorageError(f"{what}: missing or bad {DATA_LENGTH} header {value!r}")
    return int(value.strip())


def _decode(body: bytes, what: str) -> dict[str, object]:
    try:
        answer = json.loads(body)
    except ValueError as exc:
        raise StorageError(f"{what}: the answer is not JSON: {body[:200]!r}") from exc
    if not isinstance(answer, dict):
        raise StorageError(f"{what}: the answer is not a JSON object: {body[:200]!r}")
    return answer
