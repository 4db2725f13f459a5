"""The measured cases of each scenario, and running one case once.

Owns: what each scenario runs for git-annex's gateway and for annexproxy (the same client
command against a different remote), the untimed preparation before a run, the check
after it, and one measured run producing one record. Must not: build the scene or print
tables.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from procstat import ServerProbe, ServerUsage, all_stats, machine_busy, shell_usage
from scene import CLUSTER, Scene, start_server, write_random

from annexproxy.testing.realannex import AnnexRepo

GA, AP, LIMIT = "git-annex", "annexproxy", "limit"
DURABLE_WRITES = "3 parallel durable writes of the object (dd conv=fsync)"
LAX = "HTTP, nodes without fsync (git-annex's durability)"
IMPLS = {
    GA: ("n1ga", "ga", "n1gs", "gs", "n1-ga", "gw-ga"),
    AP: ("n1ap", "ap", "n1ps", "gp", "n1-ap", "gw-ap"),
}

Command = tuple[tuple[str, ...], Path]


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    """One variant of a scenario: commands started together, and what to measure."""

    scenario: str  # the table row
    impl: str  # GA, AP or LIMIT
    commands: tuple[Command, ...]
    server: str | None = None  # name of the HTTP server to probe
    shell: bool = False  # server usage comes from the ssh shells' GNU time records
    nbytes: int = 0
    nfiles: int = 0
    prepare: Callable[[], None] | None = None
    check: Callable[[], str | None] | None = None  # returns a problem, or None
    extra: dict[str, str] = field(default_factory=dict)


def _quiet(cmd: list[str], cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


def set_subreaper() -> None:
    """Adopt orphaned descendants (prctl PR_SET_CHILD_SUBREAPER).

    A server-side ssh shell may outlive the client that started it; adopted, it is reaped
    by `measure` (its GNU time record is then complete and its CPU counted).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)


def _reap_orphans(servers: set[int], timeout: float = 10.0) -> None:
    me = os.getpid()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = [pid for pid, st in all_stats().items() if st[0] == me and pid not in servers]
        if not kids:
            return
        for pid in kids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        time.sleep(0.01)  # adopted processes still finishing; bounded by the deadline


def measure(scene: Scene, case: Case, rep: int) -> dict[str, object]:
    """Prepare, run the case's commands at once, and return one record."""
    if case.prepare is not None:
        case.prepare()
    os.sync()  # writeback of earlier runs stays out of this one
    probe = None
    if case.server is not None:
        probe = ServerProbe(scene.servers[case.server].pid)
        probe.start()
    times = scene.times_file()
    times.unlink(missing_ok=True)
    os.environ["BENCH_TIMES"] = str(times)
    log = (scene.top / "log" / "clients.log").open("ab")
    busy0 = machine_busy()
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        for argv, cwd in case.commands
    ]
    rcs = [p.wait() for p in procs]
    wall = time.perf_counter() - t0
    _reap_orphans({server.pid for server in scene.servers.values()})
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    log.close()
    del os.environ["BENCH_TIMES"]
    usage: ServerUsage | None = None
    if probe is not None:
        probe.settle(scene.sizes.settle)  # its branch commit after the run is part of it
        usage = probe.stop()
    elif case.shell:
        usage = shell_usage(str(times))
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    client = (kids1.ru_utime - kids0.ru_utime) + (kids1.ru_stime - kids0.ru_stime)
    harness = (self1.ru_utime - self0.ru_utime) + (self1.ru_stime - self0.ru_stime)
    server_cpu = usage.cpu if usage is not None and not case.shell else 0.0
    problem = None if all(rc == 0 for rc in rcs) else f"exit codes {rcs}"
    if problem is None and case.check is not None:
        problem = case.check()
    record: dict[str, object] = {
        "scenario": case.scenario,
        "impl": case.impl,
        "rep": rep,
        "wall": round(wall, 4),
        "bytes": case.nbytes,
        "files": case.nfiles,
        "client_cpu": round(client, 3),  # over ssh this includes the server-side shells
        "other_cpu": round(machine_busy() - busy0 - client - server_cpu - harness, 3),
        "problem": problem,
        **case.extra,
    }
    if usage is not None:
        record.update(
            srv_user=round(usage.user, 3),
            srv_sys=round(usage.sys, 3),
            srv_root_cpu=round(usage.root_cpu, 3),
            srv_rss_mb=round(usage.peak_rss_mb, 1),
            srv_tree_rss_mb=round(usage.tree_peak_mb, 1),
            srv_nprocs=usage.nprocs,
        )
    return record


def _annex(client: Path, *args: str) -> Command:
    return (("git", "annex", *args), client)


def _present(path: Path, size: int) -> Callable[[], str | None]:
    def check() -> str | None:
        try:
            got = path.stat().st_size
        except OSError:
            return f"{path.name} missing after the run"
        return None if got == size else f"{path.name} has {got} bytes, expected {size}"

    return check


def object_path(scene: Scene, key: str) -> Path:
    """Where node1 keeps a key's content."""
    return scene.node1.path / scene.node1.annex("contentlocation", key).stdout.strip()


def limit_cases(scene: Scene) -> list[Case]:
    """cat, cp, sha256sum of the big object; curl from two trivial static servers."""
    obj = object_path(scene, scene.keys["big.bin"])
    size = obj.stat().st_size
    here = Path(__file__).resolve().parent
    for kind in ("stdlib", "aiohttp"):
        if f"static-{kind}" not in scene.servers:
            argv = [sys.executable, str(here / "static_server.py"), kind, str(obj)]
            start_server(scene, f"static-{kind}", scene.top, argv)
    copy = scene.top / "cp.bin"
    curl = ("curl", "-sSf", "-o", "/dev/null")
    port = {k: scene.servers[f"static-{k}"].port for k in ("stdlib", "aiohttp")}
    return [
        Case(
            scenario="cat > /dev/null",
            impl=LIMIT,
            commands=((("sh", "-c", f"cat '{obj}' >/dev/null"), scene.top),),
            nbytes=size,
        ),
        Case(
            scenario="cp (page cache -> new file)",
            impl=LIMIT,
            commands=((("cp", "--reflink=never", str(obj), str(copy)), scene.top),),
            nbytes=size,
            prepare=lambda: copy.unlink(missing_ok=True),
        ),
        Case(
            scenario="sha256sum",
            impl=LIMIT,
            commands=((("sha256sum", str(obj)), scene.top),),
            nbytes=size,
        ),
        Case(
            scenario="curl <- python http.server (read/write)",
            impl=LIMIT,
            commands=(((*curl, f"http://127.0.0.1:{port['stdlib']}/f"), scene.top),),
            server="static-stdlib",
            nbytes=size,
        ),
        Case(
            scenario="curl <- aiohttp FileResponse (sendfile)",
            impl=LIMIT,
            commands=(((*curl, f"http://127.0.0.1:{port['aiohttp']}/f"), scene.top),),
            server="static-aiohttp",
            nbytes=size,
        ),
    ]


def key_cases(scene: Scene) -> list[Case]:
    """Curl of the p2phttp key endpoint for the big key: direct from node1, via the gateway."""
    key = scene.keys["big.bin"]
    size = scene.sizes.big_mb << 20
    cases = []
    for impl, names in IMPLS.items():
        for label, server in (("direct from node", names[4]), ("via gateway", names[5])):
            scenario = f"curl key {scene.sizes.big_mb} MiB, HTTP, {label}"
            cases.append(_curl_key(scene, scenario, impl, server, scene.node1.uuid, key, size))
    return cases


def _curl_key(
    scene: Scene, scenario: str, impl: str, server: str, uuid: str, key: str, size: int
) -> Case:
    """Curl of ``server``'s p2phttp key endpoint for ``key`` of repository ``uuid``."""
    url = f"http://127.0.0.1:{scene.servers[server].port}/git-annex/{uuid}/key/{key}"
    return Case(
        scenario=scenario,
        impl=impl,
        commands=((("curl", "-sSf", "-o", "/dev/null", url), scene.top),),
        server=server,
        nbytes=size,
    )


def big_cases(scene: Scene) -> list[Case]:
    """Get of the big file with the git-annex client: direct vs via the gateway."""
    client = scene.client.path
    size = scene.sizes.big_mb << 20

    def drop() -> None:
        _quiet(["git", "annex", "drop", "--force", "big.bin"], client)

    cases = []
    for impl, (n1http, gwhttp, n1ssh, gwssh, n1srv, gwsrv) in IMPLS.items():
        variants: list[tuple[str, str, str | None]] = [
            ("HTTP, direct from node", n1http, n1srv),
            ("HTTP, via gateway", f"{gwhttp}-node1", gwsrv),
        ]
        if scene.ssh:
            variants += [
                ("ssh, direct from node", n1ssh, None),
                ("ssh, via gateway", f"{gwssh}-node1", None),
            ]
        for label, remote, server in variants:
            cases.append(
                Case(
                    scenario=f"get {scene.sizes.big_mb} MiB, {label}",
                    impl=impl,
                    commands=(_annex(client, "get", "-q", "--from", remote, "big.bin"),),
                    server=server,
                    shell=server is None,
                    nbytes=size,
                    prepare=drop,
                    check=_present(client / "big.bin", size),
                )
            )
    return cases


def _clear_cluster(
    scene: Scene, remote: str, name: str, key: str, nodes: dict[str, AnnexRepo] | None = None
) -> Callable[[], None]:
    """Before an upload: the cluster (each node) no longer has ``key``."""

    def prepare() -> None:
        client = scene.client.path
        _quiet(["git", "annex", "drop", "-q", "--force", "--from", remote, name], client)
        for node in (scene.nodes if nodes is None else nodes).values():
            _quiet(["git", "annex", "dropkey", "-q", "--force", key], node.path)

    return prepare


def _landed(
    scene: Scene, key: str, nodes: dict[str, AnnexRepo] | None = None
) -> Callable[[], str | None]:
    """After an upload: every node has ``key``."""

    def check() -> str | None:
        missing = [
            name
            for name, node in (scene.nodes if nodes is None else nodes).items()
            if node.annex("contentlocation", key, check=False).returncode != 0
        ]
        return f"not stored on {missing}" if missing else None

    return check


def cluster_cases(scene: Scene) -> list[Case]:
    """Copy --to the 3-node cluster of the big file (fan-out), over HTTP and ssh."""
    client = scene.client.path
    key = scene.keys["big.bin"]
    size = scene.sizes.big_mb << 20
    _quiet(["git", "annex", "get", "-q", "--from", "n1ga", "big.bin"], client)

    # The disk's own bound on a durable fan-out: three parallel copies, each fsynced.
    obj = object_path(scene, key)
    copies = [scene.top / f"durable{n}.bin" for n in range(3)]
    writes = " & ".join(f"dd if='{obj}' of='{c}' bs=8M conv=fsync status=none" for c in copies)

    def no_copies() -> None:
        for copy in copies:
            copy.unlink(missing_ok=True)

    cases = [
        Case(
            scenario=DURABLE_WRITES,
            impl=LIMIT,
            commands=((("sh", "-c", f"{writes} & wait"), scene.top),),
            nbytes=size,
            prepare=no_copies,
        )
    ]

    def upload(
        impl: str, label: str, remote: str, server: str | None, nodes: dict[str, AnnexRepo]
    ) -> Case:
        return Case(
            scenario=f"copy --to 3-node cluster {scene.sizes.big_mb} MiB, {label}",
            impl=impl,
            commands=(_annex(client, "copy", "-q", "--to", remote, "big.bin"),),
            server=server,
            shell=server is None,
            nbytes=size,
            prepare=_clear_cluster(scene, remote, "big.bin", key, nodes),
            check=_landed(scene, key, nodes),
        )

    for impl, (_, gwhttp, _, gwssh, _, gwsrv) in IMPLS.items():
        variants = [("HTTP", gwhttp, gwsrv)] + ([("ssh", gwssh, None)] if scene.ssh else [])
        for label, gw, server in variants:
            cases.append(upload(impl, label, f"{gw}-{CLUSTER}", server, scene.nodes))
    if scene.lax_nodes:  # annexproxy at git-annex's durability, in the same run
        cases.append(upload(AP, LAX, f"apl-{CLUSTER}", "gw-apl", scene.lax_nodes))
    return cases


def _count_objects(repo: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(repo / ".git" / "annex" / "objects"))


def small_cases(scene: Scene) -> list[Case]:
    """Many small files through the gateway over HTTP: get from node1, copy --to the cluster."""
    client = scene.client.path
    sizes = scene.sizes
    count = sizes.small_count

    def drop() -> None:
        _quiet(["git", "annex", "drop", "-q", "--force", "small"], client)

    def get_check() -> str | None:
        have = sum(1 for p in (client / "small").iterdir() if p.exists())
        return None if have == count else f"only {have} of {count} files present"

    cases = []
    for impl, (_, gwhttp, _, _, _, gwsrv) in IMPLS.items():
        cases.append(
            Case(
                scenario=f"get {count} x {sizes.small_kb} KiB via gateway, HTTP",
                impl=impl,
                commands=(
                    _annex(client, "get", "-q", "-J1", "--from", f"{gwhttp}-node1", "small"),
                ),
                server=gwsrv,
                nbytes=count * (sizes.small_kb << 10),
                nfiles=count,
                prepare=drop,
                check=get_check,
            )
        )
        target = client / "up"
        state: dict[str, dict[str, int]] = {}

        def make_files(target: Path = target, state: dict[str, dict[str, int]] = state) -> None:
            # Fresh keys for each run (new random content under the same names): an upload
            # of keys the nodes already have is no upload.
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            for i in range(count):
                (target / f"u{i:04d}.bin").write_bytes(os.urandom(sizes.small_kb << 10))
            _quiet(["git", "annex", "add", "-q", "up"], client)
            _quiet(["git", "commit", "-q", "-m", "upload set", "up"], client)
            state["before"] = {n: _count_objects(node.path) for n, node in scene.nodes.items()}

        def copy_check(state: dict[str, dict[str, int]] = state) -> str | None:
            before = state["before"]
            short = {n: _count_objects(node.path) - before[n] for n, node in scene.nodes.items()}
            bad = {n: c for n, c in short.items() if c != count}
            return f"objects stored per node {bad}, expected {count}" if bad else None

        cases.append(
            Case(
                scenario=f"copy --to cluster {count} x {sizes.small_kb} KiB, HTTP",
                impl=impl,
                commands=(_annex(client, "copy", "-q", "--to", f"{gwhttp}-{CLUSTER}", "up"),),
                server=gwsrv,
                nbytes=count * (sizes.small_kb << 10),
                nfiles=count,
                prepare=make_files,
                check=copy_check,
            )
        )
    return cases


def conc_cases(scene: Scene) -> list[Case]:
    """N clients each get a different file at once: direct from node1 and via the gateway."""
    sizes = scene.sizes
    clients = scene.clients[1:]
    names = [f"conc/f{k}.bin" for k in range(1, len(clients) + 1)]
    size = sizes.conc_mb << 20

    def drop() -> None:
        for client, name in zip(clients, names, strict=True):
            _quiet(["git", "annex", "drop", "-q", "--force", name], client.path)

    def check() -> str | None:
        for client, name in zip(clients, names, strict=True):
            problem = _present(client.path / name, size)()
            if problem:
                return f"{client.path.name}: {problem}"
        return None

    cases = []
    for impl, (n1http, gwhttp, _, _, n1srv, gwsrv) in IMPLS.items():
        for label, remote, server in (
            ("direct from node", n1http, n1srv),
            ("via gateway", f"{gwhttp}-node1", gwsrv),
        ):
            cases.append(
                Case(
                    scenario=f"{len(clients)} clients x {sizes.conc_mb} MiB at once, HTTP, {label}",
                    impl=impl,
                    commands=tuple(
                        _annex(c.path, "get", "-q", "--from", remote, n)
                        for c, n in zip(clients, names, strict=True)
                    ),
                    server=server,
                    nbytes=size * len(clients),
                    prepare=drop,
                    check=check,
                )
            )
    return cases


def sizes_cases(scene: Scene) -> list[Case]:
    """Gateway memory from 1 MiB to the huge object: cluster uploads, a curl from a node.

    Over HTTP only. The files are made in the client when the scenario starts (not in
    the scene: 4 GiB is only written when asked for). Each download follows its own
    gateway's upload, so the node holds the key by then.
    """
    client = scene.client.path
    huge_mb = scene.sizes.huge_mb
    files = {"sizes/one.bin": 1, f"sizes/huge{huge_mb}.bin": huge_mb}
    for name, mb in files.items():
        if not (client / name).exists():
            write_random(client / name, mb << 20)
    _quiet(["git", "annex", "add", "-q", "sizes"], client)
    _quiet(["git", "commit", "-q", "-m", "object sizes", "sizes"], client)
    keys = {name: scene.client.annex("lookupkey", name).stdout.strip() for name in files}
    huge = f"sizes/huge{huge_mb}.bin"
    node = scene.nodes["c1"]
    cases = []
    for impl, (_, gwhttp, _, _, _, gwsrv) in IMPLS.items():
        remote = f"{gwhttp}-{CLUSTER}"
        for name, mb in files.items():
            cases.append(
                Case(
                    scenario=f"object size: copy --to 3-node cluster {mb} MiB, HTTP",
                    impl=impl,
                    commands=(_annex(client, "copy", "-q", "--to", remote, name),),
                    server=gwsrv,
                    nbytes=mb << 20,
                    prepare=_clear_cluster(scene, remote, name, keys[name]),
                    check=_landed(scene, keys[name]),
                )
            )
        scenario = f"object size: curl key {huge_mb} MiB from a node, HTTP, via gateway"
        cases.append(_curl_key(scene, scenario, impl, gwsrv, node.uuid, keys[huge], huge_mb << 20))
    return cases
