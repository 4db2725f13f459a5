"""HttpNodeStorage against a scripted aiohttp server: URLs, version fallback, body framing.

The interop tests prove the client against real servers; these pin down what a real server
cannot be made to do on demand: answer 404 for new versions, send a body shorter or
longer than announced, or watch a request body arrive line by line.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from annexproxy.errors import ConfigError, KeyNotPresent, StorageError, VerificationFailed
from annexproxy.keys import Key
from annexproxy.storage.httpnode import HttpNodeStorage, api_base, endpoint_url
from annexproxy.uuids import RepoUUID

NODE = RepoUUID("8a4e1b2c-0000-4000-8000-000000000001")
CLIENT = RepoUUID("506f13e8-32ba-4e70-a3c2-46fb079139b1")
KEY = Key.parse("SHA256E-s10--" + "a" * 64 + ".bin")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.mark.parametrize(
    ("annex_url", "base"),
    [
        ("annex+http://h", f"http://h:9417/git-annex/{NODE}/"),
        ("annex+http://h/git-annex", f"http://h:9417/git-annex/{NODE}/"),
        ("annex+http://h:80/git-annex/", f"http://h/git-annex/{NODE}/"),  # yarl drops :80
        ("annex+https://h/prefix/", f"https://h:9417/prefix/git-annex/{NODE}/"),
        ("annex+https://h/prefix", f"https://h:9417/prefix/git-annex/{NODE}/"),
        ("annex+http://h/p/git-annex/", f"http://h:9417/p/git-annex/git-annex/{NODE}/"),
        ("annex+http://[::1]:5/", f"http://[::1]:5/git-annex/{NODE}/"),
    ],
)
def test_base_path_rule(annex_url: str, base: str) -> None:
    assert str(api_base(annex_url, NODE)) == base


@pytest.mark.parametrize("bad", ["http://h/git-annex/", "annex+ftp://h/", "annex+http:///x"])
def test_bad_annex_url(bad: str) -> None:
    with pytest.raises(ConfigError):
        api_base(bad, NODE)


def test_query_encoding_and_wrapping() -> None:
    base = api_base("annex+http://h/", NODE)
    url = endpoint_url(
        base,
        4,
        "put",
        [("key", "WORM-s5-m1--,a&b+c d.txt"), ("associatedfile", "[x y].txt"), ("bypass", "u")],
    )
    wrapped = base64.urlsafe_b64encode(b"[x y].txt").decode()
    assert str(url) == (
        f"{base}v4/put?key=WORM-s5-m1--%2Ca%26b%2Bc%20d.txt&associatedfile=%5B{wrapped}%5D&bypass=u"
    )


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    async with TestServer(app) as server:
        yield f"annex+http://127.0.0.1:{server.port}/mount/"


def test_version_fallback_is_remembered() -> None:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(request.path_qs)
        if "/v4/" in request.path or "/v3/" in request.path:
            raise web.HTTPNotFound()
        assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
        return web.json_response({"present": True})

    async def body() -> None:
        async with (
            serving(handler) as url,
            HttpNodeStorage(
                NODE, url, client_uuid=CLIENT, credentials=("u", "p"), bypass=(RepoUUID("b1"),)
            ) as storage,
        ):
            assert await storage.checkpresent(KEY)
            assert await storage.checkpresent(KEY)
            assert storage.version == 2
            with pytest.raises(StorageError, match="v2, which has no gettimestamp"):
                await storage.timestamp()

    asyncio.run(body())
    query = f"?key={KEY}&clientuuid={CLIENT}&bypass=b1"
    assert seen == [f"/mount/git-annex/{NODE}/v{n}/checkpresent{query}" for n in (4, 3, 2, 2)]


def test_timestamp_falls_back_through_a_probe() -> None:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(request.path.rsplit("/", 2)[-2] + "/" + request.path.rsplit("/", 1)[-1])
        if "/v4/" in request.path or "/v3/" in request.path:
            raise web.HTTPNotFound()
        return web.json_response({"present": False})

    async def body() -> None:
        async with (
            serving(handler) as url,
            HttpNodeStorage(NODE, url, client_uuid=CLIENT) as storage,
        ):
            with pytest.raises(StorageError, match="needs v3 or later"):
                await storage.timestamp()

    asyncio.run(body())
    assert seen == ["v4/gettimestamp", "v3/gettimestamp", "v2/checkpresent"]


def _get_handler(declared: int, payload: bytes) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/checkpresent"):
            return web.json_response({"present": True})
        resp = web.StreamResponse(headers={"X-git-annex-data-length": str(declared)})
        await resp.prepare(request)
        await resp.write(payload)
        await resp.write_eof()
        return resp

    return handler


@pytest.mark.parametrize(
    ("declared", "payload", "unchanged"),
    [(10, b"0123456789", True), (10, b"012345678", False), (10, b"0123456789!", False)],
)
def test_retrieve_checks_the_length(declared: int, payload: bytes, unchanged: bool) -> None:
    async def body() -> None:
        async with (
            serving(_get_handler(declared, payload)) as url,
            HttpNodeStorage(NODE, url, client_uuid=CLIENT) as storage,
            storage.retrieve(KEY) as src,
        ):
            assert src.length == declared
            data = b"".join([piece async for piece in src.chunks(4)])
            assert data == payload[:declared]
            assert src.unchanged() is unchanged

    asyncio.run(body())


def test_retrieve_length_zero_means_absent() -> None:
    async def body() -> None:
        async with (
            serving(_get_handler(0, b"")) as url,
            HttpNodeStorage(NODE, url, client_uuid=CLIENT) as storage,
        ):
            with pytest.raises(KeyNotPresent):
                async with storage.retrieve(KEY):
                    pass
            async with storage.retrieve(KEY, offset=10) as src:
                assert src.length == 0
                assert src.unchanged()

    asyncio.run(body())


class PutServer:
    """Answers putoffset with 0 and records what each put received."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, str, bytes, str]] = []  # length, offset, body, end
        self.cut = asyncio.Event()
        self.receiving = asyncio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/checkpresent"):
            return web.json_response({"present": False})
        if request.path.endswith("/putoffset"):
            return web.json_response({"offset": 0})
        got = b""
        length = request.headers["X-git-annex-data-length"]
        try:
            while chunk := await request.content.read(1000):
                got += chunk
                self.receiving.set()
        except BaseException:  # aiohttp cancels the handler when the client goes away
            self.bodies.append((length, request.query["offset"], got, "cut"))
            self.cut.set()
            raise
        self.bodies.append((length, request.query["offset"], got, "eof"))
        return web.json_response({"stored": len(got) == int(length), "plusuuids": ["p1"]})


def test_put_streams_and_withholds_the_last_byte_when_invalid() -> None:
    server = PutServer()

    async def body() -> None:
        async with (
            serving(server.handle) as url,
            HttpNodeStorage(NODE, url, client_uuid=CLIENT) as storage,
        ):
            async with storage.upload(KEY) as up:
                await up.write(b"01234")
                await up.write(b"56789")
                assert await up.commit(sender_valid=True) == ("p1",)
            async with storage.upload(KEY) as up:
                await up.write(b"0123456789")
                with pytest.raises(VerificationFailed):
                    await up.commit(sender_valid=False)
            async with storage.upload(KEY) as up:
                await up.write(b"0123")  # left without commit: the body ends short
            assert server.bodies[-1] == ("10", "0", b"0123", "eof")
            server.receiving.clear()

            async def cancelled_upload() -> None:
                async with storage.upload(KEY) as up:
                    await up.write(b"01234")
                    await asyncio.Event().wait()

            task = asyncio.create_task(cancelled_upload())
            await server.receiving.wait()
            task.cancel()
            await server.cut.wait()

    asyncio.run(body())
    assert server.bodies[0] == ("10", "0", b"0123456789", "eof")
    assert server.bodies[1] == ("10", "0", b"012345678", "eof")
    assert server.bodies[-1] == ("10", "0", b"01234", "cut")


def test_keeplocked_sends_unlock_false_at_once_and_unlocks_on_release() -> None:
    lines: list[bytes] = []
    first_line = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/lockcontent"):
            return web.json_response({"locked": True, "lockid": "L1"})
        assert request.query["lockid"] == "L1"
        while line := await request.content.readline():
            lines.append(line)
            first_line.set()
        return web.json_response({"locked": False})

    async def body() -> None:
        async with (
            serving(handler) as url,
            HttpNodeStorage(NODE, url, client_uuid=CLIENT) as storage,
        ):
            lock = await storage.lock_content(KEY)
            await first_line.wait()
            assert lines == [b'{"unlock":false}\n']
            await lock.release()
            assert [json.loads(line) for line in lines] == [{"unlock": False}, {"unlock": True}]
            await lock.release()

    asyncio.run(body())
