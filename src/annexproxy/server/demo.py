"""The embedded demo: a gateway with a three-node cluster, served over HTTP on loopback.

It builds, in a temporary directory, a gateway repository and three node repositories
joined into the cluster ``demo`` (with git-annex's own commands, as shared/spec/examples
01 does), groups the nodes in ``pool`` with ``balanced=pool`` so every file goes to one
node, starts ``annexproxy serve`` on a free port, and either prints what a user types
to try it, or (``run``) runs those commands with the real git-annex client and reports
where each file went. It needs git and git-annex (``pip install 'annexproxy[demo]'``).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from annexproxy.errors import AnnexProxyError, ConfigError
from annexproxy.testing.httpserver import RunningServer, annexproxy_serve
from annexproxy.testing.realannex import AnnexRepo, ClusterSetup, make_cluster, run

DEMO_FILES = {
    "README.txt": b"Served by annexproxy through a cluster.\n",
    "data/measurements.csv": b"t,value\n"
    + b"".join(f"{i},{i * i}\n".encode() for i in range(50000)),
    "data/empty.dat": b"",
    "images/scan-01.bin": bytes(range(256)) * 1024,
    "images/scan-02.bin": bytes(reversed(range(256))) * 2048,
    "notes/ünïcødé name.txt": "grüße\n".encode(),
}


class DemoError(AnnexProxyError):
    """A step of the demo failed; the message holds the command and its output."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoStep:
    """One command the demo ran, where, and what it printed."""

    where: str
    command: str
    output: str


def check_tools() -> None:
    """Make sure git and git-annex are installed.

    Raises:
        ConfigError: one of them is missing, with what to install.
    """
    for tool, hint in (("git", "install git"), ("git-annex", "pip install git-annex")):
        if shutil.which(tool) is None:
            raise ConfigError(f"the demo needs {tool}, which is not on PATH: {hint}")


@contextmanager
def demo_gateway(workdir: Path) -> Iterator[tuple[ClusterSetup, RunningServer]]:
    """Build the gateway and its cluster in ``workdir`` and serve it over HTTP.

    Raises:
        ConfigError: git or git-annex is missing.
        DemoError: setting up failed.
    """
    check_tools()
    try:
        setup = make_cluster(workdir, nodes=3, name="demo")
        for i in range(1, 4):
            setup.gateway.annex("group", f"node{i}", "pool")
            setup.gateway.annex("wanted", f"node{i}", "groupwanted")
        setup.gateway.annex("groupwanted", "pool", "balanced=pool")
    except AssertionError as exc:
        raise DemoError(f"setting up the demo cluster failed:\n{exc}") from exc
    with annexproxy_serve(setup.gateway.path, "--wideopen", "--no-access-log") as server:
        yield setup, server


def clone_url(server: RunningServer) -> str:
    """The git URL of the gateway repository on the demo server."""
    return f"http://127.0.0.1:{server.port}/gateway"


def user_commands(server: RunningServer) -> list[str]:
    """What a user types to use the demo gateway with git-annex."""
    return [
        f"git clone {clone_url(server)} demo-client && cd demo-client",
        "git config annex.security.allowed-ip-addresses 127.0.0.1",
        "git annex init 'my laptop'",
        "git annex info origin        # gateway to cluster: origin-demo",
        "cp ~/some/files/* . && git annex add . && git commit -m files",
        "git annex copy --to origin-demo .",
        "git annex whereis .",
        "git annex drop . && git annex get --from origin-demo .",
    ]


def run_client(
    setup: ClusterSetup, server: RunningServer, workdir: Path, report: Callable[[DemoStep], None]
) -> dict[str, list[str]]:
    """Run the user's commands with the real client; return each file's node names.

    Raises:
        DemoError: a command failed.
    """
    client = AnnexRepo(path=workdir / "client", uuid="", bare=False)

    def step(*args: str, git: bool = False) -> str:
        command = " ".join(("git", *args) if git else ("git", "annex", *args))
        try:
            result = client.git(*args) if git else client.annex(*args)
        except AssertionError as exc:
            raise DemoError(f"demo step failed: {command}\n{exc}") from exc
        report(DemoStep(where="client", command=command, output=_quiet(result.stdout)))
        return result.stdout

    try:
        run(["git", "clone", "-q", clone_url(server), str(client.path)], workdir)
    except AssertionError as exc:
        raise DemoError(f"cloning the demo gateway failed:\n{exc}") from exc
    report(DemoStep(where="client", command=f"git clone {clone_url(server)} client", output=""))
    step("config", "annex.security.allowed-ip-addresses", "127.0.0.1", git=True)
    step("init", "demo client")
    step("info", "origin")
    for name, content in DEMO_FILES.items():
        target = client.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    step("add", ".")
    step("commit", "-q", "-m", "demo files", git=True)
    step("copy", "--to", "origin-demo", ".")
    step("drop", ".")
    step("get", "--from", "origin-demo", ".")
    step("whereis", ".")
    names = {node.uuid: f"node{i}" for i, node in enumerate(setup.nodes, 1)}
    placement: dict[str, list[str]] = {}
    for name in DEMO_FILES:
        key = client.annex("lookupkey", name).stdout.strip()
        placement[name] = [
            names[node.uuid]
            for node in setup.nodes
            if node.annex("contentlocation", key, check=False).returncode == 0
        ]
    return placement


def _quiet(output: str) -> str:
    lines = output.replace("\r", "\n").splitlines()
    return "\n".join(line for line in lines if line.strip() and "%" not in line[:6])
