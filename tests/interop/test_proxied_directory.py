"""Directory special remotes behind the gateway, used by the real git-annex client.

The gateway (set up with git-annex's own commands, as in shared/spec/examples/10) has a
plain directory remote, a chunked one (chunk=1MiB) and an encrypted chunked one
(encryption=shared), all ``annex-proxy=true``. Over HTTP and ssh a client copies to,
gets from, fscks and drops from them, and testremote passes (chunked and not); the
gateway's own git-annex and a plain clone with the same directory enabled see every
object we stored, chunked ones included (the clone through the chunk log on the
git-annex branch, which matches the one git-annex writes), and we serve what git-annex
stored there directly.
A directory remote can also be a cluster node. Drops around a proxied remote (LOCKCONTENT
refused, a last copy kept) go as with git-annex's own gateway.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from annexproxy.branch.logs.keyed import KeyedLog
from annexproxy.branch.paths import journal_name
from annexproxy.testing.proxygateway import gateway_client, make_proxy_gateway
from annexproxy.testing.realannex import (
    AnnexRepo,
    assert_testremote_passes,
    make_cluster,
    make_ssh_client,
    run,
    seed_commit,
)

pytestmark = [pytest.mark.interop, pytest.mark.slow]

SMALL = b"small file through a proxied directory remote\n"
BIG = bytes(range(256)) * 10_000  # 2.56 MB: three chunks of 1 MiB
REMOTES = {
    "dirsr": ["encryption=none"],
    "chunksr": ["encryption=none", "chunk=1MiB"],
    "encsr": ["encryption=shared", "chunk=1MiB"],
}


def _gateway(top: Path) -> AnnexRepo:
    remotes = {}
    for name, extra in REMOTES.items():
        (top / name).mkdir()
        remotes[name] = ["type=directory", f"directory={top / name}", *extra]
    return make_proxy_gateway(top / "gateway", remotes)


@pytest.fixture(params=["ssh", "http"])
def proxied(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[AnnexRepo, AnnexRepo]]:
    gateway = _gateway(tmp_path)
    with gateway_client(gateway, tmp_path / "client", request.param) as client:
        yield gateway, client


def _chunk_log(repo: AnnexRepo, key: str) -> str:
    """The chunk log of ``key`` as git-annex reads it (journal, else branch), no timestamp.

    A union merge of the git-annex branch (a ``sync`` from a clone that still had an
    older line) can leave several lines for one field; git-annex reads the newest, so do
    we, and show what is in effect as ``FIELD VALUE`` lines.
    """
    hashdir = repo.annex("examinekey", "--format=${hashdirlower}", key).stdout.strip()
    path = f"{hashdir}{key}.log.cnk"
    gitdir = repo.path / repo.git("rev-parse", "--git-dir").stdout.strip()
    journal = gitdir / "annex" / "journal" / journal_name(path)
    if journal.exists():
        shown = journal.read_text()
    else:
        shown = repo.git("cat-file", "-p", f"git-annex:{path}").stdout
    log = KeyedLog.parse(shown.encode())
    assert not log.unknown, shown
    in_effect = log.values()
    assert len(in_effect) == 1, shown
    return "\n".join(f"{field.decode()} {value.decode()}" for field, value in in_effect.items())


def _add(client: AnnexRepo, name: str, data: bytes) -> str:
    (client.path / name).write_bytes(data)
    client.annex("add", "-q", name)
    client.git("commit", "-q", "-m", name)
    return client.annex("lookupkey", name).stdout.strip()


@pytest.mark.parametrize("remote", sorted(REMOTES))
def test_client_uses_a_proxied_directory_remote(
    proxied: tuple[AnnexRepo, AnnexRepo], remote: str
) -> None:
    gateway, client = proxied
    keys = {name: _add(client, name, data) for name, data in (("s.txt", SMALL), ("b.bin", BIG))}
    target = f"origin-{remote}"
    client.annex("copy", "-q", "--to", target, ".")
    uuid = gateway.git("config", f"remote.{remote}.annex-uuid").stdout.strip()
    # Uploads took git-annex's upload transfer lock for the remote (and let go of it).
    assert not list((gateway.path / "annex" / "transfer" / "upload" / uuid).iterdir())
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

    # A plain git-annex repository with the same directory sees what the gateway stored,
    # once it has the gateway's git-annex branch, and its chunk log is git-annex's.
    assert own.annex("checkpresentkey", keys["b.bin"], remote, check=False).returncode == 0
    own.annex("fsck", "-q", "--from", remote, "--key", keys["b.bin"])
    if remote == "chunksr":
        assert _chunk_log(own, keys["b.bin"]) == _chunk_log(own, theirs) == f"{uuid}:1048576 3"
    client.annex("get", "-q", "--key", theirs, "--from", target)
    where = client.annex("contentlocation", theirs).stdout.strip()
    assert (client.path / where).read_bytes() == BIG[::-1]
    if remote == "chunksr":
        # A removal leaves "UUID:CHUNKSIZE 0", from git-annex and from us alike.
        own.annex("drop", "-q", "--from", remote, "--force", "theirs.bin")
        assert _chunk_log(own, theirs) == _chunk_log(gateway, keys["s.txt"])
        assert _chunk_log(gateway, keys["s.txt"]) == f"{uuid}:1048576 0"


@pytest.mark.parametrize("transport", ["ssh", "http"])
def test_testremote_on_a_proxied_directory_remote(tmp_path: Path, transport: str) -> None:
    gateway = _gateway(tmp_path)
    remotes = ("origin-chunksr", "origin-dirsr")
    with gateway_client(gateway, tmp_path / "client", transport) as client:
        seed_commit(client)
        for remote in remotes:
            assert_testremote_passes(client, remote, fast=True)


@pytest.mark.parametrize("transport", ["ssh", "http"])
def test_directory_remote_as_cluster_node(tmp_path: Path, transport: str) -> None:
    setup = make_cluster(tmp_path, nodes=2)
    gateway = setup.gateway
    (tmp_path / "dirnode").mkdir()
    gateway.annex(
        "initremote", "-q", "dirnode", "type=directory", f"directory={tmp_path / 'dirnode'}",
        "encryption=none", "chunk=1MiB",
    )  # fmt: skip
    gateway.git("config", "remote.dirnode.annex-cluster-node", setup.name)
    gateway.annex("updatecluster")
    with gateway_client(gateway, tmp_path / "client", transport) as client:
        key = _add(client, "c.bin", BIG)
        cluster = f"origin-{setup.name}"
        client.annex("copy", "-q", "--to", cluster, "c.bin")
        # The upload fanned out to the directory remote (in chunks) and to both nodes.
        assert gateway.annex("checkpresentkey", key, "dirnode", check=False).returncode == 0
        assert len([p for p in (tmp_path / "dirnode").rglob("*-S1048576-C*") if p.is_file()]) == 3
        for node in setup.nodes:
            assert node.annex("contentlocation", key, check=False).returncode == 0
        dir_uuid = gateway.git("config", "remote.dirnode.annex-uuid").stdout.strip()
        assert dir_uuid in client.annex("whereis", "c.bin").stdout
        # The gateway's own location log (its journal, read by its git-annex) too.
        assert dir_uuid in gateway.annex("whereis", "--key", key).stdout
        client.annex("drop", "-q", "--force", "c.bin")
        client.annex("get", "-q", "--from", cluster, "c.bin")
        assert (client.path / "c.bin").read_bytes() == BIG
        client.annex("drop", "-q", "--from", cluster, "--force", "c.bin")
        assert gateway.annex("checkpresentkey", key, "dirnode", check=False).returncode == 1
        assert dir_uuid not in gateway.annex("whereis", "--key", key, check=False).stdout


def _drop_session(top: Path, shell: str | None) -> list[tuple[int, list[str]]]:
    """A client's drops around a proxied chunked directory remote, as it saw them."""
    (top / "d").mkdir(parents=True)
    params = ["type=directory", f"directory={top / 'd'}", "encryption=none", "chunk=1KiB"]
    gateway = make_proxy_gateway(top / "gateway", {"d": params})
    client = make_ssh_client(gateway, top / "client", "client", shell=shell)
    _add(client, "f", b"hello\n" * 1000)
    seen = []
    for args in (
        ("copy", "--to", "origin-d", "f"),
        ("drop", "f"),  # the proxy answers LOCKCONTENT with FAILURE; the client goes on
        ("fsck", "--from", "origin-d", "f"),
        ("drop", "--from", "origin-d", "f"),  # the only copy: refused
        ("get", "--from", "origin-d", "f"),
        ("drop", "--from", "origin-d", "f"),
    ):
        result = client.annex(*args, check=False)
        lines = [line for line in result.stdout.splitlines() if "%" not in line]
        seen.append((result.returncode, lines))
    return seen


def test_drops_as_with_git_annex_gateway(tmp_path: Path) -> None:
    theirs = _drop_session(tmp_path / "theirs", "git-annex-shell")
    ours = _drop_session(tmp_path / "ours", None)
    assert ours == theirs
    assert [code for code, _ in ours] == [0, 0, 0, 1, 0, 0]


def test_unsupported_special_remote_refused_with_the_reason(tmp_path: Path) -> None:
    params = ["type=hook", "hooktype=x", "encryption=none"]
    gateway = make_proxy_gateway(tmp_path / "gateway", {"hooked": params})
    client = make_ssh_client(gateway, tmp_path / "client", "client")
    _add(client, "f", SMALL)
    result = client.annex("copy", "--to", "origin-hooked", "f", check=False)
    assert result.returncode == 1
    assert "cannot proxy to repository hooked: special remote 'hooked' has type 'hook'" in (
        result.stderr
    )
    assert "not configured to proxy" not in result.stderr
