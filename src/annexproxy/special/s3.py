"""The ``S3``-type special remote backend: objects in a bucket, named as git-annex names them.

What git-annex's S3 remote does, and so what this module does (facts from git-annex's
``Remote/S3.hs``, ``Remote/Helper/AWS.hs`` and ``Creds.hs``):

* An object is stored under ``fileprefix + serialised key`` in ``bucket`` (the
  ``bucket`` field lowercased; ``<remote name>-<uuid>`` when none was given, which
  ``initremote`` records in remote.log anyway).
* The endpoint is ``host`` (default ``s3.amazonaws.com``, then the host follows
  ``datacenter``: ``US`` -> ``s3.amazonaws.com``, ``EU`` -> ``s3-eu-west-1...``, else
  ``s3-<datacenter>.amazonaws.com``), ``port`` (default 80; 80 with ``protocol=https``
  means 443) and ``protocol`` (default https only on port 443). ``requeststyle=path``
  asks for path-style URLs. Requests are signed with v4 when ``signature=v4``, or by
  default on Amazon's own host; other hosts get v2 by default; ``signature=anonymous``
  sends unsigned requests.
* ``partsize`` (a size such as ``1GiB``): objects larger than it are uploaded as a
  multipart upload of parts of that size.
* Credentials: ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` when both are set, else
  the file ``.git/annex/creds/<uuid>`` (two lines: key id, secret), else ``s3creds=`` in
  remote.log (base64 of those two lines; stored there with ``embedcreds=yes`` and no
  encryption; gpg-encrypted ones are refused here). ``AWS_SESSION_TOKEN`` goes with them.
* Stores send ``x-amz-storage-class`` (``storageclass=``, default ``STANDARD``), the
  ``x-amz-meta-*`` fields as user metadata and, with ``public=yes``, ``x-amz-acl:
  public-read`` on single-request stores (`annexproxy.special.s3config`).

Uploads stream: a single PUT of known length whose body is fed by `StoreSession.write`,
or a multipart upload whose parts stream the same way (one part in memory only when
the size is unknown). Nothing is visible under the
name until `commit`; an abandoned session cancels its PUT (the server never sees a
complete body) or aborts its multipart upload. Downloads stream with a ``Range`` for an
offset. S3 error answers and connection failures become `annexproxy.errors.StorageError` subclasses
here and nowhere else.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import (
    AsyncExitStack,
    asynccontextmanager,
    contextmanager,
    suppress,
)
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from annexproxy.errors import KeyNotPresent, NodeUnavailable, StorageError
from annexproxy.keys import Key
from annexproxy.special.backend import RemoteBackend, StoreSession
from annexproxy.special.remote import SpecialRemote
from annexproxy.special.s3client import S3Client, S3Endpoint, S3Error
from annexproxy.special.s3config import S3Settings, s3_settings

READ_CHUNK = 256 * 1024
# Part size for uploads of unknown length on a remote without ``partsize``: bounds the
# memory one upload holds (S3 allows 10,000 parts, so up to 160 GB).
UNKNOWN_SIZE_PART = 16 * 1024 * 1024
# Chunks queued between `write` and a streaming PUT's body.
PUT_QUEUE_DEPTH = 4

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_AUTH_CODES = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "InvalidToken"}
)
_CONNECTION_ERRORS = (aiohttp.ClientError, OSError, TimeoutError)


async def open_s3(remote: SpecialRemote, *, base: Path) -> RemoteBackend:
    """Open the backend of ``remote``; nothing is sent to the server yet.

    Raises:
        ConfigError: a setting is malformed or no credentials can be found.
    """
    return S3Backend(s3_settings(remote, base=base))


@dataclass(frozen=True, slots=True)
class ExportName:
    """A file of an exported tree (``exporttree=yes``): stored as ``fileprefix`` + path."""

    path: str

    def __str__(self) -> str:
        return self.path


ObjectName = Key | ExportName
"""What an object is named after: a key, or an exported file name."""


class S3Backend:
    """A `RemoteBackend` on an S3 bucket (see the module docstring for the layout)."""

    def __init__(self, settings: S3Settings) -> None:
        """Serve the objects of ``settings``; the client is created on first use."""
        self.settings = settings
        self._client: S3Client | None = None
        self._stack = AsyncExitStack()
        self._opening = asyncio.Lock()

    async def client(self) -> S3Client:
        """The S3 client, created on first use (in the loop that uses it)."""
        async with self._opening:
            if self._client is None:
                self._client = await self._stack.enter_async_context(self._create_client())
        return self._client

    def _create_client(self) -> S3Client:
        settings = self.settings
        endpoint = S3Endpoint(
            endpoint_url=settings.endpoint_url,
            region=settings.region,
            signature=settings.signature,
            path_style=settings.path_style,
            credentials=settings.credentials,
            session_token=settings.session_token,
        )
        return S3Client(endpoint, connect_timeout=30, read_timeout=120)

    def store_args(self, *, single: bool) -> dict[str, Any]:
        """What every store request carries besides bucket and name (as git-annex sends).

        Args:
            single: a one-request PUT (which gets the ACL) rather than a multipart start.
        """
        s = self.settings
        args: dict[str, Any] = {"StorageClass": s.storage_class}
        if s.metadata:
            args["Metadata"] = dict(s.metadata)
        if single and s.public:
            args["ACL"] = "public-read"
        return args

    def object_name(self, name: ObjectName) -> str:
        """The bucket object of a key, or of an exported file (``fileprefix`` + its path)."""
        if isinstance(name, ExportName):
            return self.settings.fileprefix + name.path
        return self.settings.object_name(name)

    def _where(self, name: ObjectName) -> str:
        s = self.settings
        return f"{s.endpoint_url}/{s.bucket}/{self.object_name(name)} (S3 remote {s.remote!r})"

    @contextmanager
    def _map_errors(self, name: ObjectName, action: str) -> Iterator[None]:
        """Turn S3 error answers and lost connections during ``action`` into StorageErrors."""
        try:
            yield
        except S3Error as exc:
            raise self._client_error(exc, name, action) from exc
        except _CONNECTION_ERRORS as exc:
            raise NodeUnavailable(
                f"cannot {action} {self._where(name)}: the S3 server is unreachable or "
                f"broke the connection ({str(exc) or type(exc).__name__}); check that it is "
                "running and reachable"
            ) from exc

    def _client_error(self, exc: S3Error, name: ObjectName, action: str) -> StorageError:
        code, message = exc.code, exc.message
        if code in _NOT_FOUND_CODES:
            return KeyNotPresent(f"{self._where(name)} is not present", key=str(name))
        if code == "NoSuchBucket":
            return StorageError(
                f"cannot {action} {self._where(name)}: the bucket {self.settings.bucket!r} "
                "does not exist; create it (git annex initremote/enableremote does)"
            )
        if code in _AUTH_CODES:
            return StorageError(
                f"cannot {action} {self._where(name)}: the S3 server refused the credentials "
                f"({code}: {message}); check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or "
                "the remote's stored creds"
            )
        if code == "EntityTooSmall":
            return StorageError(
                f"cannot {action} {self._where(name)}: the server refused a part of "
                f"{self.settings.partsize} bytes as too small ({message}); set the remote's "
                "partsize to at least 5MiB with git annex enableremote"
            )
        return StorageError(f"cannot {action} {self._where(name)}: {code} {message}".rstrip())

    @asynccontextmanager
    async def store(self, name: ObjectName, size: int | None) -> AsyncIterator[StoreSession]:
        """Start storing ``name``; see `annexproxy.special.backend.RemoteBackend.store`.

        Raises:
            StorageError: the upload failed (NodeUnavailable: server unreachable).
        """
        partsize = self.settings.partsize
        session: _PutSession | _MultipartSession
        if size is not None and (partsize is None or size <= partsize):
            session = _PutSession(self, name, size)
        else:
            session = _MultipartSession(self, name, size, partsize or UNKNOWN_SIZE_PART)
        try:
            yield session
        finally:
            if not session.committed:
                await session.abort()

    async def retrieve(self, name: ObjectName, offset: int = 0) -> AsyncIterator[bytes]:
        """Yield the object's bytes from ``offset``.

        Raises:
            KeyNotPresent: there is no such object.
            StorageError: reading failed part way (NodeUnavailable: connection lost).
        """
        args = {"Bucket": self.settings.bucket, "Key": self.object_name(name)}
        if offset:
            args["Range"] = f"bytes={offset}-"
        with self._map_errors(name, "read"):
            try:
                response = await (await self.client()).get_object(**args)
            except S3Error as exc:
                if offset and exc.code == "InvalidRange" and await self.present(name):
                    return  # the offset is the object's end
                raise
        skip = offset if offset and not response.get("ContentRange") else 0
        expected = response.get("ContentLength")
        got = 0
        async with response["Body"] as body:
            while True:
                with self._map_errors(name, "read"):
                    chunk = await body.read(READ_CHUNK)
                if not chunk:
                    break
                got += len(chunk)
                if skip:
                    # The server ignored Range: drop the bytes before the offset.
                    dropped = min(skip, len(chunk))
                    chunk, skip = chunk[dropped:], skip - dropped
                    if not chunk:
                        continue
                yield chunk
        if expected is not None and got != expected:
            raise NodeUnavailable(
                f"reading {self._where(name)} stopped after {got} of {expected} bytes"
            )

    def local_path(self, name: ObjectName) -> Path | None:
        """S3 objects have no local file."""
        return None

    async def present(self, name: ObjectName) -> bool:
        """Tell whether the object is in the bucket (a HEAD request).

        Raises:
            StorageError: presence cannot be determined.
        """
        try:
            with self._map_errors(name, "check"):
                await (await self.client()).head_object(
                    Bucket=self.settings.bucket, Key=self.object_name(name)
                )
        except KeyNotPresent:
            return False
        return True

    async def remove(self, name: ObjectName) -> None:
        """Delete the object (deleting an absent object succeeds in S3).

        Raises:
            StorageError: it could not be removed.
        """
        with self._map_errors(name, "remove"):
            await (await self.client()).delete_object(
                Bucket=self.settings.bucket, Key=self.object_name(name)
            )

    async def copy(self, source: ObjectName, dest: ObjectName) -> None:
        """Copy an object within the bucket, server side.

        Raises:
            KeyNotPresent: there is no source object.
            StorageError: the copy failed.
        """
        bucket = self.settings.bucket
        with self._map_errors(source, "copy"):
            await (await self.client()).copy_object(
                Bucket=bucket,
                Key=self.object_name(dest),
                CopySource={"Bucket": bucket, "Key": self.object_name(source)},
            )

    async def aclose(self) -> None:
        """Close the client and its connections."""
        await self._stack.aclose()


class _Body:
    """A PUT body fed from a queue, iterated by aiohttp as the request is sent."""

    def __init__(self, queue: asyncio.Queue[bytes | None]) -> None:
        self._queue = queue
        self.written = asyncio.Event()
        """Set once the first chunk went to the connection (the next one is asked for)."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (chunk := await self._queue.get()) is not None:
            yield chunk
            self.written.set()


class _StreamedRequest:
    """One request (a PUT or a part upload) whose body of known length streams from a queue.

    Started on the first `send`; `send` waits while the queue is full, and raises why the
    request ended if it ended before taking everything.
    """

    def __init__(
        self,
        backend: S3Backend,
        name: ObjectName,
        call: Callable[[_Body], Coroutine[Any, Any, dict[str, Any]]],
    ) -> None:
        self._backend = backend
        self._name = name
        self._call = call
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(PUT_QUEUE_DEPTH)
        self.body = _Body(self._queue)
        self.task: asyncio.Task[dict[str, Any]] | None = None

    async def send(self, item: bytes | None) -> None:
        """Queue body bytes (None: the body is complete).

        Raises:
            StorageError: the request failed or ended before taking the bytes.
        """
        if self.task is None:
            self.task = asyncio.create_task(self._call(self.body))
        task = self.task
        sender = asyncio.ensure_future(self._queue.put(item))
        await asyncio.wait({sender, task}, return_when=asyncio.FIRST_COMPLETED)
        if not sender.done():
            sender.cancel()
            with self._backend._map_errors(self._name, "store"):
                await task  # raises why the upload ended
            raise StorageError(f"the upload of {self._backend._where(self._name)} ended early")

    async def finish(self) -> dict[str, Any]:
        """Complete the body and return the server's answer.

        Raises:
            StorageError: the request failed.
        """
        await self.send(None)
        assert self.task is not None
        with self._backend._map_errors(self._name, "store"):
            return await self.task

    async def cancel(self) -> None:
        """Stop the request; a body cut short is never stored by the server."""
        if self.task is None:
            return
        if not self.task.done():
            self.task.cancel()
        with suppress(asyncio.CancelledError, Exception):
            await self.task


class _PutSession:
    """A single PUT of known length whose body streams from `write` calls.

    The last bytes written are sent only by `commit`, so that the server cannot complete
    the object before the caller has decided to keep it (a hash mismatch found at the
    end of the data must leave nothing behind).
    """

    def __init__(self, backend: S3Backend, name: ObjectName, size: int) -> None:
        self._backend = backend
        self._name = name
        self._size = size
        self._written = 0
        self._pending = b""
        self._request = _StreamedRequest(backend, name, self._put)
        self.committed = False

    async def _put(self, body: _Body) -> dict[str, Any]:
        s = self._backend.settings
        answer: dict[str, Any] = await (await self._backend.client()).put_object(
            Bucket=s.bucket,
            Key=self._backend.object_name(self._name),
            Body=body,
            ContentLength=self._size,
            **self._backend.store_args(single=True),
        )
        return answer

    async def write(self, data: bytes) -> None:
        """Send bytes to the object's PUT.

        Raises:
            StorageError: more bytes than announced, or the PUT failed.
        """
        if self._written + len(data) > self._size:
            raise StorageError(
                f"more than the announced {self._size} bytes were written for "
                f"{self._backend._where(self._name)}"
            )
        if data:
            self._written += len(data)
            # Hold the latest bytes back until commit: a PUT whose body is complete is
            # stored by the server whether or not we commit.
            pending, self._pending = self._pending, bytes(data)
            if pending:
                await self._request.send(pending)

    async def commit(self) -> None:
        """Finish the PUT: the object becomes visible.

        Raises:
            StorageError: fewer bytes than announced were written, or the PUT failed.
        """
        if self._written != self._size:
            raise StorageError(
                f"only {self._written} of the announced {self._size} bytes were written "
                f"for {self._backend._where(self._name)}; nothing was stored"
            )
        if self._pending:
            await self._request.send(self._pending)
            self._pending = b""
        await self._request.finish()
        self.committed = True

    async def abort(self) -> None:
        """Cancel an unfinished PUT: the server never gets the whole body.

        SeaweedFS 4.48 stores an empty object when a PUT's connection closes before any
        body byte arrived; such a leftover (its length is not the announced one) is
        removed, best effort.
        """
        task = self._request.task
        if task is None:
            return
        if not task.done():
            # Let some body bytes reach the server first: SeaweedFS keeps an empty object
            # for a PUT cut before its first body byte, but drops one cut part way.
            written = asyncio.ensure_future(self._request.body.written.wait())
            await asyncio.wait({written, task}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
            written.cancel()
        await self._request.cancel()
        s = self._backend.settings
        with suppress(Exception):
            client = await self._backend.client()
            head = await client.head_object(
                Bucket=s.bucket, Key=self._backend.object_name(self._name)
            )
            if head.get("ContentLength") != self._size:
                await client.delete_object(
                    Bucket=s.bucket, Key=self._backend.object_name(self._name)
                )


class _MultipartSession:
    """A multipart upload of parts of ``partsize`` bytes.

    When the object's size is known, every part's length is too, and each part's body
    streams like a single PUT: a few queued chunks are all the memory it takes, whatever
    the part size (git-annex's documentation suggests ``partsize=1GiB``). Of an upload of
    unknown size, one part at a time is held in memory; one that turns out smaller than a
    part is stored with a single PUT instead, as git-annex does for small files.
    """

    def __init__(
        self, backend: S3Backend, name: ObjectName, size: int | None, partsize: int
    ) -> None:
        self._backend = backend
        self._name = name
        self._size = size
        self._partsize = partsize
        self._buffer = bytearray()
        self._written = 0
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._part: _StreamedRequest | None = None
        self._part_left = 0
        self.committed = False

    @property
    def _bucket(self) -> str:
        return self._backend.settings.bucket

    @property
    def _object(self) -> str:
        return self._backend.object_name(self._name)

    async def _upload_id_now(self) -> str:
        if self._upload_id is None:
            client = await self._backend.client()
            with self._backend._map_errors(self._name, "store"):
                started = await client.create_multipart_upload(
                    Bucket=self._bucket, Key=self._object, **self._backend.store_args(single=False)
                )
            self._upload_id = str(started["UploadId"])
        return self._upload_id

    async def _send_part(self, data: bytes) -> None:
        upload_id = await self._upload_id_now()
        client = await self._backend.client()
        number = len(self._parts) + 1
        with self._backend._map_errors(self._name, "store"):
            sent = await client.upload_part(
                Bucket=self._bucket,
                Key=self._object,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
            )
        self._parts.append({"PartNumber": number, "ETag": sent["ETag"]})

    async def _start_streamed_part(self, length: int) -> None:
        upload_id = await self._upload_id_now()
        client = await self._backend.client()
        number = len(self._parts) + 1

        async def call(body: _Body) -> dict[str, Any]:
            answer: dict[str, Any] = await client.upload_part(
                Bucket=self._bucket,
                Key=self._object,
                UploadId=upload_id,
                PartNumber=number,
                Body=body,
                ContentLength=length,
            )
            return answer

        self._part = _StreamedRequest(self._backend, self._name, call)
        self._part_left = length

    async def _stream(self, data: bytes, size: int) -> None:
        view = memoryview(data)
        while view:
            if self._part is None:
                done = sum(self._partsize for _ in self._parts)
                await self._start_streamed_part(min(self._partsize, size - done))
            assert self._part is not None
            piece, view = view[: self._part_left], view[self._part_left :]
            await self._part.send(bytes(piece))
            self._part_left -= len(piece)
            if self._part_left == 0:
                sent = await self._part.finish()
                self._parts.append({"PartNumber": len(self._parts) + 1, "ETag": sent["ETag"]})
                self._part = None

    async def write(self, data: bytes) -> None:
        """Add bytes; each full part is uploaded before this returns.

        Raises:
            StorageError: more bytes than announced, or a part upload failed.
        """
        if self._size is not None and self._written + len(data) > self._size:
            raise StorageError(
                f"more than the announced {self._size} bytes were written for "
                f"{self._backend._where(self._name)}"
            )
        self._written += len(data)
        if self._size is not None:
            await self._stream(data, self._size)
            return
        self._buffer += data
        while len(self._buffer) >= self._partsize:
            part = bytes(self._buffer[: self._partsize])
            del self._buffer[: self._partsize]
            await self._send_part(part)

    async def commit(self) -> None:
        """Upload the last part and complete the upload: the object becomes visible.

        Raises:
            StorageError: fewer bytes than announced, or the upload failed.
        """
        if self._size is not None and self._written != self._size:
            raise StorageError(
                f"only {self._written} of the announced {self._size} bytes were written "
                f"for {self._backend._where(self._name)}; nothing was stored"
            )
        client = await self._backend.client()
        if self._upload_id is None:
            with self._backend._map_errors(self._name, "store"):
                await client.put_object(
                    Bucket=self._bucket,
                    Key=self._object,
                    Body=bytes(self._buffer),
                    ContentLength=len(self._buffer),
                    **self._backend.store_args(single=True),
                )
        else:
            if self._buffer:
                await self._send_part(bytes(self._buffer))
                self._buffer.clear()
            with self._backend._map_errors(self._name, "store"):
                await client.complete_multipart_upload(
                    Bucket=self._bucket,
                    Key=self._object,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
        self.committed = True

    async def abort(self) -> None:
        """Abort the multipart upload, best effort (the server may be gone)."""
        self._buffer.clear()
        if self._part is not None:
            await self._part.cancel()
            self._part = None
        if self._upload_id is None:
            return
        with suppress(StorageError), self._backend._map_errors(self._name, "abort the upload of"):
            await (await self._backend.client()).abort_multipart_upload(
                Bucket=self._bucket, Key=self._object, UploadId=self._upload_id
            )
