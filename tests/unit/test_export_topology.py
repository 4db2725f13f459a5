"""Which export remotes a gateway proxies, and which tracking branches it exports.

git-annex's updateproxy refuses an ``exporttree=yes`` remote without ``annexobjects=yes``
(it could not store keys outside the export); the gateway does not serve one even if
its proxy.log lists it. A proxied export remote with ``annex-tracking-branch`` is
exported when that branch (or its ``synced/`` twin) is pushed.
"""

from __future__ import annotations

from annexproxy.branch.logs.proxy import ProxyEntry
from annexproxy.branch.logs.snapshot import BranchConfig
from annexproxy.cluster.topology import build_topology
from annexproxy.server.export_hook import parse_hook_input, tracked_exports

GATEWAY = "aa6440a6-0cfc-4c73-8f0a-5927cb981038"
EXPORT = "1c4306b6-ab79-4729-8f33-ef052968cd61"
NOOBJ = "16e4c38d-ff44-4d84-8615-69ede6414762"
PLAIN = "2a29ec74-6d41-4d05-ad0f-6dc9296eaa39"


def _setup() -> tuple[dict[str, str], BranchConfig]:
    entries = {"annex.uuid": GATEWAY}
    remotes: dict[str, dict[str, str]] = {}
    for name, uuid, extra in (
        ("exportsr", EXPORT, {"exporttree": "yes", "annexobjects": "yes"}),
        ("noobj", NOOBJ, {"exporttree": "yes"}),
        ("dirsr", PLAIN, {}),
    ):
        entries[f"remote.{name}.annex-uuid"] = uuid
        entries[f"remote.{name}.annex-proxy"] = "true"
        entries[f"remote.{name}.annex-tracking-branch"] = "refs/heads/main:sub/dir"
        remotes[uuid] = {"type": "directory", "name": name, **extra}
    proxies = {
        GATEWAY: frozenset(
            ProxyEntry(u, n) for u, n in ((EXPORT, "exportsr"), (NOOBJ, "noobj"), (PLAIN, "dirsr"))
        )
    }
    return entries, BranchConfig(remotes=remotes, proxies=proxies)


def test_export_without_annexobjects_is_not_proxied() -> None:
    entries, config = _setup()
    topology = build_topology(entries, config)
    assert set(topology.nodes) == {EXPORT, PLAIN}


def test_tracked_exports() -> None:
    entries, config = _setup()
    (tracked,) = tracked_exports(entries, build_topology(entries, config))
    assert tracked.remote.name == "exportsr"
    assert (tracked.branch, tracked.subdir) == ("main", "sub/dir")
    assert tracked.refs == ("refs/heads/main", "refs/heads/synced/main")


def test_hook_input() -> None:
    lines = b"0000 1111 refs/heads/main\nbad line\n2222 3333 refs/heads/synced/main\n"
    assert parse_hook_input(lines) == {"refs/heads/main", "refs/heads/synced/main"}
