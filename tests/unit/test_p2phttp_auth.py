"""AuthPolicy against the status matrix of trace 12 (git annex p2phttp, plain HTTP)."""

from __future__ import annotations

import base64

import pytest

from annexproxy.p2phttp.api import Endpoint, HttpError
from annexproxy.p2phttp.auth import (
    CHALLENGE,
    AuthPolicy,
    parse_authorization,
    users_from_environment,
)

USERS = users_from_environment(
    {
        "GIT_ANNEX_P2PHTTP_PASSWORD_alice": "pw1",
        "GIT_ANNEX_P2PHTTP_PASSWORD_bob": "pw2",
        "GIT_ANNEX_P2PHTTP_PERMISSIONS_bob": "readonly",
        "GIT_ANNEX_P2PHTTP_PASSWORD_carol": "pw3",
        "GIT_ANNEX_P2PHTTP_PERMISSIONS_carol": "appendonly",
    }
)
SERVERS = {
    "A": AuthPolicy(users=USERS, wideopen=True),
    "B": AuthPolicy(users=USERS, authenv_http=True, unauth_readonly=True),
    "C": AuthPolicy(),
    # [D] and [G] were started with alice only; [C], [E], [F] with no users at all.
    "D": AuthPolicy(users={"alice": USERS["alice"]}, authenv=True),
    "E": AuthPolicy(unauth_appendonly=True, unauth_nolocking=True),
    "F": AuthPolicy(unauth_readonly=True, unauth_nolocking=True),
    "G": AuthPolicy(users={"alice": USERS["alice"]}, authenv_http=True),
}


def basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


# request, endpoint, credentials, then the status for servers A..G (trace 12 (a)).
MATRIX: list[tuple[Endpoint, str | None, str]] = [
    ("checkpresent", None, "200 200 401 401 200 200 401"),
    ("checkpresent", "alice:pw1", "200 200 401 401 200 200 200"),
    ("checkpresent", "alice:WRONG", "200 200 401 401 200 200 401"),
    ("key", None, "200 200 401 401 200 200 401"),
    ("lockcontent", None, "200 200 401 401 200 403 401"),
    ("putoffset", None, "200 401 401 401 200 403 401"),
    ("putoffset", "carol:pw3", "200 200 401 401 200 403 401"),
    ("putoffset", "bob:pw2", "200 403 401 401 200 403 401"),
    ("remove", None, "200 401 401 401 403 403 401"),
    ("remove", "alice:pw1", "200 200 401 401 403 403 200"),
    ("remove", "alice:WRONG", "200 403 401 401 403 403 401"),
    ("remove", "carol:pw3", "200 403 401 401 403 403 401"),
]


def status(policy: AuthPolicy, endpoint: Endpoint, credentials: str | None) -> int:
    header = basic(credentials) if credentials is not None else None
    try:
        policy.decide(endpoint, header, tls=False)
    except HttpError as exc:
        refusal = exc
    else:
        return 200
    assert refusal.headers == (CHALLENGE if refusal.status == 401 else {})
    return refusal.status


@pytest.mark.parametrize(("endpoint", "credentials", "expected"), MATRIX)
def test_trace_12_matrix(endpoint: Endpoint, credentials: str | None, expected: str) -> None:
    got = [str(status(SERVERS[name], endpoint, credentials)) for name in "ABCDEFG"]
    assert " ".join(got) == expected


def test_readonly_user_cannot_lock_but_anonymous_reader_can() -> None:
    assert status(SERVERS["B"], "lockcontent", "bob:pw2") == 403
    assert status(SERVERS["B"], "lockcontent", None) == 200


@pytest.mark.parametrize("header", ["Bearer abc", "Basic", "Basic !!", ""])
def test_malformed_header_is_400(header: str) -> None:
    with pytest.raises(HttpError) as info:
        parse_authorization(header)
    assert info.value.status == 400
    assert info.value.body == "Error parsing header Authorization failed: invalid basic auth header"


def test_header_forms() -> None:
    assert parse_authorization(basic("alice:pw:1")) == (b"alice", b"pw:1")
    assert parse_authorization("basic " + basic("alice")[6:]) == (b"alice", b"")
    # No colon: a user with an empty password, which authenticates nobody (403 on B).
    assert status(SERVERS["B"], "remove", "alice") == 403
