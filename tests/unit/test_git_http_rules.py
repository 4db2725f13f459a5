"""The git side's URL rules and the CGI header parser, without processes or sockets."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from annexproxy.errors import ConfigError, RemoteProtocolError
from annexproxy.p2phttp.api import HttpError
from annexproxy.server.git_http import (
    GitUrlMap,
    classify,
    discovery_config,
    split_path,
    url_names,
    validate_annex_url,
)
from annexproxy.server.served import ServedRepository
from annexproxy.transports.cgi import CgiHead, parse_cgi_head


@pytest.mark.parametrize(
    ("raw", "segments"),
    [
        ("/", ()),
        ("/a/info/refs?service=git-upload-pack", ("a", "info", "refs")),
        ("//a///config", ("a", "config")),
        ("/nested/deep/%63/config", ("nested", "deep", "c", "config")),
        ("/%C3%A4/HEAD", ("ä", "HEAD")),
    ],
)
def test_split_path(raw: str, segments: tuple[str, ...]) -> None:
    assert split_path(raw) == segments


@pytest.mark.parametrize(
    "raw",
    [
        "/../a",
        "/a/..",
        "/a/./config",
        "/%2e%2e/a",
        "/%2E/a",
        "/a%2Fb/config",
        "/a%5Cb/config",
        "/a%00/config",
        "/%ff/config",
        "a/config",
        "http://host/a/config",
    ],
)
def test_split_path_refuses_tricks(raw: str) -> None:
    with pytest.raises(HttpError) as info:
        split_path(raw)
    assert info.value.status == 404


def test_url_names() -> None:
    assert url_names(("repo",), bare=False, at_root=True) == [
        ("repo",),
        ("repo.git",),
        ("repo", ".git"),
        (),
    ]
    assert url_names(("x", "b.git"), bare=True, at_root=False) == [("x", "b.git"), ("x", "b")]
    assert url_names((".git",), bare=True, at_root=False) == [(".git",), (".git.git",)]
    assert url_names((), bare=True, at_root=False) == [()]


@pytest.mark.parametrize(
    ("rest", "method", "service", "kind", "write"),
    [
        (("config",), "GET", "", "config", False),
        (("info", "refs"), "GET", "git-upload-pack", "cgi", False),
        (("info", "refs"), "GET", "git-receive-pack", "cgi", True),
        (("info", "refs"), "HEAD", "", "cgi", False),
        (("git-upload-pack",), "POST", "", "cgi", False),
        (("git-receive-pack",), "POST", "", "cgi", True),
        (("HEAD",), "GET", "", "cgi", False),
        (("objects", "ab", "c" * 38), "GET", "", "cgi", False),
        (("objects", "pack", "pack-" + "0" * 40 + ".idx"), "GET", "", "cgi", False),
    ],
)
def test_classify(rest: tuple[str, ...], method: str, service: str, kind: str, write: bool) -> None:
    query = {"service": [service]} if service else {}
    wanted = classify(rest, method, query)
    assert (wanted.kind, wanted.write) == (kind, write)
    assert wanted.path_info == "/" + "/".join(rest)


@pytest.mark.parametrize(
    ("rest", "method", "status"),
    [
        (("description",), "GET", 404),
        (("hooks", "post-update"), "GET", 404),
        (("objects", "ab", "C" * 38), "GET", 404),
        (("objects", "info", "packs", "x"), "GET", 404),
        (("info",), "GET", 404),
        ((), "GET", 404),
        (("git-upload-pack",), "GET", 405),
        (("git-receive-pack",), "PUT", 405),
        (("config",), "POST", 405),
    ],
)
def test_classify_refuses(rest: tuple[str, ...], method: str, status: int) -> None:
    with pytest.raises(HttpError) as info:
        classify(rest, method, {})
    assert info.value.status == status


def test_resolve_prefers_a_git_path(tmp_path: Path) -> None:
    one, info = tmp_path / "one", tmp_path / "one" / "info"
    served = [
        ServedRepository(path=one, storage=None),  # type: ignore[arg-type]
        ServedRepository(path=info, storage=None),  # type: ignore[arg-type]
    ]

    class Registry:
        def all(self) -> list[ServedRepository]:
            return served

        async def refresh(self) -> None:
            return None

    urls = GitUrlMap(Registry(), singles=(), directories=(one,))  # type: ignore[arg-type]

    def resolve(*segments: str) -> tuple[ServedRepository, tuple[str, ...]] | None:
        return asyncio.run(urls.resolve(segments))

    assert resolve("info", "refs") == (served[0], ("info", "refs"))
    assert resolve("info", "info", "refs") == (served[1], ("info", "refs"))
    assert resolve("info", "config") == (served[1], ("config",))
    assert resolve("info", "description") is None
    assert resolve() is None


def test_discovery_config() -> None:
    text = discovery_config("b9ea2830-9f27-4383-8602-ecfef4699f7e", "annex+http://h:1/git-annex/")
    assert text == (
        "[annex]\n\tuuid = b9ea2830-9f27-4383-8602-ecfef4699f7e\n"
        "\turl = annex+http://h:1/git-annex/\n"
    )


@pytest.mark.parametrize(
    "url", ["http://h/git-annex/", "annex+ftp://h/", "annex+http://h/ #x", "annex+http://"]
)
def test_validate_annex_url_refuses(url: str) -> None:
    with pytest.raises(ConfigError):
        validate_annex_url(url)


def test_parse_cgi_head() -> None:
    lines = [
        b"Expires: Fri, 01 Jan 1980 00:00:00 GMT\n",
        b"Status: 403 Forbidden\r\n",
        b"Expires: Fri, 01 Jan 1980 00:00:00 GMT\n",
        b"Content-Type:text/plain\n",
    ]
    assert parse_cgi_head(lines) == CgiHead(
        status=403,
        reason="Forbidden",
        headers=(
            ("Expires", "Fri, 01 Jan 1980 00:00:00 GMT"),
            ("Content-Type", "text/plain"),
        ),
    )
    assert parse_cgi_head([]).status == 200
    assert parse_cgi_head([b"Location: /x\n"]).status == 302


@pytest.mark.parametrize(
    "line", [b"no colon\n", b"Status: 2000\n", b"Status: +20\n", b"Bad Name: x\n", b": x\n"]
)
def test_parse_cgi_head_refuses(line: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_cgi_head([line])


def test_export_report_as_sideband_progress() -> None:
    from annexproxy.server.git_http import sideband_messages

    first = b"0030\x01000eunpack ok\n"
    assert sideband_messages(first, b"0000", ["export r f ok"]) == (b"0013\x02export r f ok\n0000")
    # No side-band, nothing to say, or an unexpected end: left as it was.
    assert sideband_messages(b"000eunpack ok\n", b"0000", ["x"]) == b"0000"
    assert sideband_messages(first, b"0000", []) == b"0000"
    assert sideband_messages(first, b"ok\n0", ["x"]) == b"ok\n0"
