"""A 1 GiB fan-out to a cluster of a repository, an S3 bucket and a directory remote.

Issue 7's streaming claim, with the real client over HTTP: the gateway (``annexproxy
serve``) takes the whole upload with a peak RSS under 80 MB, and no temporary file of
the gateway (its annex tmp and othertmp, its TMPDIR, the directory remote's tmp) ever
grows past one chunk. The S3 remote is unchunked with ``partsize=64MiB`` (a multipart
upload whose parts stream); the directory remote is chunked at 64 MiB. Afterwards every
node has the object: the node repository, and the gateway's own git-annex finds and
verifies it on S3 and on the directory remote.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from annexproxy.testing.httpserver import annexproxy_serve
from annexproxy.testing.realannex import AnnexRepo, make_cluster, make_http_client
from annexproxy.testing.s3server import S3Server, s3_server

pytestmark = [pytest.mark.interop, pytest.mark.slow]

MIB = 1 << 20
SIZE = 1024 * MIB
CHUNK = 64 * MIB
RSS_LIMIT_KB = 80 * 1000


@pytest.fixture(scope="module")
def server() -> Iterator[S3Server]:
    with s3_server() as running:
        yield running


class LargestFile:
    """Watches directories from a thread and remembers the largest file seen in them."""

    def __init__(self, *roots: Path) -> None:
        self._roots = roots
        self._stop = threading.Event()
        self.largest = (0, "")
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            for root in self._roots:
                for top, _, files in os.walk(root):
                    for name in files:
                        try:
                            size = os.stat(os.path.join(top, name)).st_size
                        except FileNotFoundError:
                            continue
                        if size > self.largest[0]:
                            self.largest = (size, os.path.join(top, name))

    def __enter__(self) -> LargestFile:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for process {pid}")


def _write_big(path: Path) -> None:
    block = os.urandom(MIB)
    with path.open("wb") as out:
        for i in range(SIZE // MIB):
            out.write(i.to_bytes(8, "big") + block[8:])


def _init_specials(gateway: AnnexRepo, s3: S3Server, top: Path, cluster: str) -> None:
    gateway.git("config", "annex.security.allowed-ip-addresses", "all")
    gateway.annex(
        "initremote", "-q", "s3node", "type=S3", "host=127.0.0.1", f"port={s3.port}",
        "protocol=http", "requeststyle=path", "bucket=bigfanout", "encryption=none",
        "partsize=64MiB", env=s3.env,
    )  # fmt: skip
    (top / "dirnode").mkdir()
    gateway.annex(
        "initremote", "-q", "dirnode", "type=directory", f"directory={top / 'dirnode'}",
        "encryption=none", "chunk=64MiB",
    )  # fmt: skip
    for name in ("s3node", "dirnode"):
        gateway.git("config", f"remote.{name}.annex-cluster-node", cluster)
    gateway.annex("updatecluster")


def test_one_gib_fans_out_streamed(tmp_path: Path, server: S3Server) -> None:
    setup = make_cluster(tmp_path, nodes=1)
    gateway = setup.gateway
    _init_specials(gateway, server, tmp_path, setup.name)
    spool = tmp_path / "gateway-tmp"
    spool.mkdir()
    with annexproxy_serve(gateway.path, "--wideopen", env={"TMPDIR": str(spool)}) as served:
        client = make_http_client(gateway, tmp_path / "client", served.url)
        _write_big(client.path / "big.bin")
        client.annex("add", "-q", "big.bin")
        (client.path / "small.txt").write_text("x")
        client.annex("add", "-q", "small.txt")
        client.git("commit", "-q", "-m", "big")
        key = client.annex("lookupkey", "big.bin").stdout.strip()
        watched = (gateway.path / "annex", spool, tmp_path / "dirnode" / "tmp")
        print("before copy", _peak_rss_kb(served.process.pid))
        client.annex("copy", "-q", "--to", "origin-s3node", "small.txt", check=False)
        print("after s3 small", _peak_rss_kb(served.process.pid))
        with LargestFile(*watched) as largest:
            client.annex("copy", "-q", "--to", f"origin-{setup.name}", "big.bin")
        rss_kb = _peak_rss_kb(served.process.pid)
    assert rss_kb < RSS_LIMIT_KB, f"gateway peak RSS {rss_kb} kB"
    assert largest.largest[0] <= CHUNK, f"temporary file {largest.largest}"
    assert setup.nodes[0].annex("contentlocation", key, check=False).returncode == 0
    for remote in ("s3node", "dirnode"):
        env = server.env if remote == "s3node" else None
        gateway.annex("checkpresentkey", key, remote, env=env)
    # The gateway's git-annex verifies the directory remote's chunks (a full read back).
    gateway.annex("fsck", "-q", "--from", "dirnode", "--key", key)
    whereis = client.annex("whereis", "big.bin").stdout
    for remote in ("s3node", "dirnode"):
        assert gateway.git("config", f"remote.{remote}.annex-uuid").stdout.strip() in whereis
