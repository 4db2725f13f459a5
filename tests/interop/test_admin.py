"""The admin commands against real git-annex: it reads what we write, we read what it writes."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from annexproxy.testing.realannex import (
    AnnexRepo,
    annex_env,
    make_annex_repo,
    make_ssh_client,
    shell_program,
)

pytestmark = pytest.mark.interop

MakeRepo = Callable[..., AnnexRepo]


def annexproxy(repo: AnnexRepo | Path, *args: str) -> subprocess.CompletedProcess[str]:
    cwd = repo.path if isinstance(repo, AnnexRepo) else repo
    return subprocess.run(
        [shell_program("annexproxy"), *args],
        cwd=cwd,
        env=annex_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ok(repo: AnnexRepo, *args: str) -> str:
    proc = annexproxy(repo, *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def branch_sha(repo: AnnexRepo) -> str:
    return repo.git("rev-parse", "refs/heads/git-annex").stdout.strip()


def assert_fsck_clean(repo: AnnexRepo) -> None:
    proc = repo.git("fsck", "--no-progress", check=False)
    assert proc.returncode == 0, proc.stderr
    assert "error" not in proc.stderr.lower()


@pytest.fixture
def gateway(tmp_path: Path) -> tuple[AnnexRepo, list[AnnexRepo]]:
    """A bare gateway with two bare nodes it knows (fetched, UUIDs configured)."""
    gw = make_annex_repo(tmp_path / "GW", "gateway", bare=True)
    nodes = [make_annex_repo(tmp_path / f"N{i}", f"node{i}", bare=True) for i in (1, 2)]
    for i, node in enumerate(nodes, 1):
        gw.git("remote", "add", f"node{i}", str(node.path))
        gw.git("config", f"remote.node{i}.annex-uuid", node.uuid)
        gw.git("fetch", "-q", f"node{i}")
    return gw, nodes


def test_cluster_setup_seen_by_a_client(
    gateway: tuple[AnnexRepo, list[AnnexRepo]], tmp_path: Path
) -> None:
    gw, (node1, node2) = gateway
    assert ok(gw, "initcluster", "mycluster") == "initcluster mycluster ok\n"
    cluster_uuid = gw.git("config", "annex.cluster.mycluster").stdout.strip()
    assert cluster_uuid.startswith("ac")
    assert cluster_uuid[14] == "8"
    # initcluster merged the nodes' branches the way git-annex does, and wrote no cluster.log
    log = gw.git("log", "--format=%P %s", "refs/heads/git-annex").stdout.splitlines()
    merge = next(line for line in log if "merging" in line)
    assert merge.endswith("merging node1/git-annex node2/git-annex into git-annex")
    assert len(merge.split(" merging")[0].split()) == 3  # old tip + two refs
    assert gw.git("cat-file", "-e", "git-annex:cluster.log", check=False).returncode != 0

    for name in ("node1", "node2"):
        gw.git("config", f"remote.{name}.annex-cluster-node", "mycluster")
    out = ok(gw, "updatecluster")
    assert "Added node node1 to cluster: mycluster" in out
    assert "Started proxying for mycluster" in out
    assert ok(gw, "updatecluster").splitlines() == [
        "No cluster node changes for cluster: mycluster",
        "No proxy changes to record.",
    ]
    nodes = " ".join(sorted([node1.uuid, node2.uuid]))
    cluster_log = gw.git("cat-file", "-p", "git-annex:cluster.log").stdout
    assert cluster_log.split(" ", 1)[1] == f"{cluster_uuid} {nodes}\n"
    assert list((gw.annexdir / "journal").iterdir()) == []
    assert_fsck_clean(gw)

    assert ok(gw, "maxsize", "node1", "100M") == "maxsize node1 ok\n"
    assert ok(gw, "maxsize", "node1") == gw.annex("maxsize", "node1").stdout == "100.0 MB\n"
    assert ok(gw, "maxsize", "node2", "1GiB") == "maxsize node2 ok\n"
    assert ok(gw, "maxsize", "node2") == gw.annex("maxsize", "node2").stdout
    # The overview, as git-annex prints it (same rows, order, columns), in bytes too.
    assert ok(gw, "maxsize") == gw.annex("maxsize").stdout
    assert ok(gw, "maxsize", "--bytes") == gw.annex("maxsize", "--bytes").stdout
    gw.annex("maxsize", "here", "999")
    assert ok(gw, "maxsize") == gw.annex("maxsize").stdout

    client = make_ssh_client(gw, tmp_path / "CLIENT", "client", shell="git-annex-shell")
    info = client.annex("info", "origin").stdout
    assert "gateway to cluster: origin-mycluster" in info
    proxying = next(line for line in info.splitlines() if line.startswith("proxying: "))
    assert sorted(proxying.split()[1:]) == ["origin-node1", "origin-node2"]
    assert "cluster: true" in client.annex("info", "origin-mycluster").stdout


def test_bad_arguments_change_nothing(
    gateway: tuple[AnnexRepo, list[AnnexRepo]], tmp_path: Path
) -> None:
    gw, _ = gateway
    ok(gw, "initcluster", "c1")
    before = (branch_sha(gw), gw.git("config", "--list").stdout)
    for args in (
        ("maxsize", "nosuch", "1G"),
        ("maxsize", "node1", "12 parsecs"),
        ("maxsize", "node1", "-5"),
        ("initcluster", "--", "-bad"),
        ("initcluster", "a/b"),
        ("extendcluster", "node1", "nosuchcluster"),
        ("extendcluster", "nosuchremote", "c1"),
    ):
        proc = annexproxy(gw, *args)
        assert proc.returncode != 0, args
        assert proc.stderr.startswith("annexproxy: ")
        assert proc.stderr.count("\n") == 1, proc.stderr
    assert (branch_sha(gw), gw.git("config", "--list").stdout) == before
    plain = tmp_path / "plain"
    plain.mkdir()
    proc = annexproxy(plain, "info")
    assert proc.returncode != 0
    assert proc.stderr.count("\n") == 1


def test_info_reads_what_git_annex_wrote(
    gateway: tuple[AnnexRepo, list[AnnexRepo]], tmp_path: Path
) -> None:
    gw, (node1, node2) = gateway
    ok(gw, "initcluster", "mycluster")
    for name in ("node1", "node2"):
        gw.git("config", f"remote.{name}.annex-cluster-node", "mycluster")
    ok(gw, "updatecluster")
    gw.annex("wanted", "node1", "include=*.txt")
    gw.annex("required", "node2", "anything")
    gw.annex("group", "node1", "mynodes")
    gw.annex("maxsize", "node2", "1GB")
    gw.annex("trust", "--force", "node2")

    client = make_ssh_client(gw, tmp_path / "CLIENT", "client", shell="git-annex-shell")
    client.annex("group", "origin-node2", "archive")
    client.git("commit", "-q", "--allow-empty", "-m", "something to push")
    # The gateway's branch moves on after the clone, so the client's branch cannot be
    # fast-forwarded: it lands on synced/git-annex unmerged, and we must union it in.
    gw.annex("numcopies", "2")
    gw.annex("mincopies", "1")
    client.annex("push", "-q", "--no-content", "origin", check=False)
    synced = gw.git("rev-parse", "refs/heads/synced/git-annex").stdout.strip()
    merged = gw.git("merge-base", "--is-ancestor", synced, "git-annex", check=False)
    assert merged.returncode == 1  # not merged yet: read through the sibling union

    report = json.loads(ok(gw, "info", "--json"))
    repos = {r["uuid"]: r for r in report["repositories"]}
    assert repos[node1.uuid]["wanted"] == "include=*.txt"
    assert repos[node1.uuid]["groups"] == ["mynodes"]
    assert repos[node2.uuid]["groups"] == ["archive"]
    assert repos[node2.uuid]["required"] == "anything"
    assert repos[node2.uuid]["maxsize"] == 1_000_000_000
    assert repos[node2.uuid]["trust"] == "trusted"
    assert repos[client.uuid]["description"] == "client"
    assert (report["numcopies"], report["mincopies"]) == (2, 1)
    (group,) = report["clusters"]
    assert group["name"] == "mycluster"
    assert group["nodes"] == sorted([node1.uuid, node2.uuid])
    assert group["gateways"] == [gw.uuid]
    assert repos[group["uuid"]]["size"] is None
    (listed,) = report["proxies"]
    assert listed["gateway"] == gw.uuid
    assert {r["name"] for r in listed["remotes"]} == {"node1", "node2", "mycluster"}
    assert set(report) == {"repositories", "clusters", "proxies", "numcopies", "mincopies"}
    assert set(repos[node1.uuid]) == {
        "uuid",
        "description",
        "trust",
        "groups",
        "wanted",
        "required",
        "maxsize",
        "size",
    }
    table = ok(gw, "info")
    assert "numcopies: 2" in table
    assert "1 GB" in table

    # updateproxy merges the pushed branch into git-annex as git-annex would.
    assert ok(gw, "updateproxy") == "No proxy changes to record.\n"
    parents, subject = gw.git("log", "-1", "--format=%P|%s", "git-annex").stdout.strip().split("|")
    assert subject == "merging synced/git-annex into git-annex"
    assert parents.split()[1] == synced
    assert gw.annex("group", "node2").stdout.strip() == "archive"
    assert_fsck_clean(gw)
