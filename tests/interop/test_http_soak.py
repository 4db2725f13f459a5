"""Soak: 16 clients loop get/put/remove/lock on shared keys against `annexproxy serve`.

Some cut their connections mid-transfer. It must end with no hang, no leaked lock and
every stored object good.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from annexproxy.testing.httpserver import annexproxy_serve
from annexproxy.testing.realannex import AnnexRepo

pytestmark = [pytest.mark.interop, pytest.mark.slow]

CLIENTS = 16
ROUNDS = 25
CLIENT_UUID = "5d1e5e5e-0000-4000-8000-000000000001"


def _content(i: int) -> bytes:
    return hashlib.sha256(str(i).encode()).digest() * (4096 * (1 + i % 5))


CONTENTS = [_content(i) for i in range(6)]
KEYS = [f"SHA256E-s{len(c)}--{hashlib.sha256(c).hexdigest()}.bin" for c in CONTENTS]


async def _client(session: aiohttp.ClientSession, base: str, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    stats = {"put": 0, "get": 0, "remove": 0, "lock": 0, "cut": 0}
    for _ in range(ROUNDS):
        i = rng.randrange(len(KEYS))
        key, content = KEYS[i], CONTENTS[i]
        query = {"key": key, "clientuuid": CLIENT_UUID}
        action = rng.choice(["put", "put", "get", "get", "remove", "lock", "cut-put", "cut-get"])
        if action in ("put", "cut-put"):
            body = content if action == "put" else content[: len(content) // 3]
            headers = {"X-git-annex-data-length": str(len(content))}
            async with session.post(
                f"{base}/v4/put", params=query, data=body, headers=headers
            ) as r:
                assert r.status == 200
                answer = await r.json()
                if action == "put":
                    assert answer["stored"] is True
            stats["put" if action == "put" else "cut"] += 1
        elif action in ("get", "cut-get"):
            url = f"{base}/v4/key/{key}"
            async with session.get(url, params={"clientuuid": CLIENT_UUID}) as r:
                assert r.status == 200
                length = int(r.headers["X-git-annex-data-length"])
                if action == "cut-get":
                    await r.content.read(1000)
                    r.close()  # drop the connection mid-download
                    stats["cut"] += 1
                    continue
                data = await r.read()
                assert len(data) == length
                assert length == 0 or data == content
            stats["get"] += 1
        elif action == "remove":
            async with session.post(f"{base}/v4/remove", params=query) as r:
                assert r.status == 200
                assert "removed" in await r.json()
            stats["remove"] += 1
        else:
            async with session.post(f"{base}/v4/lockcontent", params=query) as r:
                answer = await r.json()
            if answer["locked"]:
                lock_query = {"lockid": answer["lockid"], "clientuuid": CLIENT_UUID}

                async def unlock_lines() -> AsyncIterator[bytes]:
                    yield b'{"unlock":false}\n'
                    await asyncio.sleep(0)
                    yield b'{"unlock":true}\n'

                async with session.post(
                    f"{base}/v4/keeplocked", params=lock_query, data=unlock_lines()
                ) as r:
                    assert await r.json() == {"locked": False}
            stats["lock"] += 1
    return stats


def test_soak(annex_repo_factory: Callable[..., AnnexRepo]) -> None:
    repo = annex_repo_factory("server", bare=True)
    with annexproxy_serve(repo.path, "--wideopen", "--no-access-log") as server:
        http = server.url.replace("annex+http", "http")
        base = f"{http}{repo.uuid}"

        async def soak() -> list[dict[str, int]]:
            connector = aiohttp.TCPConnector(limit=64)
            async with aiohttp.ClientSession(connector=connector) as session:
                async with asyncio.timeout(120):
                    return await asyncio.gather(
                        *(_client(session, base, seed) for seed in range(CLIENTS))
                    )

        results = asyncio.run(soak())
        assert sum(r["put"] for r in results) > 0
        assert sum(r["cut"] for r in results) > 0

        async def cleanup() -> None:
            # No leaked lock: every key can be removed now.
            async with aiohttp.ClientSession() as session:
                for key in KEYS:
                    query = {"key": key, "clientuuid": CLIENT_UUID}
                    async with session.post(f"{base}/v4/remove", params=query) as r:
                        assert (await r.json())["removed"] is True

        for key in KEYS:  # every object still present is good
            if repo.annex("contentlocation", key, check=False).returncode == 0:
                repo.annex("fsck", "--key", key, "--quiet")
        asyncio.run(cleanup())
    objects = [p for p in (repo.annexdir / "objects").rglob("*") if p.is_file()]
    assert [p for p in objects if not p.name.endswith((".lck", ".rtm", ".rtl"))] == []
    assert [p for p in objects if p.name.endswith((".rtm", ".rtl"))] == []
