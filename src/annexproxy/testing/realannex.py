"""Helpers for tests that drive the real git-annex: make repositories, run commands.

Shipped so that every test tier (and later the benchmark) sets repositories up the same
way. Runs subprocesses; never imported by the library itself.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "annexproxy test",
    "GIT_AUTHOR_EMAIL": "test@annexproxy.invalid",
    "GIT_COMMITTER_NAME": "annexproxy test",
    "GIT_COMMITTER_EMAIL": "test@annexproxy.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def annex_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for git and git-annex in tests: fixed identity, no system config."""
    env = dict(os.environ)
    env.update(GIT_ENV)
    if extra:
        env.update(extra)
    return env


def run(
    args: list[str],
    cwd: Path,
    *,
    env: dict[str, str] | None = None,
    check: bool = True,
    input: bytes | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command, returning its output as text; raise with its stderr on failure."""
    proc = subprocess.run(
        args,
        cwd=cwd,
        env=env or annex_env(),
        input=input,
        capture_output=True,
        timeout=300,
        check=False,
    )
    result = subprocess.CompletedProcess(
        proc.args,
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{args} failed in {cwd} with {proc.returncode}:\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}"
        )
    return result


@dataclass(frozen=True, slots=True, kw_only=True)
class AnnexRepo:
    """A git-annex repository made for a test."""

    path: Path
    uuid: str
    bare: bool
    env: Mapping[str, str] = field(default_factory=dict)
    # Words put before every git / git-annex command (e.g. a private mount namespace).
    prefix: tuple[str, ...] = ()

    @property
    def gitdir(self) -> Path:
        """The git directory (``.git`` or the bare repository itself)."""
        return self.path if self.bare else self.path / ".git"

    @property
    def annexdir(self) -> Path:
        """The annex directory."""
        return self.gitdir / "annex"

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run git in this repository."""
        return run(
            [*self.prefix, "git", *args], self.path, check=check, env=annex_env(dict(self.env))
        )

    def annex(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run git-annex in this repository."""
        return run(
            [*self.prefix, "git", "annex", *args],
            self.path,
            check=check,
            env=annex_env({**self.env, **(env or {})}),
        )


def make_annex_repo(path: Path, description: str, *, bare: bool = False) -> AnnexRepo:
    """Create and initialise a git-annex repository at ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    run(["git", "init", "-q", *(["--bare"] if bare else []), "-b", "main", str(path)], path)
    run(["git", "annex", "init", "-q", description], path)
    uuid = run(["git", "config", "annex.uuid"], path).stdout.strip()
    return AnnexRepo(path=path, uuid=uuid, bare=bare)


def add_file(repo: AnnexRepo, name: str, content: bytes) -> str:
    """Add a file to a non-bare repository with git-annex and commit it; return its key."""
    target = repo.path / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    repo.annex("add", "--quiet", name)
    repo.git("commit", "-q", "-m", f"add {name}")
    return repo.annex("lookupkey", name).stdout.strip()


def fakessh_env() -> dict[str, str]:
    """Environment that makes git and git-annex use the local ssh stand-in."""
    return {
        "GIT_ANNEX_USE_GIT_SSH": "1",
        "GIT_SSH_COMMAND": f"{sys.executable} -m annexproxy.testing.fakessh",
    }


def install_external_program(bindir: Path, externaltype: str, program: Path) -> Path:
    """Install ``program`` (a Python script) as ``bindir/git-annex-remote-EXTERNALTYPE``.

    The wrapper runs it with this Python; put ``bindir`` on PATH for git-annex (and
    annexproxy) to find it.

    Returns:
        The wrapper.
    """
    bindir.mkdir(parents=True, exist_ok=True)
    wrapper = bindir / f"git-annex-remote-{externaltype}"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{program}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def shell_program(name: str = "annexproxy-shell") -> str:
    """Absolute path of an installed server program (next to this Python, or on PATH)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed; run pip install -e .")
    return found


def make_ssh_client(
    server: AnnexRepo,
    path: Path,
    description: str,
    *,
    shell: str | None = None,
    sync: bool = False,
) -> AnnexRepo:
    """Clone ``server`` over the ssh stand-in as remote ``origin`` and init git-annex.

    ``shell`` is the program the client runs on the "remote" side (``remote.origin.annex-
    shell``); by default annexproxy-shell. Give "git-annex-shell" to talk to git-annex's.
    With ``sync``, the client then runs ``git annex sync --no-content`` once (its
    failure is not checked), as `make_http_client` always does.
    """
    env = fakessh_env()
    run(
        ["git", "clone", "-q", f"fakehost:{server.path}", str(path)],
        path.parent,
        env=annex_env(env),
    )
    client = AnnexRepo(path=path, uuid="", bare=False, env=env)
    client.git("config", "annex.sshcaching", "false")
    client.git("config", "remote.origin.annex-shell", shell or shell_program())
    client.annex("init", "-q", description)
    if sync:
        client.annex("sync", "--no-content", "--quiet", check=False)
    uuid = client.git("config", "annex.uuid").stdout.strip()
    return AnnexRepo(path=path, uuid=uuid, bare=False, env=env)


def make_http_client(server: AnnexRepo, path: Path, url: str) -> AnnexRepo:
    """Clone ``server`` by path, point ``origin`` at the annex+http ``url``, init git-annex.

    Loopback addresses are allowed (git-annex refuses private addresses otherwise), and a
    sync fetches the server's branch so that proxied remotes are known.
    """
    run(["git", "clone", "-q", str(server.path), str(path)], path.parent)
    client = AnnexRepo(path=path, uuid="", bare=False, env={})
    client.git("config", "remote.origin.annexurl", url)
    client.git("config", "annex.security.allowed-ip-addresses", "127.0.0.1")
    client.annex("init", "-q", "client")
    client.annex("sync", "--no-content", "--quiet", check=False)
    return client


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterSetup:
    """A gateway repository with a cluster of local node repositories."""

    gateway: AnnexRepo
    nodes: tuple[AnnexRepo, ...]
    cluster_uuid: str
    name: str


def make_cluster(
    top: Path, *, nodes: int = 3, name: str = "mycluster", ssh_nodes: frozenset[int] = frozenset()
) -> ClusterSetup:
    """Set up a gateway and a cluster of ``nodes`` repositories with real git-annex.

    The commands are those of shared/spec/examples/01: bare gateway, nodes as remotes with
    ``annex-cluster-node``, ``initcluster`` and ``updatecluster``; the gateway wants
    nothing itself (clusters.md 6.6). Nodes numbered in ``ssh_nodes`` are reached over
    the ssh stand-in (served by git-annex-shell), the others by local path; the gateway
    then carries the stand-in's environment.
    """
    gateway = make_annex_repo(top / "gateway", "gateway", bare=True)
    if ssh_nodes:
        gateway = AnnexRepo(path=gateway.path, uuid=gateway.uuid, bare=True, env=fakessh_env())
    members = []
    for i in range(1, nodes + 1):
        node = make_annex_repo(top / f"node{i}", f"node{i}", bare=(i % 2 == 0))
        members.append(node)
        url = f"fakehost:{node.path}" if i in ssh_nodes else str(node.path)
        gateway.git("remote", "add", f"node{i}", url)
    gateway.annex("sync", "--no-content", "--no-push", "--quiet")
    gateway.annex("initcluster", name)
    for i in range(1, nodes + 1):
        gateway.git("config", f"remote.node{i}.annex-cluster-node", name)
    gateway.annex("updatecluster")
    gateway.annex("wanted", "here", "nothing")
    cluster_uuid = gateway.git("config", f"annex.cluster.{name}").stdout.strip()
    return ClusterSetup(gateway=gateway, nodes=tuple(members), cluster_uuid=cluster_uuid, name=name)


def assert_testremote_passes(client: AnnexRepo, remote: str, *, fast: bool = False) -> None:
    """Run ``git annex testremote REMOTE`` and fail on any test but "unavailable remote".

    The "unavailable remote" group fails against git-annex's own servers too when the
    remote is reached through a local stand-in (issue 2), so it is not held against us.
    """
    args = ["testremote", remote, "--tap", *(["--fast"] if fast else [])]
    result = client.annex(*args, check=False)
    failed = re.findall(r"^not ok \d+ - (.*)$", result.stdout, flags=re.MULTILINE)
    unexpected = [t for t in failed if ".unavailable remote." not in t]
    assert unexpected == [], result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(r"^ok \d+ ", result.stdout, flags=re.MULTILINE), result.stdout[-3000:]


def seed_commit(client: AnnexRepo) -> None:
    """Commit one annexed file, so that commands needing a branch (testremote) work."""
    (client.path / "seed").write_text("seed\n")
    client.annex("add", "--quiet", "seed")
    client.git("commit", "-q", "-m", "seed")
