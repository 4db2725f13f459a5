"""What a gateway proxies, worked out from its git config and its git-annex branch.

A UUID can be served by a gateway only when its branch and its git config agree
(clusters.md 2): the UUID is in the gateway's own ``proxy.log`` line, and the remote of
that name has ``annex-proxy=true`` or is a node of a cluster configured here
(``annex.cluster.NAME``), or the UUID is one of those clusters. A cluster's nodes are its
``cluster.log`` nodes (dead ones removed) that the gateway can reach. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from annexproxy.branch.logs.snapshot import BranchConfig
from annexproxy.uuids import RepoUUID, is_cluster_uuid

DEFAULT_COST = 100.0
REMOTE_COST = 200.0


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeAddress:
    """How the gateway reaches one proxied repository."""

    uuid: RepoUUID
    name: str  # the gateway's remote name
    url: str
    annex_url: str | None = None
    cost: float = DEFAULT_COST
    shell: str = "git-annex-shell"  # remote.NAME.annex-shell
    ssh_options: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Topology:
    """The repositories a gateway serves besides its own."""

    own: RepoUUID
    nodes: Mapping[RepoUUID, NodeAddress] = field(default_factory=dict)
    clusters: Mapping[RepoUUID, frozenset[RepoUUID]] = field(default_factory=dict)
    descriptions: Mapping[str, str] = field(default_factory=dict)

    def describe(self, uuid: str) -> str:
        """A repository's description, for messages (its UUID when it has none)."""
        return self.descriptions.get(uuid) or uuid


def is_local_url(url: str) -> bool:
    """A path or file:// URL: the node is a repository on this machine."""
    return url.startswith(("/", "./", "../", "file://", "~")) or url in (".", "..")


def _cost(entries: Mapping[str, str], name: str, url: str, annex_url: str | None) -> float:
    text = entries.get(f"remote.{name}.annex-cost")
    if text:
        try:
            return float(text)
        except ValueError:
            pass
    return DEFAULT_COST if is_local_url(url) and not annex_url else REMOTE_COST


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "yes", "on", "1")


def build_topology(entries: Mapping[str, str], config: BranchConfig) -> Topology:
    """Work out the proxied nodes and clusters (clusters.md 2 and 4).

    Args:
        entries: the gateway's git config (`GitPlumbing.config_entries`).
        config: the gateway's git-annex branch configuration.
    """
    own = RepoUUID(entries.get("annex.uuid", ""))
    cluster_names = {
        name.removeprefix("annex.cluster."): value
        for name, value in entries.items()
        if name.startswith("annex.cluster.") and is_cluster_uuid(value)
    }
    my_clusters = set(cluster_names.values())
    nodes: dict[RepoUUID, NodeAddress] = {}
    listed_clusters: set[str] = set()
    for entry in config.proxies.get(own, frozenset()):
        if is_cluster_uuid(entry.uuid):
            if entry.uuid in my_clusters:
                listed_clusters.add(entry.uuid)
            continue
        name = entry.name
        if entries.get(f"remote.{name}.annex-uuid") != entry.uuid:
            continue  # renamed or unknown remote: run updateproxy again
        node_of = set(entries.get(f"remote.{name}.annex-cluster-node", "").split())
        if not (_true(entries.get(f"remote.{name}.annex-proxy")) or node_of & set(cluster_names)):
            continue
        url = entries.get(f"remote.{name}.url", "")
        annex_url = entries.get(f"remote.{name}.annexurl") or None
        nodes[RepoUUID(entry.uuid)] = NodeAddress(
            uuid=RepoUUID(entry.uuid),
            name=name,
            url=url,
            annex_url=annex_url,
            cost=_cost(entries, name, url, annex_url),
            shell=entries.get(f"remote.{name}.annex-shell") or "git-annex-shell",
            ssh_options=tuple(entries.get(f"remote.{name}.annex-ssh-options", "").split()),
        )
    clusters = {
        RepoUUID(cu): frozenset(RepoUUID(n) for n in members if n in nodes)
        for cu, members in config.clusters.items()
        if cu in listed_clusters
    }
    for cu in listed_clusters:
        clusters.setdefault(RepoUUID(cu), frozenset())
    return Topology(own=own, nodes=nodes, clusters=clusters, descriptions=config.descriptions)
