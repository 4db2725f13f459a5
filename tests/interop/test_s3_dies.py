"""An S3 server that dies in the middle of an upload through the gateway.

A relay on loopback stands between the gateway and SeaweedFS and cuts every connection
once a set number of bytes has gone upstream, as a server that crashes mid-transfer
would. The client is told the copy failed, nothing claims the object (no location-log
line in the gateway, no object in the bucket), and once the relay lets bytes through
again the same copy succeeds.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from annexproxy.testing.realannex import make_annex_repo, make_ssh_client
from annexproxy.testing.s3server import S3Server, s3_server

pytestmark = [pytest.mark.interop, pytest.mark.slow]


class CuttingRelay:
    """A TCP relay to ``target`` that cuts connections after ``budget`` upstream bytes."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.budget: int | None = None  # None: pass everything
        self.cuts = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        self._loop.run_until_complete(server.wait_closed())
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        budget = self.budget

        async def upstream() -> None:
            nonlocal budget
            while data := await reader.read(65536):
                if budget is not None:
                    if len(data) >= budget:
                        self.cuts += 1
                        raise ConnectionResetError("relay cut")
                    budget -= len(data)
                up_writer.write(data)
                await up_writer.drain()

        async def downstream() -> None:
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()

        tasks = [asyncio.ensure_future(upstream()), asyncio.ensure_future(downstream())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for w in (writer, up_writer):
            w.transport.abort()

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def relayed(tmp_path: Path) -> Iterator[tuple[S3Server, CuttingRelay]]:
    with s3_server(tmp_path / "s3") as server:
        relay = CuttingRelay(server.port)
        try:
            yield server, relay
        finally:
            relay.close()


def test_s3_dying_mid_upload_fails_clearly_and_claims_nothing(
    tmp_path: Path, relayed: tuple[S3Server, CuttingRelay]
) -> None:
    server, relay = relayed
    gateway = make_annex_repo(tmp_path / "gateway", "gateway", bare=True)
    gateway.git("config", "annex.security.allowed-ip-addresses", "all")
    gateway.annex(
        "initremote", "-q", "s3", "type=S3", "host=127.0.0.1", f"port={relay.port}",
        "protocol=http", "requeststyle=path", "bucket=dies", "encryption=none",
        env=server.env,
    )  # fmt: skip
    gateway.git("config", "remote.s3.annex-proxy", "true")
    gateway.annex("updateproxy")
    client = make_ssh_client(gateway, tmp_path / "client", "client")
    data = bytes(range(256)) * 40_000  # 10 MB
    (client.path / "big.bin").write_bytes(data)
    client.annex("add", "-q", "big.bin")
    client.git("commit", "-q", "-m", "big")
    key = client.annex("lookupkey", "big.bin").stdout.strip()
    uuid = gateway.git("config", "remote.s3.annex-uuid").stdout.strip()

    relay.budget = 3_000_000  # the server "dies" 3 MB into the upload
    failed = client.annex("copy", "--to", "origin-s3", "big.bin", check=False)
    assert failed.returncode != 0
    assert relay.cuts >= 1
    assert uuid not in client.annex("whereis", "big.bin").stdout
    assert uuid not in gateway.annex("whereis", "--key", key, check=False).stdout
    assert gateway.annex("checkpresentkey", key, "s3", check=False).returncode == 1

    relay.budget = None  # back up: the same copy now succeeds
    client.annex("copy", "-q", "--to", "origin-s3", "big.bin")
    assert gateway.annex("checkpresentkey", key, "s3", check=False).returncode == 0
    gateway.annex("fsck", "-q", "--from", "s3", "--key", key)
    assert uuid in client.annex("whereis", "big.bin").stdout
