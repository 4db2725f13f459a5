"""Requests of git-annex's P2P-over-HTTP API, parsed into typed values (wire.md 5.2-5.4).

`parse_request` turns a method, a path below the mount point, the query parameters (split
by `parse_query`) and the headers into one `ApiRequest`, or raises `HttpError` with the
status and body git-annex's own server (`git annex p2phttp`) gives for the same mistake,
checking in the same order (tests/interop/test_http_differential.py compares them).
JSON answers are built by the ``*_body`` functions, per protocol version. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal
from urllib.parse import unquote_plus

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
DATA_LENGTH: Final = "X-git-annex-data-length"


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
    data_length: int | None = None  # put: the X-git-annex-data-length header
    bypass: tuple[RepoUUID, ...] = field(default_factory=tuple)


def unwrap(value: str, param: str | None = None) -> str:
    """Decode a ``[base64url]``-wrapped value; other values are returned as they are.

    Args:
        value: the text from the path or the query.
        param: the query parameter it came from, for the error message (None: path).

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
        # git-annex says exactly this, without saying what was wrong (trace 08).
        why = "unable to base64 decode [] wrapped value"
        raise (HttpError(400, why) if param is None else _param_error(param, why)) from exc
    return raw.decode("utf-8", "surrogateescape")


def _param_error(name: str, why: str) -> HttpError:
    # A list-valued parameter (bypass) is named "query parameter(s)" by git-annex's server.
    noun = "query parameter(s)" if name == "bypass" else "query parameter"
    return HttpError(400, f"Error parsing {noun} {name} failed: {why}")


def _parse_key(text: str, *, param: str | None) -> Key:
    try:
        return Key.parse(unwrap(text, param))
    except AnnexProxyError as exc:
        if isinstance(exc, HttpError):
            raise
        if param is None:
            raise HttpError(400, "key parse error") from exc
        raise _param_error(param, "key parse error") from exc


def _parse_uuid(name: str, text: str) -> RepoUUID:
    value = unwrap(text, name)
    if not value:
        raise _param_error(name, "empty UUID")
    return RepoUUID(value)


def _parse_server(text: str) -> str:
    """The repository UUID in the path: like a parameter, but errors name no parameter."""
    value = unwrap(text)
    if not value:
        raise HttpError(400, "empty UUID")
    return value


def _parse_int(name: str, text: str) -> int:
    # Stricter than git-annex, which also takes a sign ("-5"): wire.md 1 recommends 400
    # for negative offsets, and a negative length or timestamp means nothing either.
    if not _UNSIGNED.match(text):
        raise _param_error(name, f"{name} parse error")
    return int(text)


def _parse_bool(name: str, text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise _param_error(name, f"could not parse: `{text}'")


def parse_query(raw: str) -> dict[str, list[str]]:
    """Split a raw query string into decoded values per name, as git-annex's server does.

    ``name`` without ``=`` counts as absent (servant's ``QueryParam``), while ``name=``
    is present with an empty value; ``+`` decodes to a space (wire.md 5.2).

    Grammar: ``query := [item ("&" item)*]``, ``item := name ["=" value]``.
    """
    params: dict[str, list[str]] = {}
    for item in raw.split("&"):
        name, sep, value = item.partition("=")
        if sep:
            params.setdefault(unquote_plus(name), []).append(unquote_plus(value))
    return params


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


# The query parameters of each endpoint, in the order git-annex's server checks them
# (servant checks them in the order of the API type, after the path; trace 09 and the
# differential test; v4's data-present comes first). "clientuuid" is optional for
# keeplocked and the unversioned GET.
_PARAMS: Final[dict[Endpoint, tuple[str, ...]]] = {
    "key": ("clientuuid", "bypass", "associatedfile", "offset"),
    "checkpresent": ("key", "clientuuid", "bypass"),
    "remove": ("key", "clientuuid", "bypass"),
    "remove-before": ("key", "clientuuid", "bypass", "timestamp"),
    "gettimestamp": ("clientuuid", "bypass"),
    "putoffset": ("key", "clientuuid", "bypass"),
    "put": ("data-present", "key", "clientuuid", "bypass", "associatedfile", "offset"),
    "lockcontent": ("key", "clientuuid", "bypass"),
    "keeplocked": ("lockid", "clientuuid", "bypass"),
}
# The unversioned GET (wire.md 5.4.2) ignores offset and associatedfile.
_UNVERSIONED_PARAMS: Final = ("clientuuid", "bypass")


@dataclass(frozen=True, slots=True)
class _Route:
    server: str
    version: int
    endpoint: Endpoint
    key: Key | None  # from the path
    unversioned: bool


def _route(method: str, segments: Sequence[str]) -> _Route:
    """Match ``<uuid>/key/<key>`` or ``<uuid>/v<N>/<endpoint>[/<key>]``.

    Checked in the order git-annex's server (servant) checks: the shape of the path
    (404), then the path's parts from left to right (400: server UUID, ``bad version``,
    key), then the method (``bad version`` on a versioned path, 405 on the unversioned
    one, because other versions' routes fail on their version segment first).

    Raises:
        HttpError: 404 for unknown paths, 400 or 405 as described.
    """
    if len(segments) == 3 and segments[1] == "key":
        server = _parse_server(segments[0])
        path_key = _parse_key(segments[2], param=None)
        if method not in ("GET", "HEAD"):
            raise HttpError(405)
        return _Route(server, 0, "key", path_key, unversioned=True)
    if len(segments) not in (3, 4) or segments[2] not in ROUTE_VERSIONS:
        raise HttpError(404)
    endpoint: Endpoint = segments[2]  # type: ignore[assignment]
    expects_key = endpoint == "key"
    if (len(segments) == 4) != expects_key:
        raise HttpError(404)
    server = _parse_server(segments[0])
    match = _VERSION.match(segments[1])
    version = int(match.group(1)) if match else None
    if version is None or version not in ROUTE_VERSIONS[endpoint]:
        raise HttpError(400, BAD_VERSION)
    key = _parse_key(segments[3], param=None) if expects_key else None
    if method not in (("GET", "HEAD") if expects_key else ("POST",)):
        raise HttpError(400, BAD_VERSION)
    return _Route(server, version, endpoint, key, unversioned=False)


def _parse_param(name: str, q: _Query, route: _Route) -> tuple[str, object] | None:
    """Parse one query parameter into the `ApiRequest` field it fills (None: leave unset).

    Raises:
        HttpError: (400) missing where required, or unparsable.
    """
    match name:
        case "key":
            return "key", _parse_key(q.required("key"), param="key")
        case "clientuuid":
            optional = route.unversioned or route.endpoint == "keeplocked"
            text = q.first(name) if optional else q.required(name)
            return None if text is None else ("client_uuid", _parse_uuid(name, text))
        case "bypass":
            return "bypass", tuple(_parse_uuid(name, b) for b in q.all(name))
        case "associatedfile":
            af = q.first(name)
            return "associated_file", unwrap(af, name) if af else None
        case "offset":
            offset = q.first(name)
            return None if offset is None else ("offset", _parse_int(name, offset))
        case "timestamp":
            return "timestamp", _parse_int(name, q.required(name))
        case "data-present":
            # Only v4 has the parameter; older versions ignore it (wire.md 5.4.8).
            present = q.first(name) if route.version >= 4 else None
            return None if present is None else ("data_present", _parse_bool(name, present))
        case "lockid":
            lock_id = unwrap(q.required(name), name)
            if not lock_id:
                raise _param_error(name, "empty UUID")
            return "lock_id", lock_id
    raise AssertionError(f"no parser for query parameter {name}")  # pragma: no cover


def parse_request(
    method: str,
    segments: Sequence[str],
    query: Mapping[str, Sequence[str]],
    headers: Mapping[str, str] | None = None,
) -> ApiRequest:
    """Parse an API request; ``segments`` are the path segments after ``git-annex/``.

    The path is checked first, then the query parameters, then the headers the endpoint
    needs (``X-git-annex-data-length`` of a put), the order git-annex's server uses.

    Args:
        method: the HTTP method.
        segments: the percent-decoded path segments below the mount point.
        query: decoded query values per name (see `parse_query`).
        headers: the request headers (a case-insensitive mapping).

    Raises:
        HttpError: the request is malformed (400/405) or names no route (404).
    """
    route = _route(method, segments)
    q = _Query(query)
    fields: dict[str, object] = {"key": route.key}
    for name in _UNVERSIONED_PARAMS if route.unversioned else _PARAMS[route.endpoint]:
        parsed = _parse_param(name, q, route)
        if parsed is not None:
            fields[parsed[0]] = parsed[1]
    if route.endpoint == "put":
        fields["data_length"] = parse_data_length((headers or {}).get(DATA_LENGTH))
    return ApiRequest(
        server_uuid=route.server,
        endpoint=route.endpoint,
        version=route.version,
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
        raise HttpError(
            400,
            "Error parsing header X-git-annex-data-length failed: "
            "X-git-annex-data-length parse error",
        )
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
