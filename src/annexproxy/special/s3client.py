"""A small S3 client on aiohttp: the requests a special remote needs, signed v2 or v4.

The S3 backend used aiobotocore, whose service model and endpoint rules cost a gateway
about 22 MB of memory and a millisecond of CPU per request. The backend needs eight
operations (object PUT, GET with a range, HEAD, DELETE and the four of a multipart
upload), so they are done here with aiohttp, which the gateway already runs on.

Signing follows AWS's published algorithms: Signature Version 4 (``AWS4-HMAC-SHA256``
with ``UNSIGNED-PAYLOAD``, so bodies stream without being hashed first) and Version 2
(``AWS key:HMAC-SHA1``), the one git-annex uses by default for servers other than
Amazon's. The method names and the dictionaries they take and return follow boto's
(``put_object(Bucket=..., Key=..., Body=..., ContentLength=...)``), so that code and
tests read the same. Error answers raise `S3Error` with the S3 error code; connection
failures raise aiohttp's or the system's own errors, which the backend maps.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any
from urllib.parse import quote, urlsplit
from xml.etree import ElementTree

import aiohttp
from yarl import URL

# The sub-resources that v2 signs (the part of the query string that names a resource).
_V2_SUBRESOURCES = frozenset({"uploads", "uploadId", "partNumber", "versionId", "versioning"})
_SEND_PIECE = 256 * 1024
_DNS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_NS = re.compile(r"^\{[^}]*\}")


async def _pieces(data: bytes) -> AsyncIterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), _SEND_PIECE):
        yield bytes(view[start : start + _SEND_PIECE])


class S3Error(Exception):
    """An error answer of the S3 server."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True, kw_only=True)
class S3Endpoint:
    """Where and how to send requests."""

    endpoint_url: str
    region: str
    signature: str  # "v4", "v2" or "anonymous"
    path_style: bool
    credentials: tuple[str, str] | None
    session_token: str | None = None


def _uri_encode(text: str) -> str:
    return quote(text, safe="-_.~")


def _canonical_query(params: Mapping[str, str]) -> str:
    return "&".join(f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in sorted(params.items()))


def sign_v4(
    *,
    method: str,
    host: str,
    path: str,
    params: Mapping[str, str],
    headers: dict[str, str],
    credentials: tuple[str, str],
    region: str,
    now: float,
    payload_hash: str = "UNSIGNED-PAYLOAD",
) -> None:
    """Add the Signature Version 4 headers to ``headers``.

    ``path`` is the already URI-encoded request path. The payload is left unsigned
    unless its SHA-256 is given: bodies stream, and are not read twice.
    """
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    day = amz_date[:8]
    headers["x-amz-date"] = amz_date
    headers["x-amz-content-sha256"] = payload_hash
    signed = {k.lower(): " ".join(v.strip().split()) for k, v in headers.items()}
    signed["host"] = host
    names = sorted(signed)
    canonical = "\n".join(
        [
            method,
            path,
            _canonical_query(params),
            "".join(f"{n}:{signed[n]}\n" for n in names),
            ";".join(names),
            payload_hash,
        ]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + credentials[1]).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials[0]}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )


def sign_v2(
    *,
    method: str,
    resource: str,
    params: Mapping[str, str],
    headers: dict[str, str],
    credentials: tuple[str, str],
    now: float,
) -> None:
    """Add the Signature Version 2 headers to ``headers``.

    ``resource`` is ``/bucket/key`` URI-encoded, whatever the request style.
    """
    headers["Date"] = formatdate(now, usegmt=True)
    lower = {k.lower(): v for k, v in headers.items()}
    amz = "".join(
        f"{k}:{' '.join(lower[k].strip().split())}\n"
        for k in sorted(lower)
        if k.startswith("x-amz-")
    )
    sub = sorted((k, v) for k, v in params.items() if k in _V2_SUBRESOURCES)
    if sub:
        resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in sub)
    to_sign = (
        f"{method}\n{lower.get('content-md5', '')}\n{lower.get('content-type', '')}\n"
        f"{lower['date']}\n{amz}{resource}"
    )
    digest = hmac.new(credentials[1].encode(), to_sign.encode(), hashlib.sha1).digest()
    headers["Authorization"] = f"AWS {credentials[0]}:{base64.b64encode(digest).decode()}"


def _store_headers(
    storage_class: str | None, metadata: Mapping[str, str] | None, acl: str | None
) -> dict[str, str]:
    headers = {f"x-amz-meta-{name}": value for name, value in (metadata or {}).items()}
    if storage_class:
        headers["x-amz-storage-class"] = storage_class
    if acl:
        headers["x-amz-acl"] = acl
    return headers


def _error_of(status: int, body: bytes) -> S3Error:
    code, message = str(status), ""
    if body:
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError:
            return S3Error(status, code, body[:200].decode("utf-8", "replace"))
        for child in root.iter():
            tag = _NS.sub("", child.tag)
            if tag == "Code" and child.text:
                code = child.text
            elif tag == "Message" and child.text:
                message = child.text
    return S3Error(status, code, message)


def _find(body: bytes, name: str) -> str:
    root = ElementTree.fromstring(body)
    for child in root.iter():
        if _NS.sub("", child.tag) == name and child.text is not None:
            return child.text
    raise S3Error(200, "MalformedResponse", f"no {name} in the server's answer")


class StreamingBody:
    """The body of a GET, read in pieces (``async with`` releases the connection)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def read(self, amount: int = -1) -> bytes:
        """Up to ``amount`` bytes (all the rest with -1); ``b""`` at the end."""
        return await self._response.content.read(amount)

    async def __aenter__(self) -> StreamingBody:
        return self

    async def __aexit__(self, *_: object) -> None:
        self._response.release()


class S3Client:
    """The S3 operations of a special remote, over one aiohttp session (``async with``)."""

    def __init__(
        self, endpoint: S3Endpoint, *, connect_timeout: float, read_timeout: float
    ) -> None:
        self._endpoint = endpoint
        parts = urlsplit(endpoint.endpoint_url)
        self._scheme = parts.scheme
        self._netloc = parts.netloc
        self._hostname = parts.hostname or ""
        self._timeout = aiohttp.ClientTimeout(sock_connect=connect_timeout, sock_read=read_timeout)
        self._session: aiohttp.ClientSession | None = None
        self.observers: list[Callable[[str, str, Mapping[str, str]], None]] = []
        """Called with (method, operation, headers) before each request is sent (tests)."""

    async def __aenter__(self) -> S3Client:
        self._session = aiohttp.ClientSession(
            timeout=self._timeout, auto_decompress=False, skip_auto_headers=("Accept-Encoding",)
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._session is not None:
            await self._session.close()

    def _virtual(self, bucket: str) -> bool:
        if self._endpoint.path_style or not _DNS_BUCKET.match(bucket) or ".." in bucket:
            return False
        try:
            ipaddress.ip_address(self._hostname)
        except ValueError:
            return self._hostname != "localhost"
        return False

    async def _request(
        self,
        method: str,
        bucket: str,
        key: str = "",
        *,
        operation: str = "",
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | AsyncIterable[bytes] | None = None,
        length: int | None = None,
        content_type: str = "application/octet-stream",
    ) -> aiohttp.ClientResponse:
        assert self._session is not None, "use the client in `async with`"
        params = dict(params or {})
        hdrs = dict(headers or {})
        encoded_key = quote(key, safe="/~")
        resource = f"/{bucket}/{encoded_key}" if bucket else "/"
        if self._virtual(bucket):
            host, path = f"{bucket}.{self._netloc}", f"/{encoded_key}"
        else:
            host, path = self._netloc, resource
        if body is not None:
            hdrs["Content-Type"] = content_type
            if isinstance(body, bytes):
                length = len(body)
                if length > _SEND_PIECE:  # aiohttp sends big bytes bodies in one blocking write
                    body = _pieces(body)
        if length is not None:
            hdrs["Content-Length"] = str(length)
        ep = self._endpoint
        if ep.session_token:
            hdrs["x-amz-security-token"] = ep.session_token
        if ep.credentials is not None and ep.signature == "v4":
            sign_v4(
                method=method,
                host=host,
                path=path,
                params=params,
                headers=hdrs,
                credentials=ep.credentials,
                region=ep.region,
                now=time.time(),
            )
        elif ep.credentials is not None and ep.signature == "v2":
            sign_v2(
                method=method,
                resource=resource,
                params=params,
                headers=hdrs,
                credentials=ep.credentials,
                now=time.time(),
            )
        for observe in self.observers:
            observe(method, operation, hdrs)
        query = "&".join(
            f"{_uri_encode(k)}={_uri_encode(v)}" if v else k for k, v in params.items()
        )
        url = f"{self._scheme}://{host}{path}" + (f"?{query}" if query else "")
        skip = () if body is not None else ("Content-Type",)
        response = await self._session.request(
            method,
            URL(url, encoded=True),
            headers=hdrs,
            data=body,
            skip_auto_headers=skip,
        )
        if response.status >= 300:
            try:
                text = b"" if method == "HEAD" else await response.read()
            finally:
                response.release()
            raise _error_of(response.status, text)
        return response

    async def _done(self, response: aiohttp.ClientResponse) -> bytes:
        try:
            return await response.read()
        finally:
            response.release()

    async def put_object(
        self,
        *,
        Bucket: str,
        Key: str,
        Body: bytes | AsyncIterable[bytes],
        ContentLength: int,
        StorageClass: str | None = None,
        Metadata: Mapping[str, str] | None = None,
        ACL: str | None = None,
    ) -> dict[str, Any]:
        """PUT an object of ``ContentLength`` bytes."""
        response = await self._request(
            "PUT",
            Bucket,
            Key,
            operation="PutObject",
            headers=_store_headers(StorageClass, Metadata, ACL),
            body=Body,
            length=ContentLength,
        )
        await self._done(response)
        return {"ETag": response.headers.get("ETag", "")}

    async def create_multipart_upload(
        self,
        *,
        Bucket: str,
        Key: str,
        StorageClass: str | None = None,
        Metadata: Mapping[str, str] | None = None,
        ACL: str | None = None,
    ) -> dict[str, Any]:
        """Start a multipart upload."""
        response = await self._request(
            "POST",
            Bucket,
            Key,
            operation="CreateMultipartUpload",
            params={"uploads": ""},
            headers=_store_headers(StorageClass, Metadata, ACL),
            length=0,
        )
        return {"UploadId": _find(await self._done(response), "UploadId")}

    async def upload_part(
        self,
        *,
        Bucket: str,
        Key: str,
        UploadId: str,
        PartNumber: int,
        Body: bytes | AsyncIterable[bytes],
        ContentLength: int | None = None,
    ) -> dict[str, Any]:
        """Upload one part."""
        params = {"partNumber": str(PartNumber), "uploadId": UploadId}
        response = await self._request(
            "PUT", Bucket, Key, params=params, body=Body, length=ContentLength
        )
        await self._done(response)
        return {"ETag": response.headers.get("ETag", "")}

    async def complete_multipart_upload(
        self, *, Bucket: str, Key: str, UploadId: str, MultipartUpload: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Complete a multipart upload from its parts' numbers and ETags."""
        parts = "".join(
            f"<Part><PartNumber>{p['PartNumber']}</PartNumber><ETag>{p['ETag']}</ETag></Part>"
            for p in MultipartUpload["Parts"]
        )
        xml = f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode()
        response = await self._request(
            "POST", Bucket, Key, params={"uploadId": UploadId}, body=xml,
            content_type="application/xml",
        )  # fmt: skip
        answer = await self._done(response)
        if b"<Error>" in answer:  # S3 may report a failure in a 200 answer
            raise _error_of(200, answer)
        return {}

    async def abort_multipart_upload(self, *, Bucket: str, Key: str, UploadId: str) -> None:
        """Abort a multipart upload."""
        await self._done(await self._request("DELETE", Bucket, Key, params={"uploadId": UploadId}))

    async def list_multipart_uploads(self, *, Bucket: str) -> dict[str, Any]:
        """The unfinished multipart uploads of a bucket (``Key`` and ``UploadId`` each)."""
        body = await self._done(await self._request("GET", Bucket, params={"uploads": ""}))
        uploads = []
        for item in ElementTree.fromstring(body).iter():
            if _NS.sub("", item.tag) == "Upload":
                fields = {_NS.sub("", c.tag): c.text or "" for c in item}
                uploads.append({"Key": fields.get("Key", ""), "UploadId": fields.get("UploadId")})
        return {"Uploads": uploads} if uploads else {}

    async def get_object(
        self, *, Bucket: str, Key: str, Range: str | None = None
    ) -> dict[str, Any]:
        """GET an object (from a ``Range``); the body streams from ``["Body"]``."""
        headers = {"Range": Range} if Range else None
        response = await self._request("GET", Bucket, Key, headers=headers)
        found: dict[str, Any] = {"Body": StreamingBody(response)}
        if response.content_length is not None:
            found["ContentLength"] = response.content_length
        if "Content-Range" in response.headers:
            found["ContentRange"] = response.headers["Content-Range"]
        return found

    async def head_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        """HEAD an object: its length and ETag."""
        response = await self._request("HEAD", Bucket, Key)
        response.release()
        found: dict[str, Any] = {
            "ContentLength": response.content_length,
            "ETag": response.headers.get("ETag", ""),
            "Metadata": {
                name[len("x-amz-meta-") :]: value
                for name, value in response.headers.items()
                if name.lower().startswith("x-amz-meta-")
            },
        }
        if "x-amz-storage-class" in response.headers:
            found["StorageClass"] = response.headers["x-amz-storage-class"]
        return found

    async def delete_object(self, *, Bucket: str, Key: str) -> None:
        """DELETE an object (absent objects too)."""
        await self._done(await self._request("DELETE", Bucket, Key))

    async def copy_object(
        self, *, Bucket: str, Key: str, CopySource: Mapping[str, str]
    ) -> dict[str, Any]:
        """Copy an object server side (``CopySource``: its ``Bucket`` and ``Key``)."""
        source = quote(f"/{CopySource['Bucket']}/{CopySource['Key']}", safe="/~")
        response = await self._request(
            "PUT",
            Bucket,
            Key,
            operation="CopyObject",
            headers={"x-amz-copy-source": source},
            length=0,
        )
        answer = await self._done(response)
        if b"<Error>" in answer:  # a copy may fail after its 200 status line
            raise _error_of(200, answer)
        return {}

    async def list_objects_v2(
        self, *, Bucket: str, Prefix: str = "", ContinuationToken: str | None = None
    ) -> dict[str, Any]:
        """One page of a bucket's objects: ``Contents`` (``Key``, ``Size``), continuation."""
        params = {"list-type": "2"}
        if Prefix:
            params["prefix"] = Prefix
        if ContinuationToken:
            params["continuation-token"] = ContinuationToken
        body = await self._done(await self._request("GET", Bucket, params=params))
        contents = []
        found: dict[str, Any] = {"IsTruncated": False}
        for item in ElementTree.fromstring(body):
            tag = _NS.sub("", item.tag)
            if tag == "Contents":
                fields = {_NS.sub("", c.tag): c.text or "" for c in item}
                contents.append({"Key": fields.get("Key", ""), "Size": int(fields.get("Size", 0))})
            elif tag == "IsTruncated":
                found["IsTruncated"] = item.text == "true"
            elif tag == "NextContinuationToken" and item.text:
                found["NextContinuationToken"] = item.text
        if contents:
            found["Contents"] = contents
        return found

    async def list_buckets(self) -> None:
        """List the account's buckets (the answer is not parsed: a liveness check)."""
        assert self._session is not None, "use the client in `async with`"
        await self._done(await self._request("GET", "", length=None))

    async def create_bucket(self, *, Bucket: str) -> None:
        """Create a bucket."""
        await self._done(await self._request("PUT", Bucket, length=0))
