"""Two gateways for one cluster (clusters.md 7), linked over ssh, used by real git-annex.

Set up as in shared/spec/examples/06 with git-annex's own admin commands: gateway A with
node1 and node2, gateway B (a clone of A) with node3, each `extendcluster`-ed to the
other. Both gateways are annexproxy-shell. An upload through either gateway reaches all
three nodes (the far ones relayed through the other gateway with BYPASS, never back),
the replies name every node that stored it, both gateways log it, and a drop from the
cluster removes it everywhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from annexproxy.testing.httpserver import annexproxy_serve
from annexproxy.testing.realannex import (
    AnnexRepo,
    ClusterSetup,
    fakessh_env,
    make_annex_repo,
    make_cluster,
    make_ssh_client,
    run,
    shell_program,
)

pytestmark = [pytest.mark.interop, pytest.mark.slow]


def _link(gateway: AnnexRepo, name: str, other: AnnexRepo) -> None:
    """Make ``other`` a remote of ``gateway`` over the ssh stand-in, served by us."""
    gateway.git("remote", "add", name, f"fakehost:{other.path}")
    gateway.git("config", f"remote.{name}.annex-shell", shell_program())
    gateway.git("config", "annex.sshcaching", "false")
    gateway.annex("sync", "--no-content", "--no-push", "--quiet", name)


def _two_gateways(top: Path) -> tuple[ClusterSetup, AnnexRepo, AnnexRepo]:
    setup = make_cluster(top / "a", nodes=2)
    a = AnnexRepo(path=setup.gateway.path, uuid=setup.gateway.uuid, bare=True, env=fakessh_env())
    run(["git", "clone", "-q", "--bare", str(a.path), str(top / "b")], top)
    b = AnnexRepo(path=top / "b", uuid="", bare=True, env=fakessh_env())
    b.git("remote", "remove", "origin")
    b.annex("init", "-q", "gatewayb")
    b = AnnexRepo(
        path=b.path, uuid=b.git("config", "annex.uuid").stdout.strip(), bare=True, env=b.env
    )
    _link(b, "gwa", a)
    b.annex("extendcluster", "gwa", setup.name)
    node3 = make_annex_repo(top / "node3", "node3")
    b.git("remote", "add", "node3", str(node3.path))
    b.annex("sync", "--no-content", "--no-push", "--quiet", "node3")
    b.git("config", "remote.node3.annex-cluster-node", setup.name)
    b.annex("updatecluster")
    b.annex("wanted", "here", "nothing")
    _link(a, "gwb", b)
    a.annex("extendcluster", "gwb", setup.name)
    a.annex("updatecluster")
    b.annex("sync", "--no-content", "--no-push", "--quiet", "gwa")
    b.annex("updatecluster")
    nodes = (*setup.nodes, node3)
    return (
        ClusterSetup(gateway=a, nodes=nodes, cluster_uuid=setup.cluster_uuid, name=setup.name),
        a,
        b,
    )


def _holders(nodes: tuple[AnnexRepo, ...], key: str) -> set[str]:
    return {n.uuid for n in nodes if n.annex("contentlocation", key, check=False).returncode == 0}


def _gateway_knows(gateway: AnnexRepo, key: str) -> str:
    return gateway.annex("whereis", "--key", key, check=False).stdout


def _add(client: AnnexRepo, name: str, content: bytes) -> str:
    (client.path / name).write_bytes(content)
    client.annex("add", "--quiet", name)
    client.git("commit", "-q", "-m", name)
    return client.annex("lookupkey", name).stdout.strip()


def test_upload_is_relayed_between_gateways_without_a_loop(tmp_path: Path) -> None:
    setup, a, b = _two_gateways(tmp_path)
    every = {n.uuid for n in setup.nodes}
    log = tmp_path / "fakessh.log"

    client = make_ssh_client(a, tmp_path / "client", "client")
    key = _add(client, "one.dat", b"relayed through gateway B\n" * 100)
    client.annex("copy", "--to", f"origin-{setup.name}", "one.dat", env={"FAKESSH_LOG": str(log)})
    assert _holders(setup.nodes, key) == every
    where = client.annex("whereis", "one.dat").stdout
    assert all(uuid in where for uuid in every), where  # the reply named node3 too
    assert all(uuid in _gateway_knows(a, key) for uuid in every)
    assert setup.nodes[2].uuid in _gateway_knows(b, key)
    relayed = [line for line in log.read_text().splitlines() if str(b.path) in line]
    assert relayed
    assert all(setup.cluster_uuid in line for line in relayed), relayed
    assert not [line for line in log.read_text().splitlines() if line.count("p2pstdio") > 1]

    # The other way round: a client of B; B relays to A, which must not relay back to B.
    log.write_text("")
    client_b = make_ssh_client(b, tmp_path / "client-b", "client b")
    key_b = _add(client_b, "two.dat", b"relayed through gateway A\n" * 100)
    client_b.annex("copy", "--to", f"origin-{setup.name}", "two.dat", env={"FAKESSH_LOG": str(log)})
    assert _holders(setup.nodes, key_b) == every
    calls = log.read_text().splitlines()
    to_a = [c for c in calls if f"'{a.path}'" in c or f" {a.path} " in c]
    assert to_a, calls
    # A reached only its own local nodes: no connection went from A back to B.
    assert len([c for c in calls if f"'{b.path}'" in c or f" {b.path} " in c]) == 1, calls

    # A drop from the cluster through A removes from every node, relayed ones included.
    client.annex("drop", "--from", f"origin-{setup.name}", "--force", "one.dat")
    assert _holders(setup.nodes, key) == set()
    assert not any(uuid in _gateway_knows(a, key) for uuid in every)


def test_http_client_upload_is_relayed(tmp_path: Path) -> None:
    setup, a, _b = _two_gateways(tmp_path)
    every = {n.uuid for n in setup.nodes}
    with annexproxy_serve(a.path, "--wideopen", env=fakessh_env()) as server:
        run(["git", "clone", "-q", str(a.path), str(tmp_path / "client")], tmp_path)
        client = AnnexRepo(path=tmp_path / "client", uuid="", bare=False, env={})
        client.git("config", "remote.origin.annexurl", server.url)
        client.git("config", "annex.security.allowed-ip-addresses", "127.0.0.1")
        client.annex("init", "-q", "client")
        key = _add(client, "h.dat", b"over http, then ssh\n" * 50)
        client.annex("copy", "--to", f"origin-{setup.name}", "h.dat")
        assert _holders(setup.nodes, key) == every
        assert all(uuid in client.annex("whereis", "h.dat").stdout for uuid in every)
        client.annex("drop", "--from", f"origin-{setup.name}", "--force", "h.dat")
        assert _holders(setup.nodes, key) == set()


def test_gateways_linked_over_annex_http(tmp_path: Path) -> None:
    # git-annex's own gateways cannot relay to an annex+http gateway; ours can.
    setup, a, b = _two_gateways(tmp_path)
    every = {n.uuid for n in setup.nodes}
    with annexproxy_serve(b.path, "--wideopen", env=fakessh_env()) as server_b:
        a.git("config", "remote.gwb.annexurl", server_b.url)
        client = make_ssh_client(a, tmp_path / "client", "client")
        key = _add(client, "web.dat", b"relayed over annex+http\n" * 100)
        client.annex("copy", "--to", f"origin-{setup.name}", "web.dat")
        assert _holders(setup.nodes, key) == every
        assert setup.nodes[2].uuid in client.annex("whereis", "web.dat").stdout
        assert f"/{setup.cluster_uuid}/v4/put" in server_b.log.read_text()  # the relay
        client.annex("drop", "--from", f"origin-{setup.name}", "--force", "web.dat")
        assert _holders(setup.nodes, key) == set()
