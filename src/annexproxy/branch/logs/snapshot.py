"""Everything the gateway needs from the configuration logs, read at once (branch.md 5, 6).

`BranchConfig` is a frozen snapshot of the resolved values of every configuration log
(descriptions, special remotes, trust, groups, preferred/required content, numcopies,
mincopies, config, maxsize, proxies, clusters), built from a function that returns a
branch file's content as the reader sees it (branch + journal + siblings, see
``branch/view.py``). It also answers the derived questions of branch.md 6: which nodes
a cluster has once dead nodes are removed, and which cluster UUIDs a location result
gains. Pure: the reader function is the only way in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from annexproxy.branch.logs import (
    cluster,
    configlog,
    copies,
    descriptions,
    groups,
    maxsize,
    proxy,
    remoteconfig,
    trust,
    wanted,
)
from annexproxy.branch.logs.proxy import ProxyEntry
from annexproxy.branch.logs.trust import TrustLevel

FileReader = Callable[[str], bytes | None]

#: Every configuration log `BranchConfig.read` looks at.
CONFIG_PATHS = (
    descriptions.PATH,
    remoteconfig.PATH,
    trust.PATH,
    groups.PATH,
    wanted.PREFERRED_PATH,
    wanted.REQUIRED_PATH,
    wanted.GROUP_PREFERRED_PATH,
    copies.NUMCOPIES_PATH,
    copies.MINCOPIES_PATH,
    configlog.PATH,
    maxsize.PATH,
    proxy.PATH,
    cluster.PATH,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class BranchConfig:
    """Resolved configuration logs of a git-annex branch."""

    descriptions: Mapping[str, str] = field(default_factory=dict)
    remotes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    trust: Mapping[str, TrustLevel] = field(default_factory=dict)
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)
    preferred: Mapping[str, str] = field(default_factory=dict)
    required: Mapping[str, str] = field(default_factory=dict)
    group_preferred: Mapping[str, str] = field(default_factory=dict)
    numcopies: int | None = None
    mincopies: int | None = None
    config: Mapping[str, str] = field(default_factory=dict)
    maxsize: Mapping[str, int] = field(default_factory=dict)
    proxies: Mapping[str, frozenset[ProxyEntry]] = field(default_factory=dict)
    recorded_clusters: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def read(cls, read_file: FileReader) -> BranchConfig:
        """Parse every configuration log through ``read_file``.

        Args:
            read_file: returns a branch file's content, or None when it is absent. Its
                errors propagate.
        """
        return cls.from_contents(tuple(read_file(path) for path in CONFIG_PATHS))

    @classmethod
    def from_contents(cls, contents: Sequence[bytes | None]) -> BranchConfig:
        """Parse the configuration logs given in `CONFIG_PATHS` order (None: absent)."""
        files = {path: got or b"" for path, got in zip(CONFIG_PATHS, contents, strict=True)}
        return cls(
            descriptions=descriptions.parse_descriptions(files[descriptions.PATH]),
            remotes=remoteconfig.parse_remote_log(files[remoteconfig.PATH]),
            trust=trust.parse_trust_log(files[trust.PATH]),
            groups=groups.parse_group_log(files[groups.PATH]),
            preferred=wanted.parse_expressions(files[wanted.PREFERRED_PATH]),
            required=wanted.parse_expressions(files[wanted.REQUIRED_PATH]),
            group_preferred=wanted.parse_group_expressions(files[wanted.GROUP_PREFERRED_PATH]),
            numcopies=copies.parse_copies(files[copies.NUMCOPIES_PATH]),
            mincopies=copies.parse_copies(files[copies.MINCOPIES_PATH]),
            config=configlog.parse_config_log(files[configlog.PATH]),
            maxsize=maxsize.parse_maxsize_log(files[maxsize.PATH]),
            proxies=proxy.parse_proxy_log(files[proxy.PATH]),
            recorded_clusters=cluster.parse_cluster_log(files[cluster.PATH]),
        )

    def trust_of(self, uuid: str) -> TrustLevel:
        """Trust level of ``uuid``; semitrusted when it has no line."""
        return self.trust.get(uuid, TrustLevel.SEMITRUSTED)

    @property
    def dead(self) -> frozenset[str]:
        """UUIDs marked dead."""
        return frozenset(u for u, level in self.trust.items() if level is TrustLevel.DEAD)

    @property
    def clusters(self) -> dict[str, frozenset[str]]:
        """Node set per cluster UUID, dead nodes removed (branch.md 5, trust.log)."""
        return cluster.effective_clusters(self.recorded_clusters, self.dead)

    def with_clusters(self, present: Iterable[str]) -> list[str]:
        """Present UUIDs plus the clusters they make present (branch.md 6), sorted."""
        return cluster.with_cluster_uuids(present, self.clusters)

    def gateways_of(self, cluster_uuid: str) -> list[str]:
        """Proxies whose ``proxy.log`` line lists ``cluster_uuid``, sorted."""
        return sorted(
            gateway
            for gateway, entries in self.proxies.items()
            if any(entry.uuid == cluster_uuid for entry in entries)
        )

    def cluster_name(self, cluster_uuid: str) -> str | None:
        """A cluster's name: as a proxy lists it, else from its ``cluster NAME`` description."""
        for gateway in self.gateways_of(cluster_uuid):
            for entry in sorted(self.proxies[gateway]):
                if entry.uuid == cluster_uuid:
                    return entry.name
        description = self.descriptions.get(cluster_uuid, "")
        return description.removeprefix("cluster ") or None

    def known_uuids(self) -> list[str]:
        """Every repository UUID the logs mention with some setting, sorted."""
        found: set[str] = set(self.descriptions)
        for table in (self.trust, self.groups, self.preferred, self.required, self.maxsize):
            found.update(table)
        found.update(self.recorded_clusters)
        return sorted(found)
