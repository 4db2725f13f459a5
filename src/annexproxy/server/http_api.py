"""The P2P-over-HTTP API (``annexproxy serve``) as an aiohttp application.

Parses each request with the pure `annexproxy.p2phttp` modules, decides access with the
`AuthPolicy`, and runs the operation on the repository's `Storage`. Downloads of local
objects go out with sendfile and support ``Range``/``HEAD``; uploads stream from the
request body into the object store, verified before ``stored: true``. Content locks taken
by ``lockcontent`` live in `LockTable` until ``keeplocked`` releases them, the client goes
away, or 10 minutes pass. When more than ``max_transfers`` requests are under way the
server answers 503 with Retry-After instead of queueing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid as uuidlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import unquote

import aiohttp
from aiohttp import web

from annexproxy.errors import (
    ContentLocked,
    KeyNotPresent,
    PartialRemoval,
    StorageError,
    VerificationFailed,
)
from annexproxy.keys import Key
from annexproxy.p2phttp import api
from annexproxy.p2phttp.api import ApiRequest, HttpError
from annexproxy.p2phttp.auth import AuthPolicy, parse_authorization
from annexproxy.server.served import ServedRepositories
from annexproxy.storage.base import ContentLock, Others, Storage, upload_offset
from annexproxy.uuids import RepoUUID

LOCK_EXPIRY = 600.0  # seconds a lock lives without keeplocked (wire.md 5.4.9)
BODY_IDLE_TIMEOUT = 300.0  # a client that sends nothing for this long is dropped
CHUNK = 1 << 20
# Bodies up to this size are read and written in one piece: asyncio's sendfile costs
# more than it saves for them (it pauses reading, waits for the buffer to drain, adds a
# writer), and small files are where per-request cost shows.
SMALL_BODY = 64 << 10
JSON_TYPE = "application/json;charset=utf-8"
log = logging.getLogger("annexproxy.http")


@dataclass(slots=True)
class _HeldLock:
    lock: ContentLock
    expiry: asyncio.TimerHandle | None = None


@dataclass(slots=True)
class LockTable:
    """Locks taken by ``lockcontent``, by lock id."""

    held: dict[str, _HeldLock] = field(default_factory=dict)

    def add(self, lock: ContentLock) -> str:
        """Remember a lock; it is released after `LOCK_EXPIRY` unless kept."""
        lock_id = str(uuidlib.uuid4())
        held = _HeldLock(lock)
        loop = asyncio.get_running_loop()
        held.expiry = loop.call_later(
            LOCK_EXPIRY, lambda: asyncio.ensure_future(self.release(lock_id))
        )
        self.held[lock_id] = held
        return lock_id

    def keep(self, lock_id: str) -> bool:
        """Cancel the expiry of a lock now kept by keeplocked; False if it is unknown."""
        held = self.held.get(lock_id)
        if held is None:
            return False
        if held.expiry is not None:
            held.expiry.cancel()
            held.expiry = None
        return True

    async def release(self, lock_id: str) -> None:
        """Release a lock (idempotent)."""
        held = self.held.pop(lock_id, None)
        if held is None:
            return
        if held.expiry is not None:
            held.expiry.cancel()
        await held.lock.release()

    async def release_all(self) -> None:
        """Release every lock (server shutdown)."""
        for lock_id in list(self.held):
            await self.release(lock_id)


def _json(body: dict[str, object]) -> web.Response:
    return web.Response(
        body=json.dumps(body, sort_keys=True, separators=(",", ":")).encode(),
        headers={"Content-Type": JSON_TYPE},
    )


def _segments(request: web.Request, mount: str) -> list[str]:
    raw = request.rel_url.raw_path
    rest = raw[len(mount) :] if raw.startswith(mount) else None
    if rest is None:
        raise HttpError(404)
    # Keep empty segments ("/git-annex//v4/..." has an empty server UUID: 400), but not
    # the one after a trailing slash, which git-annex's server ignores.
    parts = rest.split("/")
    if parts[-1] == "":
        parts.pop()
    return [unquote(s) for s in parts]


@dataclass(slots=True)
class HttpApi:
    """The handlers of the API, bound to the served repositories and the policy."""

    repositories: ServedRepositories
    policy: AuthPolicy
    max_transfers: int = 512
    locks: LockTable = field(default_factory=LockTable)
    mount: str = "/git-annex/"
    _active: int = 0
    _on_change: Callable[[str], None] | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Entry point for every request below the mount point."""
        try:
            parsed = api.parse_request(
                request.method,
                _segments(request, self.mount),
                api.parse_query(request.rel_url.raw_query_string),
                request.headers,
            )
            authorization = request.headers.get("Authorization")
            if authorization is not None:
                parse_authorization(authorization)  # a malformed header is 400, before 404
            served = await self.repositories.get(parsed.server_uuid, parsed.bypass)
            if served is None:
                raise HttpError(404)
            self.policy.decide(parsed.endpoint, authorization, tls=request.secure)
            if parsed.endpoint in ("lockcontent", "keeplocked"):
                return await self._dispatch(parsed, served.storage, request)
            if self._active >= self.max_transfers:
                raise HttpError(503, "server busy; retry", headers={"Retry-After": "1"})
            self._active += 1
            try:
                return await self._dispatch(parsed, served.storage, request)
            finally:
                self._active -= 1
        except HttpError as exc:
            return web.Response(status=exc.status, text=exc.body or None, headers=exc.headers)
        except StorageError as exc:
            log.warning("%s %s failed: %s", request.method, request.path, exc)
            return web.Response(status=500, text="Something went wrong")

    async def _dispatch(
        self, req: ApiRequest, storage: Storage, request: web.Request
    ) -> web.StreamResponse:
        key = req.key
        match req.endpoint:
            case "key":
                assert key is not None
                return await self._download(req, storage, key, request)
            case "checkpresent":
                assert key is not None
                return _json(api.checkpresent_body(await storage.checkpresent(key)))
            case "remove" | "remove-before":
                assert key is not None
                removed, others = await self._remove(storage, key, req)
                return _json(api.remove_body(req.version, removed, others))
            case "gettimestamp":
                return _json(api.timestamp_body(await storage.timestamp()))
            case "putoffset":
                assert key is not None
                offset, others = await upload_offset(storage, key)
                return _json(api.putoffset_body(req.version, offset, others))
            case "put":
                assert key is not None
                return await self._put(req, storage, key, request)
            case "lockcontent":
                assert key is not None
                return _json(api.lockcontent_body(await self._lock(storage, key)))
            case "keeplocked":
                assert req.lock_id is not None
                await self._keeplocked(req.lock_id, request)
                return _json(api.keeplocked_body())
        raise HttpError(404)

    # --- operations -----------------------------------------------------------------

    async def _remove(self, storage: Storage, key: Key, req: ApiRequest) -> tuple[bool, Others]:
        try:
            others = await storage.remove(key, before=req.timestamp)
        except PartialRemoval as exc:
            return False, tuple(RepoUUID(u) for u in exc.others)
        except ContentLocked:
            # git-annex's server answers 500 here; a clear "not removed" is better (5.4.4).
            return False, ()
        except StorageError as exc:
            if req.endpoint == "remove-before":
                return False, ()
            raise exc
        self._changed(storage)
        return True, others

    async def _lock(self, storage: Storage, key: Key) -> str | None:
        try:
            lock = await storage.lock_content(key)
        except (KeyNotPresent, ContentLocked):
            return None
        return self.locks.add(lock)

    async def _keeplocked(self, lock_id: str, request: web.Request) -> None:
        if not self.locks.keep(lock_id):
            return
        try:
            while True:
                line = await request.content.readline()
                if not line:
                    break  # end of body, or the client went away
                with contextlib.suppress(ValueError):
                    if json.loads(line).get("unlock") is True:
                        break
        except (ConnectionError, asyncio.CancelledError):
            raise
        finally:
            await self.locks.release(lock_id)

    async def _put(
        self, req: ApiRequest, storage: Storage, key: Key, request: web.Request
    ) -> web.StreamResponse:
        length = req.data_length
        assert length is not None  # parse_request requires it for put
        if req.data_present:
            return _json(api.put_body(req.version, await storage.checkpresent(key)))
        stored = False
        others: Others = ()
        async with storage.upload(key, req.associated_file) as upload:
            already = upload.already_have
            if already is not None:
                await _drain(request)
                return _json(api.put_body(req.version, True, already))
            skip = upload.offset - (req.offset or 0)
            if skip < 0:
                # We hold less than the client thinks. Like git-annex, take the bytes
                # marked invalid: verification fails and the partial content is
                # discarded, so the next putoffset says 0 (wire.md 5.4.8).
                await _receive(request, upload.write, skip=0, limit=length)
                with contextlib.suppress(VerificationFailed):
                    await upload.commit(sender_valid=False)
                return _json(api.put_body(req.version, False))
            received = await _receive(request, upload.write, skip=skip, limit=length)
            if received == length:
                try:
                    others = await upload.commit(sender_valid=True)
                    stored = True
                except VerificationFailed as exc:
                    log.info("put %s refused: %s", key, exc)
        if stored:
            self._changed(storage)
        return _json(api.put_body(req.version, stored, others))

    async def _download(
        self, req: ApiRequest, storage: Storage, key: Key, request: web.Request
    ) -> web.StreamResponse:
        offset = req.offset or 0
        try:
            async with storage.retrieve(key, offset) as source:
                return await _send_object(
                    request, source.fd, source.offset, source.length, source.chunks()
                )
        except KeyNotPresent:
            return await _send_object(request, None, 0, 0, _nothing())

    def _changed(self, storage: Storage) -> None:
        if self._on_change is not None:
            self._on_change(storage.uuid)


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover


async def _drain(request: web.Request) -> None:
    while await request.content.read(CHUNK):
        pass


async def _receive(
    request: web.Request,
    write: Callable[[bytes], Awaitable[None]],
    *,
    skip: int,
    limit: int,
) -> int:
    """Stream the request body into ``write``, skipping ``skip`` bytes; return the count.

    Returns ``limit + 1`` when the body is longer than announced (wire.md 5.4.8).
    """
    received = 0
    while True:
        async with asyncio.timeout(BODY_IDLE_TIMEOUT):
            chunk = await request.content.read(CHUNK)
        if not chunk:
            return received
        received += len(chunk)
        if received > limit:
            await _drain(request)
            return limit + 1
        if skip:
            dropped = min(skip, len(chunk))
            chunk, skip = chunk[dropped:], skip - dropped
        if chunk:
            await write(chunk)


def _parse_range(header: str | None, length: int) -> tuple[int, int] | None:
    """Parse a single ``bytes=a-b`` range against ``length``; None means the whole body.

    Raises:
        HttpError: 416 for a range that cannot be satisfied.
    """
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[6:].strip().partition("-")
    try:
        if first == "":
            count = int(last)
            start, end = max(0, length - count), length - 1
        else:
            start = int(first)
            end = int(last) if last else length - 1
    except ValueError:
        return None
    end = min(end, length - 1)
    if start > end or start >= length:
        raise HttpError(416, headers={"Content-Range": f"bytes */{length}"})
    return start, end


async def _send_object(
    request: web.Request,
    fd: int | None,
    offset: int,
    length: int,
    chunks: AsyncIterator[bytes],
) -> web.StreamResponse:
    """Answer with the object: ``fd`` (an open file) from ``offset``, else ``chunks``."""
    headers = {
        "Content-Type": "application/octet-stream",
        "X-git-annex-data-length": str(length),
        "Accept-Ranges": "bytes",
    }
    start, count, status = 0, length, 200
    byte_range = _parse_range(request.headers.get("Range"), length) if fd is not None else None
    if byte_range is not None:
        start, end = byte_range
        count, status = end - start + 1, 206
        headers["Content-Range"] = f"bytes {start}-{end}/{length}"
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = count
    await response.prepare(request)
    if request.method == "HEAD" or count == 0:
        await response.write_eof()
        return response
    try:
        if fd is not None and count <= SMALL_BODY:
            body = os.pread(fd, count, offset + start)
            if len(body) < count:
                # The length is promised in the headers: only closing can tell the client.
                log.warning("%s: the object file ended early; closing", request.path)
                if request.transport is not None:
                    request.transport.close()
                return response
            await response.write(body)
        elif fd is not None and request.transport is not None:
            # A file object over the source's descriptor (closefd=False: the source owns
            # it); wrapping a descriptor does no I/O.
            with open(fd, "rb", closefd=False) as fobj:  # noqa: ASYNC230
                await asyncio.get_running_loop().sendfile(
                    request.transport, fobj, offset + start, count
                )
        else:
            async for chunk in chunks:
                await response.write(chunk)
        await response.write_eof()
    except (ConnectionError, aiohttp.ClientConnectionResetError) as exc:
        # The client went away mid-download; nothing to answer, nothing to clean up.
        log.info("download of %s cut short by the client: %s", request.path, exc)
        if request.transport is not None:
            request.transport.close()
    return response


def make_app(handlers: HttpApi) -> web.Application:
    """The aiohttp application serving the API below ``/git-annex/``."""
    app = web.Application(client_max_size=0)
    app.router.add_route("*", "/git-annex/{tail:.*}", handlers.handle)

    async def close_locks(_app: web.Application) -> None:
        await handlers.locks.release_all()

    app.on_shutdown.append(close_locks)
    return app
