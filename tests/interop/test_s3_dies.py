"""An S3 server that dies in the middle of a transfer through the gateway.

A relay on loopback (`annexproxy.testing.relay`) stands between the gateway and
SeaweedFS and cuts connections once a set number of bytes has gone through, as a server
that crashes mid-transfer would.

* Upload: the client is told the copy failed, nothing claims the object (no
  location-log line in the gateway, no object in the bucket), and once the relay lets
  bytes through again the same copy succeeds.
* Download: the gateway reads on from where the cut connection stopped (a ranged GET;
  for chunked content, in the chunk holding that byte), so the client's one
  ``git annex get`` succeeds and verifies, and far fewer bytes than the object's size
  are read twice. A client that already holds part of the file (its ``annex/tmp``)
  asks for the rest only (P2P ``GET offset`` over ssh, p2phttp ``offset=`` over HTTP),
  and the gateway reads only the rest from S3.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from annexproxy.testing.httpserver import annexproxy_serve
from annexproxy.testing.realannex import (
    AnnexRepo,
    make_annex_repo,
    make_http_client,
    make_ssh_client,
)
from annexproxy.testing.relay import CuttingRelay
from annexproxy.testing.s3server import S3Server, s3_server

pytestmark = [pytest.mark.interop, pytest.mark.slow]


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


def _s3_gateway(
    tmp_path: Path, server: S3Server, relay: CuttingRelay, *extra: str
) -> tuple[AnnexRepo, AnnexRepo]:
    """A gateway proxying an S3 remote reached through ``relay``, and an ssh client."""
    gateway = make_annex_repo(tmp_path / "gateway", "gateway", bare=True)
    gateway.git("config", "annex.security.allowed-ip-addresses", "all")
    gateway.annex(
        "initremote", "-q", "s3", "type=S3", "host=127.0.0.1", f"port={relay.port}",
        "protocol=http", "requeststyle=path", "bucket=dies", "encryption=none", *extra,
        env=server.env,
    )  # fmt: skip
    gateway.git("config", "remote.s3.annex-proxy", "true")
    gateway.annex("updateproxy")
    return gateway, make_ssh_client(gateway, tmp_path / "client", "client")


@pytest.mark.parametrize("chunking", ["", "chunk=1MiB"])
def test_s3_dying_mid_download_is_resumed_and_the_get_succeeds(
    tmp_path: Path, relayed: tuple[S3Server, CuttingRelay], chunking: str
) -> None:
    server, relay = relayed
    _gateway, client = _s3_gateway(tmp_path, server, relay, *filter(None, [chunking]))
    data = bytes(range(251)) * 40_000  # 10 MB, a period that does not divide a chunk
    (client.path / "big.bin").write_bytes(data)
    client.annex("add", "-q", "big.bin")
    client.git("commit", "-q", "-m", "big")
    client.annex("copy", "-q", "--to", "origin-s3", "big.bin")
    client.annex("drop", "-q", "--force", "big.bin")

    relay.up_bytes = relay.down_bytes = 0
    relay.down_budget, relay.max_cuts = 3_000_000, 1  # S3 "dies" 3 MB into the download
    got = client.annex("get", "--from", "origin-s3", "big.bin")
    assert relay.cuts == 1
    assert "resuming there" in got.stderr  # the gateway said what it did
    assert (client.path / "big.bin").read_bytes() == data
    client.annex("fsck", "-q", "big.bin")  # the client verified it against its key
    # Read on from the cut, not again from the start (that would be 13 MB and more).
    assert relay.down_bytes < len(data) + 1_000_000


@pytest.mark.parametrize("transport", ["ssh", "http"])
def test_a_get_from_an_offset_reads_only_the_rest_from_s3(
    tmp_path: Path, relayed: tuple[S3Server, CuttingRelay], transport: str
) -> None:
    server, relay = relayed
    gateway, client = _s3_gateway(tmp_path, server, relay)
    data = bytes(range(251)) * 40_000
    (client.path / "big.bin").write_bytes(data)
    client.annex("add", "-q", "big.bin")
    client.git("commit", "-q", "-m", "big")
    key = client.annex("lookupkey", "big.bin").stdout.strip()
    client.annex("copy", "-q", "--to", "origin-s3", "big.bin")
    client.annex("drop", "-q", "--force", "big.bin")
    with contextlib.ExitStack() as stack:
        if transport == "http":  # a client through annex+http (p2phttp's offset=)
            client.git("push", "-q", "origin", "HEAD:main")  # big.bin (its log is there)
            served = stack.enter_context(annexproxy_serve(gateway.path, "--wideopen"))
            client = make_http_client(gateway, tmp_path / "httpclient", served.url)
        # What an interrupted get leaves: the first 8 MB in the client's annex/tmp.
        partial = client.annexdir / "tmp" / key
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(data[:8_000_000])

        relay.up_bytes = relay.down_bytes = 0
        client.annex("get", "-q", "--from", "origin-s3", "big.bin")
        assert (client.path / "big.bin").read_bytes() == data
        client.annex("fsck", "-q", "big.bin")
        assert relay.down_bytes < 2_500_000  # the last 2 MB (and headers), not 10 MB
