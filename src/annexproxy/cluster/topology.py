"""What a gateway proxies, worked out from its git config and its git-annex branch.

A UUID can be served by a gateway only when its branch and its git config agree
(clusters.md 2): the UUID is in the gateway's own ``proxy.log`` line, and the remote of
that name has ``annex-proxy=true`` or is a node of a cluster configured here
(``annex.cluster.NAME``), or the UUID is one of those clusters. A cluster's nodes are its
``cluster.log`` nodes (dead ones removed) that the gateway can reach.

Several gateways can serve one cluster (clusters.md 7): a remote with
``annex-cluster-gateway=CLUSTERUUID`` is another gateway of that cluster. It is reached
for the cluster UUID itself (a *relay*: uploads and removals are forwarded to it, and it
forwards to its own nodes), and the repositories it proxies are reached through it under
the names ``<remote>-<name>`` that ``updatecluster`` writes to ``proxy.log``. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from annexproxy.branch.logs.snapshot import BranchConfig
from annexproxy.special.remote import SpecialRemote, find_special_remote
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
    via: RepoUUID | None = None
    """The other gateway this repository is reached through (None: reached directly)."""
    special: SpecialRemote | None = None
    """The special remote's configuration, when the node is one (no url then)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Topology:
    """The repositories a gateway serves besides its own."""

    own: RepoUUID
    nodes: Mapping[RepoUUID, NodeAddress] = field(default_factory=dict)
    clusters: Mapping[RepoUUID, frozenset[RepoUUID]] = field(default_factory=dict)
    relays: Mapping[RepoUUID, tuple[NodeAddress, ...]] = field(default_factory=dict)
    """Per cluster, the other gateways of it (addresses of the cluster UUID via each)."""
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
    gateway_remotes = _gateway_remotes(entries, my_clusters)
    nodes: dict[RepoUUID, NodeAddress] = {}
    listed_clusters: set[str] = set()
    for entry in config.proxies.get(own, frozenset()):
        if is_cluster_uuid(entry.uuid):
            if entry.uuid in my_clusters:
                listed_clusters.add(entry.uuid)
            continue
        name = entry.name
        if entries.get(f"remote.{name}.annex-uuid") != entry.uuid:
            relayed = _relayed(entries, config, gateway_remotes, entry.uuid, name)
            if relayed is not None:
                nodes[relayed.uuid] = relayed
            continue  # else renamed or unknown remote: run updateproxy again
        node_of = set(entries.get(f"remote.{name}.annex-cluster-node", "").split())
        if not (_true(entries.get(f"remote.{name}.annex-proxy")) or node_of & set(cluster_names)):
            continue
        address = _address(entries, name, entry.uuid)
        special = find_special_remote(entries, config.remotes, name)
        if special is not None and not special.proxiable:
            continue  # exporttree=yes without annexobjects=yes (clusters.md 8)
        nodes[RepoUUID(entry.uuid)] = replace(address, special=special) if special else address
    clusters = {
        RepoUUID(cu): frozenset(RepoUUID(n) for n in members if n in nodes)
        for cu, members in config.clusters.items()
        if cu in listed_clusters
    }
    for cu in listed_clusters:
        clusters.setdefault(RepoUUID(cu), frozenset())
    relays = {
        RepoUUID(cu): tuple(
            _address(entries, name, cu, via=RepoUUID(entries[f"remote.{name}.annex-uuid"]))
            for name, of in sorted(gateway_remotes.items())
            if cu in of and entries[f"remote.{name}.annex-uuid"] != own
        )
        for cu in clusters
    }
    return Topology(
        own=own,
        nodes=nodes,
        clusters=clusters,
        relays={cu: addrs for cu, addrs in relays.items() if addrs},
        descriptions=config.descriptions,
    )


def _address(
    entries: Mapping[str, str], name: str, uuid: str, *, via: RepoUUID | None = None
) -> NodeAddress:
    """How remote ``name`` is reached, for the repository ``uuid`` behind it."""
    url = entries.get(f"remote.{name}.url", "")
    annex_url = entries.get(f"remote.{name}.annexurl") or None
    return NodeAddress(
        uuid=RepoUUID(uuid),
        name=name,
        url=url,
        annex_url=annex_url,
        cost=_cost(entries, name, url, annex_url),
        shell=entries.get(f"remote.{name}.annex-shell") or "git-annex-shell",
        ssh_options=tuple(entries.get(f"remote.{name}.annex-ssh-options", "").split()),
        via=via,
    )


def _gateway_remotes(entries: Mapping[str, str], my_clusters: set[str]) -> dict[str, set[str]]:
    """Remotes that are other gateways of our clusters: name -> the clusters they serve."""
    found: dict[str, set[str]] = {}
    for key, value in entries.items():
        if not (key.startswith("remote.") and key.endswith(".annex-cluster-gateway")):
            continue
        name = key[len("remote.") : -len(".annex-cluster-gateway")]
        of = set(value.split()) & my_clusters
        if of and entries.get(f"remote.{name}.annex-uuid"):
            found[name] = of
    return found


def _relayed(
    entries: Mapping[str, str],
    config: BranchConfig,
    gateway_remotes: Mapping[str, set[str]],
    uuid: str,
    name: str,
) -> NodeAddress | None:
    """The address of ``<gateway remote>-<name>``, a repository another gateway proxies."""
    for remote in gateway_remotes:
        if not name.startswith(remote + "-"):
            continue
        gateway = entries[f"remote.{remote}.annex-uuid"]
        if any(e.uuid == uuid for e in config.proxies.get(gateway, frozenset())):
            return replace(_address(entries, remote, uuid, via=RepoUUID(gateway)), name=name)
    return None
