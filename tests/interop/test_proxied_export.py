"""``exporttree=yes annexobjects=yes`` directory remotes behind the gateway (clusters.md 8).

The gateway is set up with git-annex's own commands, as in shared/spec/examples/10: a
directory remote ``exportsr`` with exporttree=yes, annexobjects=yes and
``annex-tracking-branch=main``, proxied, and a plain export remote ``noobj`` (without
annexobjects) that updateproxy refuses. Over annex+http and over ssh the real git-annex
client copies a key to ``origin-exportsr`` (it lands in the annexobjects area), gets
and fscks it, then pushes its branch to the gateway: the gateway exports the tree (the
copied key is moved to its file name, a git file is written, keys only the client has
are "not available"), records export.log, grafts the tree, and the client still gets
and fscks the key. A later push renames and deletes files. The same steps against
git-annex's own gateway (git-annex-shell, and ``git annex post-receive`` as the hook)
leave the same files, directories, export.log value, location log and remote tracking
branch, for a directory and for an S3 remote, and with a filtered tree. An export remote
can be a cluster node, and ``annexproxy post-receive`` works as the hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import pytest

from annexproxy.branch.logs.keyed import KeyedLog
from annexproxy.branch.paths import journal_name
from annexproxy.cluster.export import ExportState
from annexproxy.server.repository import open_repository
from annexproxy.testing.httpserver import annexproxy_serve
from annexproxy.testing.realannex import (
    AnnexRepo,
    make_annex_repo,
    make_cluster,
    make_http_client,
    make_ssh_client,
    shell_program,
)
from annexproxy.testing.s3server import S3Server, s3_server

pytestmark = [pytest.mark.interop, pytest.mark.slow]

CONTENT = b"exported through the gateway\n"
OTHER = b"only the client has this\n"


@dataclass(frozen=True, slots=True)
class Setup:
    gateway: AnnexRepo
    client: AnnexRepo
    directory: Path
    push_url: str  # where the client pushes its branch
    s3: tuple[S3Server, str] | None = None  # the export remote's server and bucket

    def files(self) -> dict[str, bytes]:
        """The export remote's files (S3: objects) and their content."""
        if self.s3 is not None:
            return self.s3[0].objects(self.s3[1])
        return _tree(self.directory)

    def dirs(self) -> list[str]:
        """The export remote's directories (none in S3)."""
        return [] if self.s3 is not None else _dirs(self.directory)


def _gateway(top: Path, s3: tuple[S3Server, str] | None = None) -> tuple[AnnexRepo, Path]:
    gateway = make_annex_repo(top / "gateway", "gateway", bare=True)
    directory = top / "exportdir"
    directory.mkdir()
    if s3 is None:
        where = ["type=directory", f"directory={directory}"]
    else:
        server, bucket = s3
        gateway.git("config", "annex.security.allowed-ip-addresses", "all")
        where = [
            "type=S3", "host=127.0.0.1", f"port={server.port}", "protocol=http",
            "requeststyle=path", f"bucket={bucket}", "fileprefix=pre/",
        ]  # fmt: skip
    gateway.annex(
        "initremote", "-q", "exportsr", *where, "encryption=none", "exporttree=yes",
        "annexobjects=yes", env=None if s3 is None else s3[0].env,
    )  # fmt: skip
    gateway.git("config", "remote.exportsr.annex-proxy", "true")
    gateway.git("config", "remote.exportsr.annex-tracking-branch", "main")
    (top / "noobjdir").mkdir()
    gateway.annex(
        "initremote", "-q", "noobj", "type=directory", f"directory={top / 'noobjdir'}",
        "encryption=none", "exporttree=yes",
    )  # fmt: skip
    gateway.git("config", "remote.noobj.annex-proxy", "true")
    result = gateway.annex("updateproxy")
    assert "exporttree=yes, but without annexobjects=yes" in result.stderr
    return gateway, directory


@pytest.fixture(params=["http", "ssh"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    gateway, directory = _gateway(tmp_path)
    if request.param == "ssh":
        client = make_ssh_client(gateway, tmp_path / "client", "client")
        # As an sshd forced command would: git's own commands also run through our shell.
        client.git("config", "remote.origin.receivepack", f"{shell_program()} git-receive-pack")
        yield Setup(gateway, client, directory, "origin")
        return
    with annexproxy_serve(gateway.path, "--wideopen") as server:
        client = make_http_client(gateway, tmp_path / "client", server.url)
        url = f"http://127.0.0.1:{server.port}/gateway"
        yield Setup(gateway, client, directory, url)


def _branch_file(repo: AnnexRepo, path: str) -> str:
    """A git-annex branch file as git-annex reads it (journal first)."""
    journal = repo.annexdir / "journal" / journal_name(path)
    if journal.exists():
        return journal.read_text()
    return repo.git("cat-file", "-p", f"git-annex:{path}", check=False).stdout


def _export_value(repo: AnnexRepo, remote_uuid: str) -> str:
    """The value of the gateway's export.log line for the remote (no timestamp).

    The newest line counts, as git-annex reads it: a union merge of the branch (a sync
    from a clone that still had an older line) can leave more than one.
    """
    log = KeyedLog.parse(_branch_file(repo, "export.log").encode())
    assert not log.unknown, log.unknown
    field = f"{repo.uuid}:{remote_uuid}".encode()
    ours = {f: v for f, v in log.values().items() if f.endswith(f":{remote_uuid}".encode())}
    assert list(ours) == [field], ours
    return ours[field].decode()


def _tree(directory: Path) -> dict[str, bytes]:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _dirs(directory: Path) -> list[str]:
    """Every directory below ``directory`` (empty ones left behind included)."""
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_dir())


def _first_push(client: AnnexRepo) -> dict[str, str]:
    """Annex c.dat and a.txt, add e.txt to git; return the keys."""
    (client.path / "c.dat").write_bytes(CONTENT)
    (client.path / "a.txt").write_bytes(OTHER)
    client.annex("add", "-q", "c.dat", "a.txt")
    (client.path / "sub").mkdir()
    (client.path / "sub" / "e.txt").write_text("in git\n")
    client.git("add", "sub/e.txt")
    client.git("commit", "-q", "-m", "files")
    return {name: client.annex("lookupkey", name).stdout.strip() for name in ("c.dat", "a.txt")}


def test_export_on_push(setup: Setup) -> None:
    gateway, client, directory = setup.gateway, setup.client, setup.directory
    uuid = gateway.git("config", "remote.exportsr.annex-uuid").stdout.strip()
    info = client.annex("info", "--fast", "origin-exportsr").stdout
    assert "proxied: true" in info
    assert "trust: untrusted" in info  # clients distrust proxied export remotes
    # updateproxy refused the export remote without annexobjects: clients do not see it.
    assert client.annex("info", "--fast", "origin-noobj", check=False).returncode != 0

    keys = _first_push(client)
    client.annex("copy", "-q", "--to", "origin-exportsr", "c.dat")
    key = keys["c.dat"]
    hashdir = gateway.annex("examinekey", "--format=${hashdirlower}", key).stdout.strip()
    objects = f".git/annex/objects/{hashdir}{key}/{key}"
    assert _tree(directory) == {objects: CONTENT}
    client.annex("drop", "-q", "--force", "c.dat")
    client.annex("get", "-q", "--from", "origin-exportsr", "c.dat")
    client.annex("fsck", "-q", "--from", "origin-exportsr", "c.dat")
    # A key outside the export can be dropped from the remote, and sent again.
    client.annex("drop", "-q", "--force", "--from", "origin-exportsr", "c.dat")
    assert _tree(directory) == {}
    client.annex("copy", "-q", "--to", "origin-exportsr", "c.dat")

    result = client.git("push", setup.push_url, "HEAD:refs/heads/main")
    tree = client.git("rev-parse", "HEAD^{tree}").stdout.strip()
    assert _tree(directory) == {"c.dat": CONTENT, "sub/e.txt": b"in git\n"}
    # The report reaches the client (HTTP: as "remote:" lines, like a hook's output).
    assert "export exportsr c.dat ok" in result.stderr
    assert "export exportsr a.txt (not available) failed" in result.stderr
    assert "post-receive: 1 failed" in result.stderr
    assert _export_value(gateway, uuid) == tree
    # The tree was grafted into the branch in a transient commit pair.
    log = gateway.git("log", "--format=%H %s", "-3", "git-annex").stdout.splitlines()
    subjects = [line.split(" ", 1)[1] for line in log]
    assert "graft cleanup" in subjects
    graft = next(line.split()[0] for line in log if line.endswith(" graft"))
    assert gateway.git("rev-parse", f"{graft}:export.tree").stdout.strip() == tree
    assert gateway.git("cat-file", "commit", graft).stdout.endswith("\n\ngraft\n")
    cleanup = next(line.split()[0] for line in log if line.endswith(" graft cleanup"))
    assert gateway.git("rev-parse", f"{cleanup}^").stdout.strip() == graft
    trees = [gateway.git("rev-parse", f"{c}^{{tree}}").stdout for c in (f"{graft}^", cleanup)]
    assert trees[0] == trees[1]  # the cleanup restores the tree the graft started from
    assert gateway.git("ls-tree", "git-annex", "export.tree").stdout == ""
    # The gateway still lists the remote for the key, now at its file name.
    assert uuid in gateway.annex("whereis", "--key", key, check=False).stdout
    client.annex("drop", "-q", "--force", "c.dat")
    client.annex("get", "-q", "--from", "origin-exportsr", "c.dat")
    client.annex("fsck", "-q", "--from", "origin-exportsr", "c.dat")
    # A key of the export cannot be dropped from the remote.
    dropped = client.annex("drop", "--force", "--from", "origin-exportsr", "c.dat", check=False)
    assert dropped.returncode != 0
    assert (directory / "c.dat").read_bytes() == CONTENT
    # A key of the export sent later goes straight to its file name.
    client.annex("copy", "-q", "--to", "origin-exportsr", "a.txt")
    assert _tree(directory) == {"a.txt": OTHER, "c.dat": CONTENT, "sub/e.txt": b"in git\n"}

    # Renames and removals: c.dat moves, a.txt goes (kept in the annexobjects area).
    (client.path / "moved").mkdir()
    client.git("mv", "c.dat", "moved/c.dat")
    client.git("rm", "-q", "a.txt")
    client.git("commit", "-q", "-m", "rename")
    client.git("push", "-q", setup.push_url, "HEAD:refs/heads/main")
    hashdir_a = gateway.annex("examinekey", "--format=${hashdirlower}", keys["a.txt"]).stdout
    objects_a = f".git/annex/objects/{hashdir_a.strip()}{keys['a.txt']}/{keys['a.txt']}"
    assert _tree(directory) == {
        "moved/c.dat": CONTENT,
        "sub/e.txt": b"in git\n",
        objects_a: OTHER,
    }
    assert _export_value(gateway, uuid) == client.git("rev-parse", "HEAD^{tree}").stdout.strip()
    client.annex("fsck", "-q", "--from", "origin-exportsr", "moved/c.dat")
    client.annex("get", "-q", "--from", "origin-exportsr", "--key", keys["a.txt"])


@contextlib.contextmanager
def _reference(top: Path, s3: tuple[S3Server, str] | None = None) -> Iterator[Setup]:
    """git-annex's own gateway: git-annex-shell over ssh, a post-receive hook for pushes.

    Not ``git annex p2phttp``: a p2phttp server keeps the export state it read when it
    started, so after an export it stores keys of the new tree in the object area and
    hangs on reads of exported files (log: ``othertmp/proxy.0/KEY: openFdAt: does not
    exist``); one restarted after the export behaves as git-annex-shell does.
    """
    gateway, directory = _gateway(top, s3)
    hook = gateway.path / "hooks" / "post-receive"
    hook.write_text("#!/bin/sh\nexec git annex post-receive\n")
    hook.chmod(0o755)
    client = make_ssh_client(gateway, top / "client", "client", shell="git-annex-shell")
    yield Setup(gateway, client, directory, "origin", s3)


@contextlib.contextmanager
def _ours(top: Path, s3: tuple[S3Server, str] | None = None) -> Iterator[Setup]:
    gateway, directory = _gateway(top, s3)
    with annexproxy_serve(gateway.path, "--wideopen") as server:
        client = make_http_client(gateway, top / "client", server.url)
        url = f"http://127.0.0.1:{server.port}/gateway"
        yield Setup(gateway, client, directory, url, s3)


Snapshot = tuple[dict[str, bytes], list[str], str, list[bool], bool | None]


def _snapshot(setup: Setup, uuid: str, keys: dict[str, str]) -> Snapshot:
    """The remote's files and directories, export.log's value, where the gateway logs keys."""
    value = _export_value(setup.gateway, uuid)
    logged = [
        uuid in setup.gateway.annex("whereis", "--key", key, check=False).stdout
        for _, key in sorted(keys.items())
    ]
    # The remote tracking branch: absent (None), or whether it is the client's commit.
    tracking = setup.gateway.git(
        "rev-parse", "-q", "--verify", "refs/remotes/exportsr/main", check=False
    )
    head = setup.client.git("rev-parse", "HEAD").stdout
    followed = tracking.stdout == head if tracking.returncode == 0 else None
    return setup.files(), setup.dirs(), value, logged, followed


def _session(setup: Setup) -> list[Snapshot | dict[str, bytes]]:
    """Copy, push, then pushes that rename, remove and swap files; snapshots after each.

    The client also gets and fscks an exported file, and sends a key of the export.
    """
    client = setup.client
    uuid = setup.gateway.git("config", "remote.exportsr.annex-uuid").stdout.strip()
    keys = _first_push(client)
    client.annex("copy", "-q", "--to", "origin-exportsr", "c.dat")
    seen: list[Snapshot | dict[str, bytes]] = [setup.files()]
    client.git("push", setup.push_url, "HEAD:refs/heads/main", check=False)
    seen.append(_snapshot(setup, uuid, keys))
    client.annex("drop", "-q", "--force", "c.dat")
    client.annex("get", "-q", "--from", "origin-exportsr", "c.dat")
    client.annex("fsck", "-q", "--from", "origin-exportsr", "c.dat")
    client.annex("copy", "-q", "--to", "origin-exportsr", "a.txt")  # to its file name
    seen.append(setup.files())
    (client.path / "moved").mkdir()
    client.git("mv", "c.dat", "moved/c.dat")
    client.git("rm", "-q", "a.txt")
    client.git("commit", "-q", "-m", "rename")
    client.git("push", setup.push_url, "HEAD:refs/heads/main", check=False)
    seen.append(_snapshot(setup, uuid, keys))
    # The git file goes, and two annexed files swap names (through temporary names).
    client.git("rm", "-q", "sub/e.txt")
    (client.path / "b.dat").write_bytes(OTHER + b"b")
    client.annex("add", "-q", "b.dat")
    client.git("commit", "-q", "-m", "b")
    keys["b.dat"] = client.annex("lookupkey", "b.dat").stdout.strip()
    client.annex("copy", "-q", "--to", "origin-exportsr", "b.dat")
    client.git("push", setup.push_url, "HEAD:refs/heads/main", check=False)
    client.git("mv", "b.dat", "swap")
    client.git("mv", "moved/c.dat", "b.dat")
    client.git("mv", "swap", "moved/c.dat")
    # A second file with the same key: copied from the first on the remote.
    (client.path / "dup.dat").write_bytes(CONTENT)
    client.annex("add", "-q", "dup.dat")
    client.git("commit", "-q", "-m", "swap")
    client.git("push", setup.push_url, "HEAD:refs/heads/main", check=False)
    seen.append(_snapshot(setup, uuid, keys))
    return seen


def test_export_matches_git_annex_gateway(tmp_path: Path) -> None:
    """Our export leaves what git-annex's post-receive leaves; keys sent later too."""
    with _reference(tmp_path / "theirs") as theirs:
        expected = _session(theirs)
    with _ours(tmp_path / "ours") as ours:
        got = _session(ours)
    assert got == expected
    last = got[-1]
    assert isinstance(last, tuple)
    assert last[0]["dup.dat"] == last[0]["b.dat"] == CONTENT


def test_s3_export_matches_git_annex_gateway(tmp_path: Path) -> None:
    """The same with an S3 export remote (objects named ``fileprefix`` + path)."""
    with s3_server() as server:
        with _reference(tmp_path / "theirs", (server, f"theirs-{uuid4().hex[:8]}")) as theirs:
            expected = _session(theirs)
        with _ours(tmp_path / "ours", (server, f"ours-{uuid4().hex[:8]}")) as ours:
            got = _session(ours)
            client = ours.client
            for name in ("b.dat", "moved/c.dat"):
                client.annex("drop", "-q", "--force", name)
                client.annex("get", "-q", "--from", "origin-exportsr", name)
                client.annex("fsck", "-q", "--from", "origin-exportsr", name)
    assert got == expected
    last = got[-1]
    assert isinstance(last, tuple)
    assert set(last[0]) >= {"pre/b.dat", "pre/moved/c.dat", "pre/dup.dat"}


def _filtered_session(setup: Setup) -> Snapshot:
    """A tree with a plain symlink, and annexed files the remote's preferred content
    does not want (one alone in its directory): what is exported, and which tree."""
    client = setup.client
    setup.gateway.annex("wanted", "exportsr", "exclude=*.txt")
    uuid = setup.gateway.git("config", "remote.exportsr.annex-uuid").stdout.strip()
    keys = _first_push(client)
    (client.path / "only").mkdir()
    (client.path / "only" / "x.txt").write_bytes(b"excluded\n")
    client.annex("add", "-q", "only/x.txt")
    (client.path / "link").symlink_to("sub/e.txt")
    client.git("add", "link")
    client.git("commit", "-q", "-m", "more")
    client.annex("copy", "-q", "--to", "origin-exportsr", "c.dat")
    client.git("push", setup.push_url, "HEAD:refs/heads/main", check=False)
    return _snapshot(setup, uuid, keys)


def test_filtered_export_matches_git_annex_gateway(tmp_path: Path) -> None:
    with _reference(tmp_path / "theirs") as theirs:
        expected = _filtered_session(theirs)
    with _ours(tmp_path / "ours") as ours:
        got = _filtered_session(ours)
        full = ours.client.git("rev-parse", "HEAD^{tree}").stdout.strip()
    assert got == expected
    assert got[2] != full  # a filtered tree was exported
    assert got[0] == {"c.dat": CONTENT, "sub/e.txt": b"in git\n"}


def test_post_receive_command_as_the_hook(tmp_path: Path) -> None:
    """``annexproxy post-receive`` in hooks/post-receive exports pushes made by path."""
    gateway, directory = _gateway(tmp_path)
    hook = gateway.path / "hooks" / "post-receive"
    hook.write_text(f"#!/bin/sh\nexec {shell_program('annexproxy')} post-receive\n")
    hook.chmod(0o755)
    client = make_ssh_client(gateway, tmp_path / "client", "client")
    _first_push(client)
    client.annex("copy", "-q", "--to", "origin-exportsr", "c.dat")
    result = client.git("push", str(gateway.path), "HEAD:refs/heads/main", check=False)
    assert "remote: export exportsr c.dat ok" in result.stderr
    assert "remote: export exportsr a.txt (not available) failed" in result.stderr
    assert "remote: post-receive: 1 failed" in result.stderr
    assert _tree(directory) == {"c.dat": CONTENT, "sub/e.txt": b"in git\n"}
    tree = client.git("rev-parse", "HEAD^{tree}").stdout.strip()
    assert (
        _export_value(gateway, gateway.git("config", "remote.exportsr.annex-uuid").stdout.strip())
        == tree
    )


def test_export_remote_as_cluster_node(tmp_path: Path) -> None:
    """A cluster's upload reaches an export node's object area; a push exports it."""
    setup = make_cluster(tmp_path, nodes=1)
    gateway = setup.gateway
    directory = tmp_path / "exportdir"
    directory.mkdir()
    gateway.annex(
        "initremote", "-q", "exportsr", "type=directory", f"directory={directory}",
        "encryption=none", "exporttree=yes", "annexobjects=yes",
    )  # fmt: skip
    gateway.git("config", "remote.exportsr.annex-cluster-node", setup.name)
    gateway.git("config", "remote.exportsr.annex-tracking-branch", "main")
    gateway.annex("updatecluster")
    client = make_ssh_client(gateway, tmp_path / "client", "client")
    client.git("config", "remote.origin.receivepack", f"{shell_program()} git-receive-pack")
    keys = _first_push(client)
    client.annex("copy", "-q", "--to", f"origin-{setup.name}", "c.dat")
    hashdir = gateway.annex("examinekey", "--format=${hashdirlower}", keys["c.dat"]).stdout
    objects = f".git/annex/objects/{hashdir.strip()}{keys['c.dat']}/{keys['c.dat']}"
    assert _tree(directory) == {objects: CONTENT}
    client.git("push", "-q", "origin", "HEAD:refs/heads/main")
    assert _tree(directory) == {"c.dat": CONTENT, "sub/e.txt": b"in git\n"}
    client.annex("drop", "-q", "--force", "c.dat")
    client.annex("get", "-q", "--from", f"origin-{setup.name}", "c.dat")
    assert (client.path / "c.dat").read_bytes() == CONTENT


def test_sync_exports_too(tmp_path: Path) -> None:
    """``git annex sync`` pushes main and synced/main (and the git-annex branch): exported."""
    gateway, directory = _gateway(tmp_path)
    client = make_ssh_client(gateway, tmp_path / "client", "client")
    client.git("config", "remote.origin.receivepack", f"{shell_program()} git-receive-pack")
    client.git("checkout", "-q", "-b", "main")
    _first_push(client)
    client.annex("copy", "-q", "--to", "origin-exportsr", "c.dat")
    client.annex("sync", "-q", "--no-content", "origin")
    assert _tree(directory) == {"c.dat": CONTENT, "sub/e.txt": b"in git\n"}
    uuid = gateway.git("config", "remote.exportsr.annex-uuid").stdout.strip()
    assert _export_value(gateway, uuid) == client.git("rev-parse", "HEAD^{tree}").stdout.strip()
    # A second sync merges the gateway's branch (graft and export.log included) into the
    # client's and back; the export stays recorded and readable.
    client.annex("sync", "-q", "--no-content", "origin")
    tree = client.git("rev-parse", "HEAD^{tree}").stdout.strip()
    assert _export_value(gateway, uuid) == tree
    assert uuid in client.git("show", "git-annex:export.log").stdout
    client.annex("drop", "-q", "--force", "c.dat")
    client.annex("get", "-q", "--from", "origin-exportsr", "c.dat")


LOCKER = """
import fcntl, sys
with open(sys.argv[1], "a") as f:
    fcntl.lockf(f, fcntl.LOCK_EX)
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_export_waits_for_the_export_lock(tmp_path: Path) -> None:
    """Another process holding git-annex's export database lock makes an export wait."""
    gateway, _ = _gateway(tmp_path)
    uuid = gateway.git("config", "remote.exportsr.annex-uuid").stdout.strip()
    lockfile = gateway.annexdir / "export" / uuid / "exportdb.lck"
    lockfile.parent.mkdir(parents=True)
    order: list[str] = []

    async def go() -> None:
        holder = await asyncio.create_subprocess_exec(
            sys.executable, "-c", LOCKER, str(lockfile),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert holder.stdout is not None
        assert holder.stdin is not None
        try:
            assert await holder.stdout.readline() == b"locked\n"
            async with open_repository(gateway.path) as local:
                state = ExportState(local)

                async def export() -> None:
                    async with state.exclusive(uuid):
                        order.append("exported")

                task = asyncio.create_task(export())
                # Give the export every chance to run: it must still be waiting (a bound,
                # not a synchronisation: the order below is what proves the wait).
                done, _ = await asyncio.wait({task}, timeout=0.5)
                assert not done
                order.append("released")
                holder.stdin.close()
                await task
        finally:
            if holder.returncode is None:
                holder.kill()
            await holder.wait()

    asyncio.run(go())
    assert order == ["released", "exported"]
