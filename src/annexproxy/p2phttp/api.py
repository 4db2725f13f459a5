"""Requests of git-annex's P2P-over-HTTP API, parsed into typed values (wire.md 5.2-5.4).

`parse_request` turns a method, a path below the mount point and the query parameters
into one `ApiRequest`, or raises `HttpError` with the status and body git-annex's own
server (`git annex p2phttp`) gives for the same mistake. JSON answers are built by the
``*_body`` functions, per protocol version. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from annexproxy.errors import AnnexProxyError
from annexproxy.keys import Key
from annexproxy.uuids import RepoUUID

Endpoint = Literal[
    "key",
    "checkpresent",
    "remove",
    "remove-before",
    "gettimestamp",
    "putoffset",
    "put",
    "lockcontent",
    "keeplocked",
]

ALL_VERSIONS: Final = frozenset(range(5))
# Which versions each endpoint exists in (wire.md 5.3).
ROUTE_VERSIONS: Final[dict[str, frozenset[int]]] = {
    "key": ALL_VERSIONS,
    "checkpresent": ALL_VERSIONS,
    "remove": ALL_VERSIONS,
    "remove-before": frozenset({3, 4}),
    "gettimestamp": frozenset({3, 4}),
    "put": ALL_VERSIONS,
    "putoffset": frozenset({1, 2, 3, 4}),
    "lockcontent": ALL_VERSIONS,
    "keeplocked": ALL_VERSIONS,
}
_VERSION = re.compile(r"v([0-9])\Z")
_UNSIGNED = re.compile(r"[0-9]+\Z")

BAD_VERSION: Final = "bad version"


class HttpError(AnnexProxyError):
    """An HTTP error answer: status code and the plain-text body git-annex uses."""

    def __init__(
        self, status: int, body: str = "", *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"HTTP {status}: {body}" if body else f"HTTP {status}")
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiRequest:
    """One parsed API request."""

    server_uuid: str
    endpoint: Endpoint
    version: int  # the unversioned key endpoint counts as v0
    key: Key | None = None
    client_uuid: RepoUUID | None = None
    associated_file: str | None = None
    offset: int | None = None
    timestamp: int | None = None
    lock_id: str | None = None
    data_present: bool = False
    bypass: tuple[RepoUUID, ...] = field(default_factory=tuple)


def unwrap(value: str) -> str:
    """Decode a ``[base64url]``-wrapped value; other values are returned as they are.

    Raises:
        HttpError: (400) the wrapped value is not valid padded base64url.
    """
    if not (value.startswith("[") and value.endswith("]")):
        return value
    inner = value[1:-1]
    try:
        if len(inner) % 4:
            raise binascii.Error("missing padding")
        raw = base64.b64decode(inner, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise HttpError(400, f"unable to base64 decode [] wrapped value: {exc}") from exc
    return raw.decode("utf-8", "surrogateescape")


def _param_error(name: str, why: str) -> HttpError:
    return HttpError(400, f"Error parsing query parameter {name} failed: {why}")


def _parse_key(text: str, *, param: str | None) -> Key:
    try:
        return Key.parse(unwrap(text))
    except AnnexProxyError as exc:
        if isinstance(exc, HttpError):
            raise
        if param is None:
            raise HttpError(400, "key parse error") from exc
        raise _param_error(param, "key parse error") from exc


def _parse_uuid(name: str, text: str) -> RepoUUID:
    value = unwrap(text)
    if not value:
        raise _param_error(name, "empty UUID")
    return RepoUUID(value)


def _parse_int(name: str, text: str) -> int:
    if not _UNSIGNED.match(text):
        raise _param_error(name, f"could not parse: `{text}'")
    return int(text)


def _parse_bool(name: str, text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise _param_error(name, f"could not parse: `{text}'")


class _Query:
    def __init__(self, query: Mapping[str, Sequence[str]]) -> None:
        self._query = query

    def first(self, name: str) -> str | None:
        values = self._query.get(name)
        return values[0] if values else None

    def required(self, name: str) -> str:
        value = self.first(name)
        if value is None:
            raise HttpError(400, f"Query parameter {name} is required")
        return value

    def all(self, name: str) -> Sequence[str]:
        return self._query.get(name, ())


def _route(method: str, segments: Sequence[str]) -> tuple[str, int, Endpoint, str | None]:
    """Match ``<uuid>/key/<key>`` or ``<uuid>/v<N>/<endpoint>[/<key>]``.

    Raises:
        HttpError: 404 for unknown paths, 400 ``bad version`` for unknown versions and
            methods, as git-annex's server does.
    """
    if len(segments) == 3 and segments[1] == "key":
        if method not in ("GET", "HEAD"):
            raise HttpError(400, BAD_VERSION)
        return unwrap(segments[0]), 0, "key", segments[2]
    if len(segments) not in (3, 4):
        raise HttpError(404)
    server, version_text, name = segments[0], segments[1], segments[2]
    match = _VERSION.match(version_text)
    if name not in ROUTE_VERSIONS:
        raise HttpError(404)
    if match is None:
        raise HttpError(400, BAD_VERSION)
    version = int(match.group(1))
    expects_key = name == "key"
    if (len(segments) == 4) != expects_key:
        raise HttpError(404)
    wanted_method = ("GET", "HEAD") if expects_key else ("POST",)
    if version not in ROUTE_VERSIONS[name] or method not in wanted_method:
        raise HttpError(400, BAD_VERSION)
    endpoint: Endpoint = name  # type: ignore[assignment]
    return unwrap(server), version, endpoint, segments[3] if expects_key else None


def parse_request(
    method: str, segments: Sequence[str], query: Mapping[str, Sequence[str]]
) -> ApiRequest:
    """Parse an API request; ``segments`` are the path segments after ``git-annex/``.

    Raises:
        HttpError: the request is malformed (400) or names no route (404).
    """
    server, version, endpoint, key_segment = _route(method, segments)
    q = _Query(query)
    unversioned = endpoint == "key" and len(segments) == 3
    client_text = q.first("clientuuid") if unversioned or endpoint == "keeplocked" else None
    if not unversioned and endpoint != "keeplocked":
        client_text = q.required("clientuuid")
    client = _parse_uuid("clientuuid", client_text) if client_text is not None else None
    bypass = tuple(_parse_uuid("bypass", b) for b in q.all("bypass"))
    fields: dict[str, object] = {}
    if key_segment is not None:
        fields["key"] = _parse_key(key_segment, param=None)
    elif endpoint not in ("gettimestamp", "keeplocked"):
        fields["key"] = _parse_key(q.required("key"), param="key")
    if endpoint in ("key", "put"):
        af = q.first("associatedfile")
        fields["associated_file"] = unwrap(af) if af else None
        offset = q.first("offset")
        fields["offset"] = _parse_int("offset", offset) if offset is not None else None
    if endpoint == "remove-before":
        fields["timestamp"] = _parse_int("timestamp", q.required("timestamp"))
    if endpoint == "keeplocked":
        fields["lock_id"] = unwrap(q.required("lockid"))
    if endpoint == "put" and version >= 4:
        present = q.first("data-present")
        fields["data_present"] = _parse_bool("data-present", present) if present else False
    return ApiRequest(
        server_uuid=server,
        endpoint=endpoint,
        version=version,
        client_uuid=client,
        bypass=bypass,
        **fields,  # type: ignore[arg-type]
    )


def parse_data_length(value: str | None) -> int:
    """Parse the ``X-git-annex-data-length`` header of a put.

    Raises:
        HttpError: (400) missing or not a number.
    """
    if value is None:
        raise HttpError(400, "Header X-git-annex-data-length is required")
    if not _UNSIGNED.match(value.strip()):
        raise HttpError(400, "Error parsing header X-git-annex-data-length failed: not a number")
    return int(value.strip())


# --- JSON bodies (wire.md 5.4, "JSON bodies at a glance") --------------------------------


def _plus(version: int, body: dict[str, object], uuids: Sequence[str]) -> dict[str, object]:
    if version >= 2:
        body["plusuuids"] = list(uuids)
    return body


def checkpresent_body(present: bool) -> dict[str, object]:
    """``{"present": bool}``."""
    return {"present": present}


def remove_body(version: int, removed: bool, others: Sequence[str] = ()) -> dict[str, object]:
    """``{"removed": bool[, "plusuuids": [...]]}`` (plusuuids from v2)."""
    return _plus(version, {"removed": removed}, others)


def timestamp_body(timestamp: int) -> dict[str, object]:
    """``{"timestamp": int}``."""
    return {"timestamp": timestamp}


def putoffset_body(
    version: int, offset: int | None, others: Sequence[str] = ()
) -> dict[str, object]:
    """``{"offset": n}``, or ``{"alreadyhave": true[, "plusuuids": [...]]}`` when None."""
    if offset is not None:
        return {"offset": offset}
    return _plus(version, {"alreadyhave": True}, others)


def put_body(version: int, stored: bool, others: Sequence[str] = ()) -> dict[str, object]:
    """``{"stored": bool[, "plusuuids": [...]]}``."""
    return _plus(version, {"stored": stored}, others)


def lockcontent_body(lock_id: str | None) -> dict[str, object]:
    """``{"locked": true, "lockid": id}`` or ``{"locked": false}``."""
    return {"locked": True, "lockid": lock_id} if lock_id else {"locked": False}


def keeplocked_body() -> dict[str, object]:
    """``{"locked": false}``: what keeplocked always answers once the lock is gone."""
    return {"locked": False}
