"""Build the benchmark's repositories, servers and clients in one temporary directory.

Owns: the layout below, made with real git-annex (so both gateways see the same branch
and config), and starting/stopping the servers. Must not: time anything.

```
W/node1           holds everything: big.bin, conc/fK.bin, small/sNNNN.bin (SHA256E)
W/c1 c2 c3        empty nodes of cluster "mycluster"
W/gateway         bare; node1 proxied (annex-proxy=true), c1..c3 cluster nodes
                  (initcluster, annex-cluster-node, updatecluster, updateproxy), wants nothing
W/lax, W/l1 l2 l3 the same with nodes that set annexproxy.fsync=false (git-annex's
                  durability), for annexproxy only; not made with --no-fsync
servers (127.0.0.1):  n1-ga  git annex p2phttp in node1      n1-ap  annexproxy serve in node1
                      gw-ga  git annex p2phttp in gateway    gw-ap  annexproxy serve in gateway
                      gw-apl annexproxy serve in lax
W/client, W/clientK   clones of node1 with remotes
    n1ga n1ap (node1 over HTTP)   ga ap (gateway over HTTP: ga-node1, ga-mycluster, ...)
    apl (lax over HTTP: apl-mycluster)
    n1gs n1ps (node1 over ssh)    gs gp (gateway over ssh)   -- ssh = the fakessh stand-in,
    the remote side runs git-annex-shell (g) or annexproxy-shell (p) under GNU time.
```
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from annexproxy.testing.httpserver import free_port
from annexproxy.testing.realannex import AnnexRepo, annex_env, make_annex_repo, run, shell_program

NODES = ("c1", "c2", "c3")
LAX_NODES = ("l1", "l2", "l3")
LAX_GATEWAY = "lax"
CLUSTER = "mycluster"


@dataclass(frozen=True, slots=True, kw_only=True)
class Sizes:
    """Data sizes and repetitions of one harness mode."""

    big_mb: int
    conc_clients: int
    conc_mb: int
    small_count: int
    small_kb: int
    branch_keys: int
    branch_sample: int
    reps: int
    warmup: int
    settle: float = 2.0
    """Seconds of server idleness that end a run's measurement (its branch commit)."""
    conc_reps: int = 0
    """Recorded repetitions of the concurrency scenario, when more than ``reps``: 8 clients
    hashing and writing on a few CPUs scatter by a third from run to run."""
    huge_mb: int = 0
    """The largest object of the object-size scenario (gateway memory must not grow)."""
    sizes_reps: int = 0
    """Recorded repetitions of the object-size scenario, when not ``reps`` (it has no
    warm-up): git-annex's gateway takes minutes for one 4 GiB upload."""

    def reps_of(self, scenario: str) -> int:
        """Recorded repetitions of ``scenario``."""
        if scenario == "conc":
            return max(self.reps, self.conc_reps)
        if scenario == "sizes" and self.sizes_reps:
            return self.sizes_reps
        return self.reps

    def warmup_of(self, scenario: str) -> int:
        """Unrecorded warm-up runs of ``scenario``."""
        return 0 if scenario == "sizes" else self.warmup


@dataclass(slots=True)
class Server:
    """A running HTTP server the harness started."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        """The server process itself (not a wrapper)."""
        return self.proc.pid


@dataclass(slots=True)
class Scene:
    """Everything the scenarios need."""

    top: Path
    sizes: Sizes
    ssh: bool
    node1: AnnexRepo
    nodes: dict[str, AnnexRepo]
    gateway: AnnexRepo
    keys: dict[str, str]  # name in node1 -> key
    lax_nodes: dict[str, AnnexRepo] = field(default_factory=dict)
    """The nodes of the lax gateway's cluster (annexproxy.fsync=false); empty without it."""
    servers: dict[str, Server] = field(default_factory=dict)
    clients: list[AnnexRepo] = field(default_factory=list)

    @property
    def client(self) -> AnnexRepo:
        """The measuring client (the others are for the concurrency scenario)."""
        return self.clients[0]

    def times_file(self) -> Path:
        """Where the server-side ssh shells append their GNU time records."""
        return self.top / "log" / "shell-times.txt"


def real_git_annex() -> Path:
    """The git-annex binary itself: the PyPI command is a wrapper that costs ~35 ms/exec."""
    import git_annex

    return Path(git_annex.__file__).parent / "git-annex"


def prepare_environment(top: Path) -> None:
    """Private HOME and git config, real git-annex first on PATH, fakessh for ssh remotes.

    Sets ``os.environ`` of this process: every command the harness runs inherits it.
    """
    bindir = top / "bin"
    bindir.mkdir(parents=True)
    (top / "log").mkdir()
    (top / "home").mkdir()
    for name in ("git-annex", "git-annex-shell"):
        (bindir / name).symlink_to(real_git_annex())
    times = shutil.which("time", path="/usr/bin:/bin") or "/usr/bin/time"
    for name, program in (
        ("ga-shell", str(bindir / "git-annex-shell")),
        ("ap-shell", shell_program("annexproxy-shell")),
    ):
        script = bindir / name
        script.write_text(
            "#!/bin/sh\n"
            f'exec {times} -a -o "${{BENCH_TIMES:-/dev/null}}" -f "%U %S %M" {program} "$@"\n'
        )
        script.chmod(0o755)
    os.environ["HOME"] = str(top / "home")
    os.environ["PATH"] = f"{bindir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}"
    os.environ["PATH"] += os.environ.get("BENCH_ORIG_PATH", "/usr/local/bin:/usr/bin:/bin")
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    os.environ["GIT_ANNEX_USE_GIT_SSH"] = "1"
    os.environ["GIT_SSH_COMMAND"] = f"{sys.executable} -m annexproxy.testing.fakessh"
    for key, value in (
        ("init.defaultBranch", "main"),
        ("annex.security.allowed-ip-addresses", "127.0.0.1"),
        ("protocol.file.allow", "always"),
        ("annex.sshcaching", "false"),
        ("user.name", "bench"),
        ("user.email", "bench@localhost"),
    ):
        run(["git", "config", "--global", key, value], top)


def write_random(path: Path, size: int) -> None:
    """A file of ``size`` random bytes (its directory made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    chunk = 8 << 20
    with path.open("wb") as f:
        left = size
        while left > 0:
            f.write(os.urandom(min(chunk, left)))
            left -= chunk


def make_node1(top: Path, sizes: Sizes) -> tuple[AnnexRepo, dict[str, str]]:
    """node1 with all the content, committed; returns it and the keys by file name."""
    node1 = make_annex_repo(top / "node1", "node1")
    write_random(node1.path / "big.bin", sizes.big_mb << 20)
    for k in range(1, sizes.conc_clients + 1):
        write_random(node1.path / "conc" / f"f{k}.bin", sizes.conc_mb << 20)
    small = node1.path / "small"
    small.mkdir()
    for i in range(sizes.small_count):
        (small / f"s{i:04d}.bin").write_bytes(os.urandom(sizes.small_kb << 10))
    node1.git("config", "annex.backend", "SHA256E")
    node1.annex("add", "--quiet", ".")
    node1.git("commit", "-q", "-m", "content")
    names = ["big.bin", *(f"conc/f{k}.bin" for k in range(1, sizes.conc_clients + 1))]
    keys = {name: node1.annex("lookupkey", name).stdout.strip() for name in names}
    keys["small/s0000.bin"] = node1.annex("lookupkey", "small/s0000.bin").stdout.strip()
    return node1, keys


def make_gateway(
    top: Path, node1: AnnexRepo, name: str = "gateway", node_names: tuple[str, ...] = NODES
) -> tuple[AnnexRepo, dict[str, AnnexRepo]]:
    """The gateway as in shared/spec/examples/01, plus node1 as a proxied remote."""
    nodes = {node: make_annex_repo(top / node, node) for node in node_names}
    gateway = make_annex_repo(top / name, name, bare=True)
    gateway.git("remote", "add", "node1", str(node1.path))
    for node_name, node in nodes.items():
        gateway.git("remote", "add", node_name, str(node.path))
    gateway.annex("sync", "--no-content", "--no-push", "--quiet")
    gateway.git("config", "remote.node1.annex-proxy", "true")
    gateway.annex("initcluster", CLUSTER)
    for node in nodes:
        gateway.git("config", f"remote.{node}.annex-cluster-node", CLUSTER)
    gateway.annex("updatecluster")
    gateway.annex("updateproxy")
    gateway.annex("wanted", "here", "nothing")
    gateway.git("config", "annex.jobs", "3")  # git-annex-shell's fan-out over ssh
    return gateway, nodes


def _wait_port(server: Server, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", server.port), 1):
            return
        if server.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{server.name} did not start: {log.read_text()[-2000:]}")
        time.sleep(0.05)  # the port is not accepting yet; bounded by the deadline


def start_server(scene: Scene, name: str, repo: Path, argv: list[str]) -> Server:
    """Start one server on a free loopback port; ``argv`` gets --bind/--port appended."""
    port = free_port()
    log = scene.top / "log" / f"{name}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [*argv, "--bind", "127.0.0.1", "--port", str(port)],
            cwd=repo,
            env=annex_env(),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = Server(name=name, port=port, proc=proc)
    _wait_port(server, log)
    scene.servers[name] = server
    return server


def start_servers(scene: Scene) -> None:
    """Git annex p2phttp and annexproxy serve, on node1 and on the gateway."""
    jobs = str(max(8, scene.sizes.conc_clients))
    ga = ["git-annex", "p2phttp", "--wideopen", "--jobs", jobs]
    ap = [shell_program("annexproxy"), "serve", "--wideopen"]
    start_server(scene, "n1-ga", scene.node1.path, ga)
    start_server(scene, "n1-ap", scene.node1.path, ap)
    proxyconn = str(max(1, scene.sizes.conc_clients))
    start_server(
        scene,
        "gw-ga",
        scene.gateway.path,
        [*ga, "--proxyconnections", proxyconn, "--clusterjobs", "3"],
    )
    start_server(scene, "gw-ap", scene.gateway.path, ap)
    if scene.lax_nodes:
        start_server(scene, "gw-apl", scene.top / LAX_GATEWAY, ap)


def stop_servers(scene: Scene) -> None:
    """SIGTERM each server we started (by its PID), then SIGKILL after a grace period."""
    for server in scene.servers.values():
        if server.proc.poll() is None:
            server.proc.send_signal(signal.SIGTERM)
    for server in scene.servers.values():
        try:
            server.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


def make_client(scene: Scene, path: Path) -> AnnexRepo:
    """A clone of node1 with HTTP and ssh remotes for node1 and the gateway."""
    run(["git", "clone", "-q", "-o", "n1ga", str(scene.node1.path), str(path)], scene.top)
    client = AnnexRepo(path=path, uuid="", bare=False)
    ports = {name: server.port for name, server in scene.servers.items()}
    remotes = {
        "n1ga": (scene.node1.path, f"annex+http://127.0.0.1:{ports['n1-ga']}/git-annex/"),
        "n1ap": (scene.node1.path, f"annex+http://127.0.0.1:{ports['n1-ap']}/git-annex/"),
        "ga": (scene.gateway.path, f"annex+http://127.0.0.1:{ports['gw-ga']}/git-annex/"),
        "ap": (scene.gateway.path, f"annex+http://127.0.0.1:{ports['gw-ap']}/git-annex/"),
    }
    if "gw-apl" in ports:
        remotes["apl"] = (
            scene.top / LAX_GATEWAY,
            f"annex+http://127.0.0.1:{ports['gw-apl']}/git-annex/",
        )
    for name, (url, annexurl) in remotes.items():
        if name != "n1ga":
            client.git("remote", "add", name, str(url))
        client.git("config", f"remote.{name}.annexurl", annexurl)
    if scene.ssh:
        bindir = scene.top / "bin"
        for name, url, shell in (
            ("n1gs", scene.node1.path, "ga-shell"),
            ("n1ps", scene.node1.path, "ap-shell"),
            ("gs", scene.gateway.path, "ga-shell"),
            ("gp", scene.gateway.path, "ap-shell"),
        ):
            client.git("remote", "add", name, f"fakehost:{url}")
            client.git("config", f"remote.{name}.annex-shell", str(bindir / shell))
    client.annex("init", "-q", path.name)
    client.git("fetch", "-q", "--all")
    client.annex("merge", "--quiet")
    # learn the gateways' UUIDs
    client.annex("info", "--fast", *(n for n in ("ga", "ap", "apl") if n in remotes), check=False)
    return AnnexRepo(path=path, uuid=client.git("config", "annex.uuid").stdout.strip(), bare=False)


def build(top: Path, sizes: Sizes, *, ssh: bool, fsync: bool = True) -> Scene:
    """Make every repository, start the servers, make the clients.

    With ``fsync=False`` the node repositories get ``annexproxy.fsync false``: annexproxy
    then stores objects with git-annex's durability (git-annex does not fsync them).
    Otherwise a second ("lax") gateway has nodes set so, to measure that in the same run.
    """
    node1, keys = make_node1(top, sizes)
    gateway, nodes = make_gateway(top, node1)
    lax_nodes: dict[str, AnnexRepo] = {}
    if fsync:
        _, lax_nodes = make_gateway(top, node1, LAX_GATEWAY, LAX_NODES)
    lax = (node1, *nodes.values()) if not fsync else tuple(lax_nodes.values())
    for repo in lax:
        repo.git("config", "annexproxy.fsync", "false")
    scene = Scene(
        top=top,
        sizes=sizes,
        ssh=ssh,
        node1=node1,
        nodes=nodes,
        gateway=gateway,
        keys=keys,
        lax_nodes=lax_nodes,
    )
    start_servers(scene)
    scene.clients.append(make_client(scene, top / "client"))
    for k in range(1, sizes.conc_clients + 1):
        scene.clients.append(make_client(scene, top / f"client{k}"))
    return scene


def check_remotes(scene: Scene) -> list[str]:
    """Which proxied remotes the client sees (for the report's checks)."""
    wanted = ["ga-node1", f"ga-{CLUSTER}", "ap-node1", f"ap-{CLUSTER}"]
    if scene.ssh:
        wanted += ["gs-node1", f"gs-{CLUSTER}", "gp-node1", f"gp-{CLUSTER}"]
    if scene.lax_nodes:
        wanted.append(f"apl-{CLUSTER}")
    out = []
    for name in wanted:
        ok = scene.client.annex("info", "--fast", name, check=False).returncode == 0
        out.append(f"remote {name}: {'available' if ok else 'NOT AVAILABLE'}")
    return out
