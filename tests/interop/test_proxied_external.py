"""An external special remote behind the gateway, used by the real git-annex client.

The gateway has an external remote (``git-annex-remote-testdir``, tests/interop/
testdir_remote.py, on PATH) with ``annex-proxy=true`` and ``annexproxy updateproxy``.
Over ssh (annexproxy-shell) and HTTP (annexproxy serve) a client copies to it, gets from
it, fscks and drops from it; the gateway's own git-annex sees what we stored.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from annexproxy.testing.proxygateway import gateway_client, make_proxy_gateway
from annexproxy.testing.realannex import (
    AnnexRepo,
    annex_env,
    assert_testremote_passes,
    make_cluster,
    make_ssh_client,
    run,
    seed_commit,
    shell_program,
)

pytestmark = [pytest.mark.interop, pytest.mark.slow]

CLIENT = "506f13e8-32ba-4e70-a3c2-46fb079139b1"
SMALL = b"small file through a proxied external remote\n"
BIG = bytes(range(256)) * 4_000  # 1 MB: many 64 KiB writes by the program


def spooled(repo: AnnexRepo) -> list[str]:
    """Our files below annex/tmp (spools, kept or not; empty directories do not count)."""
    tmp = repo.annexdir / "tmp"
    found = tmp.rglob("*") if tmp.exists() else []
    names = (str(p.relative_to(tmp)) for p in found if not p.is_dir())
    return sorted(name for name in names if name.startswith("annexproxy-"))


def _gateway(top: Path, store: Path, *extra: str) -> AnnexRepo:
    """A gateway proxying ``ext``, the test program storing in ``store``."""
    store.mkdir()
    params = ["type=external", "externaltype=testdir", *extra, f"directory={store}"]
    return make_proxy_gateway(
        top / "gateway", {"ext": params}, updateproxy=["annexproxy", "updateproxy"]
    )


@pytest.fixture
def gateway(tmp_path: Path, program_on_path: Path) -> AnnexRepo:
    return _gateway(tmp_path, tmp_path / "store dir", "encryption=none")


@pytest.fixture(params=["ssh", "http"])
def client(
    request: pytest.FixtureRequest, gateway: AnnexRepo, tmp_path: Path
) -> Iterator[AnnexRepo]:
    with gateway_client(gateway, tmp_path / "client", request.param, sync=True) as made:
        yield made


def _add(client: AnnexRepo, name: str, data: bytes) -> str:
    (client.path / name).write_bytes(data)
    client.annex("add", "-q", name)
    client.git("commit", "-q", "-m", name)
    return client.annex("lookupkey", name).stdout.strip()


def test_client_uses_a_proxied_external_remote(gateway: AnnexRepo, client: AnnexRepo) -> None:
    keys = {name: _add(client, name, data) for name, data in (("s.txt", SMALL), ("b.bin", BIG))}
    client.annex("copy", "-q", "--to", "origin-ext", ".")
    uuid = gateway.git("config", "remote.ext.annex-uuid").stdout.strip()
    for key in keys.values():
        # The gateway's git-annex, running the same program, finds what we stored.
        assert gateway.annex("checkpresentkey", key, "ext", check=False).returncode == 0
        gateway.annex("fsck", "-q", "--from", "ext", "--key", key)
    assert uuid in client.annex("whereis", "b.bin").stdout
    client.annex("drop", "-q", "--force", ".")
    client.annex("get", "-q", "--from", "origin-ext", ".")
    assert (client.path / "b.bin").read_bytes() == BIG
    assert (client.path / "s.txt").read_bytes() == SMALL
    client.annex("fsck", "-q", "--from", "origin-ext", ".")
    client.annex("drop", "-q", "--from", "origin-ext", "--force", "s.txt")
    assert gateway.annex("checkpresentkey", keys["s.txt"], "ext", check=False).returncode == 1
    assert uuid not in client.annex("whereis", "s.txt").stdout
    tmp = gateway.annexdir / "tmp"
    assert spooled(gateway) == []
    # It was annexproxy (not a git-annex) that ran the program, spooling through annex/tmp.
    trace = (gateway.path.parent / "store dir" / "trace.log").read_text().splitlines()
    stores = [line for line in trace if line.startswith("TRANSFER STORE")]
    assert len(stores) == 2
    assert all(f" {tmp.resolve()}/annexproxy-store-" in line for line in stores)
    assert any(line.startswith(f"TRANSFER RETRIEVE {keys['b.bin']} ") for line in trace)


def test_testremote_on_a_proxied_external_remote(gateway: AnnexRepo, tmp_path: Path) -> None:
    client = make_ssh_client(gateway, tmp_path / "client", "client", sync=True)
    seed_commit(client)
    assert_testremote_passes(client, "origin-ext", fast=True)


def test_external_remote_as_cluster_node(tmp_path: Path, program_on_path: Path) -> None:
    setup = make_cluster(tmp_path / "cluster", nodes=2)
    store = tmp_path / "node store"
    store.mkdir()
    setup.gateway.annex(
        "initremote", "-q", "extnode", "type=external", "externaltype=testdir",
        "encryption=none", f"directory={store}",
    )  # fmt: skip
    setup.gateway.git("config", "remote.extnode.annex-cluster-node", setup.name)
    setup.gateway.annex("updatecluster")
    client = make_ssh_client(setup.gateway, tmp_path / "client", "client")
    key = _add(client, "c.bin", BIG)
    client.annex("copy", "-q", "--to", f"origin-{setup.name}", "c.bin")
    assert setup.gateway.annex("checkpresentkey", key, "extnode", check=False).returncode == 0
    node_uuid = setup.gateway.git("config", "remote.extnode.annex-uuid").stdout.strip()
    assert node_uuid in client.annex("whereis", "c.bin").stdout
    client.annex("drop", "-q", "--force", "c.bin")
    client.annex("get", "-q", "--from", f"origin-{setup.name}", "c.bin")
    assert (client.path / "c.bin").read_bytes() == BIG
    client.annex("drop", "-q", "--from", f"origin-{setup.name}", "--force", "c.bin")
    assert setup.gateway.annex("checkpresentkey", key, "extnode", check=False).returncode == 1


def test_encrypted_chunked_external_remote(tmp_path: Path, program_on_path: Path) -> None:
    """encryption=shared and chunk=: the program sees only GPGHMAC keys, git-annex agrees."""
    store = tmp_path / "enc store"
    made = _gateway(tmp_path, store, "encryption=shared", "chunk=256KiB")
    client = make_ssh_client(made, tmp_path / "client", "client", sync=True)
    key = _add(client, "b.bin", BIG)
    client.annex("copy", "-q", "--to", "origin-ext", "b.bin")
    stored = [p.name for p in store.rglob("*") if p.is_file() and p.parent.name == p.name]
    assert len(stored) == 4  # 1 MB in chunks of 256 KiB, each under an encrypted name
    assert all(name.startswith("GPGHMACSHA1--") for name in stored)  # default mac
    assert made.annex("checkpresentkey", key, "ext", check=False).returncode == 0
    made.annex("fsck", "-q", "--from", "ext", "--key", key)
    client.annex("drop", "-q", "--force", "b.bin")
    client.annex("get", "-q", "--from", "origin-ext", "b.bin")
    assert (client.path / "b.bin").read_bytes() == BIG


def test_proxied_get_streams_while_the_program_writes(gateway: AnnexRepo, tmp_path: Path) -> None:
    """GET through annexproxy-shell sends bytes before the program has finished the file."""
    data = bytes(range(256)) * 2_000  # 512 KB: the program writes 64 KiB, then waits
    key = _add_to_remote(gateway, tmp_path, data)
    gate = tmp_path / "store dir" / "GATE"
    os.mkfifo(gate)
    uuid = gateway.git("config", "remote.ext.annex-uuid").stdout.strip()
    argv = [shell_program(), "p2pstdio", str(gateway.path), CLIENT, "--uuid", uuid]
    with subprocess.Popen(
        argv, cwd=gateway.path, env=annex_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as server:
        assert server.stdin is not None
        assert server.stdout is not None
        try:
            assert server.stdout.readline().startswith(b"AUTH-SUCCESS ")
            server.stdin.write(f"VERSION 4\nGET 0 f {key}\n".encode())
            server.stdin.flush()
            assert server.stdout.readline() == b"VERSION 4\n"
            assert server.stdout.readline() == f"DATA {len(data)}\n".encode()
            first = server.stdout.read(1000)  # arrives while the program waits on the FIFO
            with gate.open("wb"):
                pass
            rest = server.stdout.read(len(data) - len(first))
            assert first + rest == data
            assert server.stdout.readline() == b"VALID\n"
            server.stdin.write(b"SUCCESS\n")
            server.stdin.close()
            assert server.wait(timeout=60) == 0
        finally:
            if server.poll() is None:
                server.kill()


def _add_to_remote(gateway: AnnexRepo, tmp_path: Path, data: bytes) -> str:
    """Put ``data`` on the remote with git-annex (in a clone of the gateway)."""
    own = AnnexRepo(path=tmp_path / "own", uuid="", bare=False, env={})
    run(["git", "clone", "-q", str(gateway.path), str(own.path)], tmp_path)
    own.annex("init", "-q", "own")
    own.annex("enableremote", "-q", "ext")
    own.git("config", "remote.ext.annex-verified", "verified")  # as initremote sets it
    key = _add(own, "streamed.bin", data)
    own.annex("copy", "-q", "--to", "ext", "streamed.bin")
    return key


def test_spools_keep_annex_diskreserve_free(gateway: AnnexRepo, tmp_path: Path) -> None:
    """A copy and a get that would spool into annex.diskreserve fail with its name."""
    client = make_ssh_client(gateway, tmp_path / "client", "client", sync=True)
    key = _add(client, "b.bin", BIG)
    uuid = gateway.git("config", "remote.ext.annex-uuid").stdout.strip()
    trace = gateway.path.parent / "store dir" / "trace.log"

    gateway.git("config", "annex.diskreserve", "1000000 TB")  # more than any disk has
    refused = client.annex("copy", "--to", "origin-ext", "b.bin", check=False)
    assert refused.returncode != 0
    assert "not enough free space to spool" in refused.stderr
    assert "annex.diskreserve" in refused.stderr
    assert uuid not in client.annex("whereis", "b.bin").stdout
    assert gateway.annex("checkpresentkey", key, "ext", check=False).returncode == 1
    assert "TRANSFER STORE" not in (trace.read_text() if trace.exists() else "")
    assert spooled(gateway) == []

    gateway.git("config", "--unset", "annex.diskreserve")
    client.annex("copy", "-q", "--to", "origin-ext", "b.bin")
    client.annex("drop", "-q", "--force", "b.bin")

    gateway.git("config", "annex.diskreserve", "1000000 TB")
    refused = client.annex("get", "--from", "origin-ext", "b.bin", check=False)
    assert refused.returncode != 0
    assert "annex.diskreserve" in refused.stderr
    assert not (client.path / "b.bin").exists()
    assert "TRANSFER RETRIEVE" not in trace.read_text()
    assert spooled(gateway) == []

    gateway.git("config", "--unset", "annex.diskreserve")
    client.annex("get", "-q", "--from", "origin-ext", "b.bin")
    assert (client.path / "b.bin").read_bytes() == BIG


def test_a_get_continues_where_the_program_crashed(gateway: AnnexRepo, tmp_path: Path) -> None:
    """The program dies twice mid-download: the gateway hands it the spool it left each
    time, so the client's one get succeeds and each byte is fetched once."""
    gateway.annex("enableremote", "-q", "ext", "resume=yes")
    store = gateway.path.parent / "store dir"
    client = make_ssh_client(gateway, tmp_path / "client", "client", sync=True)
    key = _add(client, "b.bin", BIG)
    client.annex("copy", "-q", "--to", "origin-ext", "b.bin")
    client.annex("drop", "-q", "--force", "b.bin")

    (store / "CRASHES-RETRIEVE").write_text("2")  # dies after its first 64 KiB, twice
    client.annex("get", "-q", "--from", "origin-ext", "b.bin")
    assert (client.path / "b.bin").read_bytes() == BIG
    chunk = 64 * 1024
    resumed = (store / "resume.log").read_text().splitlines()
    assert resumed == [f"{key} 0", f"{key} {chunk}", f"{key} {2 * chunk}"]
    assert spooled(gateway) == []
    client.annex("fsck", "-q", "--from", "origin-ext", "b.bin")


def test_a_kept_spool_serves_the_next_session(gateway: AnnexRepo, tmp_path: Path) -> None:
    """A GET the gateway gives up on (the program keeps dying) leaves its spool; a GET with
    an offset in the next session has the program continue that spool."""
    gateway.annex("enableremote", "-q", "ext", "resume=yes")
    store = gateway.path.parent / "store dir"
    key = _add_to_remote(gateway, tmp_path, BIG)
    uuid = gateway.git("config", "remote.ext.annex-uuid").stdout.strip()
    argv = [shell_program(), "p2pstdio", str(gateway.path), CLIENT, "--uuid", uuid]
    chunk = 64 * 1024
    (store / "CRASHES-RETRIEVE").write_text("4")  # more than the gateway resumes (3)

    def session(offset: int) -> bytes:
        with subprocess.Popen(
            argv, cwd=gateway.path, env=annex_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE
        ) as server:
            assert server.stdin is not None
            assert server.stdout is not None
            try:
                assert server.stdout.readline().startswith(b"AUTH-SUCCESS ")
                server.stdin.write(f"VERSION 4\nGET {offset} f {key}\n".encode())
                server.stdin.flush()
                assert server.stdout.readline() == b"VERSION 4\n"
                assert server.stdout.readline() == f"DATA {len(BIG) - offset}\n".encode()
                got = server.stdout.read(len(BIG) - offset)
                if len(got) == len(BIG) - offset:
                    assert server.stdout.readline() == b"VALID\n"
                    server.stdin.write(b"SUCCESS\n")
                server.stdin.close()
                server.wait(timeout=60)
                return got
            finally:
                if server.poll() is None:
                    server.kill()

    first = session(0)
    assert len(first) < len(BIG)  # the gateway gave up and closed the connection
    assert BIG.startswith(first)
    kept = f"annexproxy-partial/{uuid}/{key}"
    assert spooled(gateway) == [kept]
    assert (gateway.annexdir / "tmp" / kept).stat().st_size == 4 * chunk
    assert session(len(first)) == BIG[len(first) :]
    resumed = (store / "resume.log").read_text().splitlines()
    # The own clone's copy did not retrieve; the gateway's 4 tries, then the next session.
    assert resumed == [f"{key} {n * chunk}" for n in range(5)]
    assert spooled(gateway) == []


def test_a_client_gone_mid_upload_leaves_no_spool(gateway: AnnexRepo) -> None:
    """The spool of an upload whose client disconnects part way is deleted.

    The gateway reads the payload in order, so it has spooled the 300 KB sent before it
    sees the end of its input.
    """
    uuid = gateway.git("config", "remote.ext.annex-uuid").stdout.strip()
    key = f"SHA256E-s{len(BIG)}--{hashlib.sha256(BIG).hexdigest()}.bin"
    argv = [shell_program(), "p2pstdio", str(gateway.path), CLIENT, "--uuid", uuid]
    with subprocess.Popen(
        argv, cwd=gateway.path, env=annex_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as server:
        assert server.stdin is not None
        assert server.stdout is not None
        try:
            assert server.stdout.readline().startswith(b"AUTH-SUCCESS ")
            server.stdin.write(f"VERSION 4\nPUT b.bin {key}\n".encode())
            server.stdin.flush()
            assert server.stdout.readline() == b"VERSION 4\n"
            assert server.stdout.readline() == b"PUT-FROM 0\n"
            server.stdin.write(f"DATA {len(BIG)}\n".encode() + BIG[:300_000])
            server.stdin.close()  # the client is gone mid-payload
            server.wait(timeout=60)
        finally:
            if server.poll() is None:
                server.kill()
    assert spooled(gateway) == []
    assert gateway.annex("checkpresentkey", key, "ext", check=False).returncode == 1


@pytest.mark.parametrize("chunk_kib", [0, 256, 40])
def test_a_cluster_upload_spools_once_for_its_external_nodes(
    tmp_path: Path, program_on_path: Path, chunk_kib: int
) -> None:
    """Two external nodes of a cluster get one copy: both programs store from one spool.

    Also with chunks smaller than the client's pieces (1 MiB over ssh): each chunk's
    spool must still be made once, whichever node gets to a chunk first.
    """
    chunking = f"chunk={chunk_kib}KiB" if chunk_kib else ""
    setup = make_cluster(tmp_path / "cluster", nodes=1)
    stores = {}
    for name in ("exta", "extb"):
        stores[name] = tmp_path / f"{name} store"
        stores[name].mkdir()
        setup.gateway.annex(
            "initremote", "-q", name, "type=external", "externaltype=testdir",
            "encryption=none", f"directory={stores[name]}", *filter(None, [chunking]),
        )  # fmt: skip
        setup.gateway.git("config", f"remote.{name}.annex-cluster-node", setup.name)
    setup.gateway.annex("updatecluster")
    client = make_ssh_client(setup.gateway, tmp_path / "client", "client")
    key = _add(client, "c.bin", BIG)
    client.annex("copy", "-q", "--to", f"origin-{setup.name}", "c.bin")
    spools = {}
    for name, store in stores.items():
        assert setup.gateway.annex("checkpresentkey", key, name, check=False).returncode == 0
        setup.gateway.annex("fsck", "-q", "--from", name, "--key", key)
        lines = (store / "trace.log").read_text().splitlines()
        spools[name] = [line.split()[-1] for line in lines if line.startswith("TRANSFER STORE")]
    assert len(spools["exta"]) == (-(-len(BIG) // (chunk_kib << 10)) if chunk_kib else 1)
    assert spools["exta"] == spools["extb"]  # the same file for both programs
    assert spooled(setup.gateway) == []
