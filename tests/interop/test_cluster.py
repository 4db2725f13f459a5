"""A gateway with a three-node cluster, used by the real git-annex client over ssh and HTTP.

Issue 6's acceptance, for local-repository nodes: the client sees `origin-mycluster` and
`origin-nodeN`; copy --to the cluster stores on the nodes; whereis shows them; a local
drop locks a node; get --from the cluster works, also with a node that has the key gone;
drop --from the cluster removes everywhere; testremote passes on the cluster and a node.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from annexproxy.testing.httpserver import annexproxy_serve, git_annex_p2phttp
from annexproxy.testing.realannex import (
    AnnexRepo,
    ClusterSetup,
    assert_testremote_passes,
    make_cluster,
    make_http_client,
    make_ssh_client,
    seed_commit,
)

pytestmark = pytest.mark.interop

FILES = {f"f{i}.txt": f"cluster file {i}\n".encode() * (i + 1) for i in range(4)}


@pytest.fixture(params=["ssh", "http"])
def cluster_client(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[ClusterSetup, AnnexRepo]]:
    setup = make_cluster(tmp_path)
    if request.param == "ssh":
        yield setup, make_ssh_client(setup.gateway, tmp_path / "client", "client")
        return
    with annexproxy_serve(setup.gateway.path, "--wideopen") as server:
        yield setup, make_http_client(setup.gateway, tmp_path / "client", server.url)


def _add(client: AnnexRepo) -> dict[str, str]:
    for name, content in FILES.items():
        (client.path / name).write_bytes(content)
    client.annex("add", "--quiet", ".")
    client.git("commit", "-q", "-m", "files")
    return {name: client.annex("lookupkey", name).stdout.strip() for name in FILES}


def _holders(setup: ClusterSetup, key: str) -> set[str]:
    return {
        node.uuid
        for node in setup.nodes
        if node.annex("contentlocation", key, check=False).returncode == 0
    }


def test_cluster_roundtrip(cluster_client: tuple[ClusterSetup, AnnexRepo]) -> None:
    setup, client = cluster_client
    info = client.annex("info", "origin").stdout
    assert f"gateway to cluster: origin-{setup.name}" in info
    keys = _add(client)
    client.annex("copy", "--to", f"origin-{setup.name}", ".")
    all_nodes = {n.uuid for n in setup.nodes}
    for name, key in keys.items():
        assert _holders(setup, key) == all_nodes, name  # no preferred content: every node
        where = client.annex("whereis", name).stdout
        for node in setup.nodes:
            assert node.uuid in where
        gateway_where = setup.gateway.annex("whereis", "--key", key).stdout
        assert all(n.uuid in gateway_where for n in setup.nodes)  # logged at the gateway
    for node in setup.nodes:
        node.annex("fsck", "--all", "--quiet")  # nodes logged and verified their objects

    client.annex("drop", "f0.txt")  # locks one node
    client.annex("get", "--from", f"origin-{setup.name}", "f0.txt")
    assert (client.path / "f0.txt").read_bytes() == FILES["f0.txt"]

    client.annex("drop", "--from", f"origin-{setup.name}", "f1.txt")
    assert _holders(setup, keys["f1.txt"]) == set()
    assert client.annex("whereis", "f1.txt").stdout.count("node") == 0


def test_get_falls_back_when_a_node_lost_the_key(
    cluster_client: tuple[ClusterSetup, AnnexRepo],
) -> None:
    setup, client = cluster_client
    keys = _add(client)
    client.annex("copy", "--to", f"origin-{setup.name}", "f2.txt")
    # Take the key away from two nodes behind the gateway's back.
    for node in setup.nodes[:2]:
        node.annex("dropkey", "--force", keys["f2.txt"])
    client.annex("drop", "--force", "f2.txt")
    client.annex("get", "--from", f"origin-{setup.name}", "f2.txt")
    assert (client.path / "f2.txt").read_bytes() == FILES["f2.txt"]


def test_testremote_on_cluster_and_node(tmp_path: Path) -> None:
    setup = make_cluster(tmp_path)
    client = make_ssh_client(setup.gateway, tmp_path / "client", "client")
    seed_commit(client)
    assert_testremote_passes(client, f"origin-{setup.name}", fast=True)
    assert_testremote_passes(client, "origin-node1", fast=True)


def test_balanced_preferred_content_places_one_copy_per_file(tmp_path: Path) -> None:
    setup = make_cluster(tmp_path, nodes=3)
    gateway = setup.gateway
    for i in range(1, 4):
        gateway.annex("group", f"node{i}", "pool")
        gateway.annex("wanted", f"node{i}", "groupwanted")
    gateway.annex("groupwanted", "pool", "balanced=pool")
    client = make_ssh_client(gateway, tmp_path / "client", "client")
    names = [f"b{i:02d}.dat" for i in range(60)]
    for name in names:
        (client.path / name).write_text(f"balanced content {name}\n")
    client.annex("add", "--quiet", ".")
    client.git("commit", "-q", "-m", "balanced")
    # What git-annex itself decides for each node, before anything is uploaded.
    expected: dict[str, set[str]] = {name: set() for name in names}
    for i, node in enumerate(setup.nodes, 1):
        found = client.annex("find", f"--want-get-by=origin-node{i}", *names).stdout.split()
        for name in found:
            expected[name].add(node.uuid)
    client.annex("copy", "--to", f"origin-{setup.name}", *names)
    used: set[str] = set()
    for name in names:
        key = client.annex("lookupkey", name).stdout.strip()
        holders = _holders(setup, key)
        assert len(holders) == 1, (name, holders)
        assert holders == expected[name], name
        used |= holders
    assert used == {n.uuid for n in setup.nodes}


def test_mixed_nodes_local_and_ssh(tmp_path: Path) -> None:
    # node3 is reached over ssh and served by git-annex-shell; the others are local paths.
    setup = make_cluster(tmp_path, ssh_nodes=frozenset({3}))
    client = make_ssh_client(setup.gateway, tmp_path / "client", "client")
    keys = _add(client)
    client.annex("copy", "--to", f"origin-{setup.name}", ".")
    for key in keys.values():
        assert _holders(setup, key) == {n.uuid for n in setup.nodes}
    client.annex("drop", "--force", ".")
    client.annex("get", "--from", "origin-node3", "f3.txt")  # proxied ssh node
    assert (client.path / "f3.txt").read_bytes() == FILES["f3.txt"]
    client.annex("drop", "--from", f"origin-{setup.name}", "--force", "f0.txt")
    assert _holders(setup, keys["f0.txt"]) == set()


def test_node_dying_mid_fanout_is_reported_exactly(tmp_path: Path) -> None:
    setup = make_cluster(tmp_path, ssh_nodes=frozenset({3}))
    client = make_ssh_client(setup.gateway, tmp_path / "client", "client")
    big = bytes(range(256)) * 8192  # 2 MiB
    (client.path / "big.bin").write_bytes(big)
    client.annex("add", "--quiet", "big.bin")
    client.git("commit", "-q", "-m", "big")
    key = client.annex("lookupkey", "big.bin").stdout.strip()
    # The ssh connection from the gateway to node3 dies after 200 kB of upload.
    cut = {"FAKESSH_CUT_AFTER": "200000", "FAKESSH_CUT_MATCH": str(setup.nodes[2].path)}
    client.annex("copy", "--to", f"origin-{setup.name}", "big.bin", env=cut)
    stored = {setup.nodes[0].uuid, setup.nodes[1].uuid}
    assert _holders(setup, key) == stored
    where = client.annex("whereis", "big.bin").stdout
    assert setup.nodes[2].uuid not in where  # the client was told exactly who stored it
    assert all(uuid in where for uuid in stored)
    gateway_log = setup.gateway.annex("whereis", "--key", key).stdout
    assert setup.nodes[2].uuid not in gateway_log
    assert all(uuid in gateway_log for uuid in stored)
    for node in setup.nodes[:2]:
        node.annex("fsck", "--key", key, "--quiet")


def test_mixed_nodes_local_ssh_and_p2phttp(tmp_path: Path) -> None:
    # node1 local, node3 over ssh (git-annex-shell), node2 behind `git annex p2phttp`:
    # a node kind git-annex's own gateway cannot proxy to.
    setup = make_cluster(tmp_path, ssh_nodes=frozenset({3}))
    with git_annex_p2phttp(setup.nodes[1].path, "--wideopen") as node2_server:
        setup.gateway.git("config", "remote.node2.annexurl", node2_server.url)
        client = make_ssh_client(setup.gateway, tmp_path / "client", "client")
        keys = _add(client)
        client.annex("copy", "--to", f"origin-{setup.name}", ".")
        for key in keys.values():
            assert _holders(setup, key) == {n.uuid for n in setup.nodes}
        client.annex("drop", "--force", ".")
        client.annex("get", "--from", "origin-node2", "f1.txt")
        assert (client.path / "f1.txt").read_bytes() == FILES["f1.txt"]
        client.annex("drop", "--from", f"origin-{setup.name}", "--force", "f0.txt")
        assert _holders(setup, keys["f0.txt"]) == set()


def test_testremote_on_cluster_over_http(tmp_path: Path) -> None:
    setup = make_cluster(tmp_path)
    with annexproxy_serve(setup.gateway.path, "--wideopen") as server:
        client = make_http_client(setup.gateway, tmp_path / "client", server.url)
        seed_commit(client)
        assert_testremote_passes(client, f"origin-{setup.name}", fast=True)
