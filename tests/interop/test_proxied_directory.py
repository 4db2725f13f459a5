"""Directory special remotes behind the gateway, used by the real git-annex client.

The gateway (set up with git-annex's own commands, as in shared/spec/examples/10) has a
plain directory remote and a chunked one (chunk=1MiB), both ``annex-proxy=true``. Over
HTTP and ssh a client copies to, gets from, fscks and drops from them, and testremote
passes; the gateway's own git-annex (the same remotes configured) sees every object we
stored, chunked ones included, and we serve what git-annex stored there directly.
A directory remote can also be a cluster node.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from annexproxy.testing.httpserver import annexproxy_serve
from annexproxy.testing.realannex import (
    AnnexRepo,
    assert_testremote_passes,
    make_annex_repo,
    make_cluster,
    make_ssh_client,
    run,
    seed_commit,
)

pytestmark = [pytest.mark.interop, pytest.mark.slow]

SMALL = b"small file through a proxied directory remote\n"
BIG = bytes(range(256)) * 10_000  # 2.56 MB: three chunks of 1 MiB


def _gateway(top: Path) -> AnnexRepo:
    gateway = make_annex_repo(top / "gateway", "gateway", bare=True)
    for name, extra in (("dirsr", []), ("chunksr", ["chunk=1MiB"])):
        (top / name).mkdir()
        gateway.annex(
            "initremote", "-q", name, "type=directory", f"directory={top / name}",
            "encryption=none", *extra,
        )  # fmt: skip
        gateway.git("config", f"remote.{name}.annex-proxy", "true")
    gateway.annex("updateproxy")
    return gateway


def _http_client(gateway: AnnexRepo, path: Path, url: str) -> AnnexRepo:
    run(["git", "clone", "-q", str(gateway.path), str(path)], path.parent)
    client = AnnexRepo(path=path, uuid="", bare=False, env={})
    client.git("config", "remote.origin.annexurl", url)
    client.git("config", "annex.security.allowed-ip-addresses", "127.0.0.1")
    client.annex("init", "-q", "client")
    client.annex("sync", "--no-content", "--quiet", check=False)
    return client


@pytest.fixture(params=["ssh", "http"])
def proxied(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[AnnexRepo, AnnexRepo]]:
    gateway = _gateway(tmp_path)
    if request.param == "ssh":
        yield gateway, make_ssh_client(gateway, tmp_path / "client", "client")
        return
    with annexproxy_serve(gateway.path, "--wideopen") as server:
        yield gateway, _http_client(gateway, tmp_path / "client", server.url)


def _add(client: AnnexRepo, name: str, data: bytes) -> str:
    (client.path / name).write_bytes(data)
    client.annex("add", "-q", name)
    client.git("commit", "-q", "-m", name)
    return client.annex("lookupkey", name).stdout.strip()


@pytest.mark.parametrize("remote", ["dirsr", "chunksr"])
def test_client_uses_a_proxied_directory_remote(
    proxied: tuple[AnnexRepo, AnnexRepo], remote: str
) -> None:
    gateway, client = proxied
    keys = {name: _add(client, name, data) for name, data in (("s.txt", SMALL), ("b.bin", BIG))}
    target = f"origin-{remote}"
    client.annex("copy", "-q", "--to", target, ".")
    uuid = gateway.git("config", f"remote.{remote}.annex-uuid").stdout.strip()
    for key in keys.values():
        # The gateway's git-annex, with the same remote, finds what we stored.
        assert gateway.annex("checkpresentkey", key, remote, check=False).returncode == 0
        gateway.annex("fsck", "-q", "--from", remote, "--key", key)
    assert uuid in client.annex("whereis", "b.bin").stdout
    client.annex("drop", "-q", "--force", ".")
    client.annex("get", "-q", "--from", target, ".")
    assert (client.path / "b.bin").read_bytes() == BIG
    client.annex("fsck", "-q", "--from", target, ".")
    client.annex("drop", "-q", "--from", target, "--force", "s.txt")
    assert gateway.annex("checkpresentkey", keys["s.txt"], remote, check=False).returncode == 1

    # What git-annex itself stored there is served too.
    own = AnnexRepo(path=gateway.path.parent / "own", uuid="", bare=False, env={})
    run(["git", "clone", "-q", str(gateway.path), str(own.path)], gateway.path.parent)
    own.annex("init", "-q", "own")
    directory = gateway.path.parent / remote
    own.annex("enableremote", "-q", remote, f"directory={directory}")
    own.git("config", f"remote.{remote}.annex-verified", "verified")  # as initremote sets it
    (own.path / "theirs.bin").write_bytes(BIG[::-1])
    own.annex("add", "-q", "theirs.bin")
    own.git("commit", "-q", "-m", "theirs")
    own.annex("copy", "-q", "--to", remote, "theirs.bin")
    theirs = own.annex("lookupkey", "theirs.bin").stdout.strip()
    own.annex("sync", "-q", "--no-content", "--only-annex", "origin")
    client.annex("sync", "-q", "--no-content", "--only-annex", "origin")
    client.annex("get", "-q", "--key", theirs, "--from", target)
    where = client.annex("contentlocation", theirs).stdout.strip()
    assert (client.path / where).read_bytes() == BIG[::-1]


def test_testremote_on_a_proxied_directory_remote(tmp_path: Path) -> None:
    gateway = _gateway(tmp_path)
    client = make_ssh_client(gateway, tmp_path / "client", "client")
    seed_commit(client)
    assert_testremote_passes(client, "origin-chunksr", fast=True)


def test_directory_remote_as_cluster_node(tmp_path: Path) -> None:
    setup = make_cluster(tmp_path, nodes=2)
    gateway = setup.gateway
    (tmp_path / "dirnode").mkdir()
    gateway.annex(
        "initremote", "-q", "dirnode", "type=directory", f"directory={tmp_path / 'dirnode'}",
        "encryption=none",
    )  # fmt: skip
    gateway.git("config", "remote.dirnode.annex-cluster-node", setup.name)
    gateway.annex("updatecluster")
    client = make_ssh_client(gateway, tmp_path / "client", "client")
    key = _add(client, "c.bin", BIG)
    client.annex("copy", "-q", "--to", f"origin-{setup.name}", "c.bin")
    assert gateway.annex("checkpresentkey", key, "dirnode", check=False).returncode == 0
    dir_uuid = gateway.git("config", "remote.dirnode.annex-uuid").stdout.strip()
    assert dir_uuid in client.annex("whereis", "c.bin").stdout
    client.annex("drop", "-q", "--from", f"origin-{setup.name}", "--force", "c.bin")
    assert gateway.annex("checkpresentkey", key, "dirnode", check=False).returncode == 1
