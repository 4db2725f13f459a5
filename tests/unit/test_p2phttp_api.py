"""Request parsing of the P2P-over-HTTP API against git annex p2phttp's answers.

Each row is (method, path below /git-annex/, query string, headers) with the status and
body the real server gave (traces 08-10 and tests/interop/test_http_differential.py).
"""

from __future__ import annotations

import pytest

from annexproxy.p2phttp import api
from annexproxy.p2phttp.api import ApiRequest, HttpError

S = "b9ea2830-9f27-4383-8602-ecfef4699f7e"
CU = "506f13e8-32ba-4e70-a3c2-46fb079139b1"
HELLO = "SHA256E-s6--5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03.txt"
HELLO64 = (
    "[U0hBMjU2RS1zNi0tNTg5MWI1YjUyMmQ1ZGYwODZkMGZmMGIxMTBmYmQ5ZDIxYmI0ZmM3MTYzYWYzNGQwODI4NmEy"
    "ZTg0NmY2YmUwMy50eHQ=]"
)
DL = {"X-git-annex-data-length": "6"}


def parse(
    method: str, path: str, query: str = "", headers: dict[str, str] | None = None
) -> ApiRequest:
    return api.parse_request(method, path.split("/"), api.parse_query(query), headers)


ERRORS: list[tuple[str, str, str, dict[str, str] | None, int, str]] = [
    ("GET", f"{S}/v4/key/{HELLO}", "", None, 400, "Query parameter clientuuid is required"),
    ("GET", f"{S}/v4/key/notakey", f"clientuuid={CU}", None, 400, "key parse error"),
    ("GET", f"{S}/v4/key/notakey", "", None, 400, "key parse error"),
    ("GET", f"{S}/v5/key/{HELLO}", f"clientuuid={CU}", None, 400, "bad version"),
    ("POST", f"{S}/v2/gettimestamp", f"clientuuid={CU}", None, 400, "bad version"),
    ("POST", f"{S}/v0/putoffset", f"key={HELLO}&clientuuid={CU}", None, 400, "bad version"),
    ("GET", f"{S}/v4/checkpresent", f"key={HELLO}&clientuuid={CU}", None, 400, "bad version"),
    ("POST", f"{S}/v4/key/{HELLO}", f"clientuuid={CU}", None, 400, "bad version"),
    ("POST", f"{S}/key/{HELLO}", "", None, 405, ""),
    ("POST", f"{S}/v4/nosuch", f"clientuuid={CU}", None, 404, ""),
    ("POST", f"{S}/v9/nosuch", "", None, 404, ""),
    ("POST", f"{S}/v4/checkpresent/extra", f"key={HELLO}&clientuuid={CU}", None, 404, ""),
    ("POST", "/v4/checkpresent", f"key={HELLO}&clientuuid={CU}", None, 400, "empty UUID"),
    ("POST", "/v9/checkpresent", "", None, 400, "empty UUID"),
    ("GET", f"[]/key/{HELLO}", "", None, 400, "empty UUID"),
    (
        "POST",
        f"{S}/v4/checkpresent",
        f"clientuuid={CU}",
        None,
        400,
        "Query parameter key is required",
    ),
    ("POST", f"{S}/v4/checkpresent", "", None, 400, "Query parameter key is required"),
    (
        "POST",
        f"{S}/v4/checkpresent",
        f"key&clientuuid={CU}",
        None,
        400,
        "Query parameter key is required",
    ),
    (
        "POST",
        f"{S}/v4/checkpresent",
        f"key={HELLO}&clientuuid=",
        None,
        400,
        "Error parsing query parameter clientuuid failed: empty UUID",
    ),
    (
        "POST",
        f"{S}/v4/checkpresent",
        "key=notakey&clientuuid=",
        None,
        400,
        "Error parsing query parameter key failed: key parse error",
    ),
    (
        "POST",
        f"{S}/v4/checkpresent",
        f"key={HELLO}&clientuuid={CU}&bypass=",
        None,
        400,
        "Error parsing query parameter(s) bypass failed: empty UUID",
    ),
    (
        "POST",
        f"{S}/v4/checkpresent",
        f"key={HELLO[:-1]}&clientuuid={CU}",
        None,
        200,
        "",
    ),
    (
        "POST",
        f"{S}/v4/checkpresent",
        f"key={HELLO64[:-2]}]&clientuuid={CU}",
        None,
        400,
        "Error parsing query parameter key failed: unable to base64 decode [] wrapped value",
    ),
    ("GET", f"{S}/key/[AAA]", "", None, 400, "unable to base64 decode [] wrapped value"),
    (
        "GET",
        f"{S}/v4/key/{HELLO}",
        f"clientuuid={CU}&offset=-1",
        None,
        400,
        "Error parsing query parameter offset failed: offset parse error",
    ),
    (
        "POST",
        f"{S}/v4/remove-before",
        f"key={HELLO}&clientuuid={CU}",
        None,
        400,
        "Query parameter timestamp is required",
    ),
    (
        "POST",
        f"{S}/v4/remove-before",
        f"key={HELLO}&clientuuid={CU}&timestamp=soon",
        None,
        400,
        "Error parsing query parameter timestamp failed: timestamp parse error",
    ),
    ("POST", f"{S}/v4/keeplocked", "clientuuid=", None, 400, "Query parameter lockid is required"),
    (
        "POST",
        f"{S}/v4/keeplocked",
        "lockid=",
        None,
        400,
        "Error parsing query parameter lockid failed: empty UUID",
    ),
    (
        "POST",
        f"{S}/v4/put",
        f"key={HELLO}&clientuuid={CU}",
        None,
        400,
        "Header X-git-annex-data-length is required",
    ),
    (
        "POST",
        f"{S}/v4/put",
        f"key={HELLO}&clientuuid={CU}",
        {"X-git-annex-data-length": "+6"},
        400,
        "Error parsing header X-git-annex-data-length failed: X-git-annex-data-length parse error",
    ),
    (
        "POST",
        f"{S}/v4/put",
        "data-present=yes",
        DL,
        400,
        "Error parsing query parameter data-present failed: could not parse: `yes'",
    ),
    (
        "POST",
        f"{S}/v4/put",
        f"key={HELLO}&clientuuid={CU}&data-present=",
        DL,
        400,
        "Error parsing query parameter data-present failed: could not parse: `'",
    ),
    ("POST", f"{S}/v3/put", "data-present=yes", DL, 400, "Query parameter key is required"),
]


@pytest.mark.parametrize(("method", "path", "query", "headers", "status", "body"), ERRORS)
def test_errors_match_git_annex(
    method: str, path: str, query: str, headers: dict[str, str] | None, status: int, body: str
) -> None:
    if status == 200:
        parse(method, path, query, headers)
        return
    with pytest.raises(HttpError) as info:
        parse(method, path, query, headers)
    assert (info.value.status, info.value.body) == (status, body)


def test_versioned_get() -> None:
    req = parse("GET", f"{S}/v4/key/{HELLO}", f"clientuuid={CU}&offset=2&associatedfile=a%20b")
    assert (req.server_uuid, req.endpoint, req.version, str(req.key)) == (S, "key", 4, HELLO)
    assert (req.client_uuid, req.offset, req.associated_file) == (CU, 2, "a b")


def test_unversioned_get_ignores_offset_and_associatedfile() -> None:
    req = parse("HEAD", f"{S}/key/{HELLO64}", "offset=x&associatedfile=[a]")
    assert (req.endpoint, req.version, str(req.key), req.client_uuid) == ("key", 0, HELLO, None)
    assert (req.offset, req.associated_file) == (None, None)


def test_wrapped_values() -> None:
    wrapped_server = "[" + "YjllYTI4MzAtOWYyNy00MzgzLTg2MDItZWNmZWY0Njk5Zjdl" + "]"
    req = parse("POST", f"{wrapped_server}/v4/checkpresent", f"key={HELLO64}&clientuuid={CU}")
    assert (req.server_uuid, str(req.key)) == (S, HELLO)
    req = parse("GET", f"{S}/v1/key/{HELLO}", f"clientuuid={CU}&associatedfile=[W3ggeV0udHh0]")
    assert req.associated_file == "[x y].txt"


def test_put_fields() -> None:
    req = parse("POST", f"{S}/v4/put", f"key={HELLO}&clientuuid={CU}&data-present=True", DL)
    assert (req.data_present, req.data_length) == (True, 6)
    req = parse("POST", f"{S}/v3/put", f"key={HELLO}&clientuuid={CU}&data-present=yes", DL)
    assert (req.data_present, req.data_length) == (False, 6)
    req = parse("POST", f"{S}/v4/put", f"key={HELLO}&clientuuid={CU}&data-present", DL)
    assert req.data_present is False


def test_keeplocked_clientuuid_optional() -> None:
    req = parse("POST", f"{S}/v0/keeplocked", "lockid=abc")
    assert (req.lock_id, req.client_uuid) == ("abc", None)


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("", {}),
        ("a=1&a=2&b=", {"a": ["1", "2"], "b": [""]}),
        ("flag&x=a+b%2Bc", {"x": ["a b+c"]}),
        ("k=%C3%A4", {"k": ["ä"]}),
    ],
)
def test_parse_query(raw: str, parsed: dict[str, list[str]]) -> None:
    assert api.parse_query(raw) == parsed
