"""``cluster.log`` and what is derived from it: cluster membership (branch.md 5, 6).

Family 4.3, field = cluster UUID, value = space-separated node UUIDs, sorted, possibly
empty (git-annex ``Logs/Cluster/Basic.hs``). A line whose field is not a cluster UUID
(``ac`` prefix, ``8`` at index 14, branch.md 7.5) is ignored. A cluster's node set is
the newest line's, never a union of lines.

Derived, never stored: nodes that are dead in ``trust.log`` are removed, and a location
result gains the cluster's UUID when one of its nodes is present. Cluster UUIDs are
never counted as copies (`count_copies`). Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from annexproxy.branch.logs.keyed import KeyedLog
from annexproxy.branch.logs.timestamps import Timestamp
from annexproxy.errors import LogFormatError
from annexproxy.uuids import is_cluster_uuid

PATH = "cluster.log"


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def decode_nodes(value: bytes) -> frozenset[str]:
    """The node UUIDs of one value."""
    return frozenset(_text(word) for word in value.split(b" ") if word)


def encode_nodes(nodes: Iterable[str]) -> bytes:
    """The stored value: node UUIDs sorted, single spaces.

    Raises:
        LogFormatError: a node UUID is empty or holds whitespace.
    """
    names = sorted(set(nodes))
    for node in names:
        if not node or any(c.isspace() for c in node):
            raise LogFormatError(f"not a node UUID: {node!r}")
    return " ".join(names).encode("utf-8", "surrogateescape")


def parse_cluster_log(content: bytes) -> dict[str, frozenset[str]]:
    """Recorded node set per cluster UUID (other fields ignored). Never raises."""
    values = KeyedLog.parse(content).values()
    return {
        _text(cluster): decode_nodes(value)
        for cluster, value in values.items()
        if is_cluster_uuid(_text(cluster))
    }


def set_cluster_nodes(content: bytes, cluster: str, nodes: Iterable[str], now: Timestamp) -> bytes:
    """New ``cluster.log`` content after recording ``cluster``'s node set.

    Raises:
        LogFormatError: ``cluster`` is not a cluster UUID, or a bad node UUID.
    """
    if not is_cluster_uuid(cluster):
        raise LogFormatError(f"{cluster!r} is not a cluster UUID (ac......-....-8...)")
    field = cluster.encode("utf-8", "surrogateescape")
    return KeyedLog.parse(content).with_value(field, encode_nodes(nodes), now).format()


def effective_clusters(
    recorded: Mapping[str, frozenset[str]], dead: Iterable[str]
) -> dict[str, frozenset[str]]:
    """Node sets as git-annex uses them: dead nodes removed (branch.md 5, trust.log)."""
    gone = frozenset(dead)
    return {cluster: nodes - gone for cluster, nodes in sorted(recorded.items())}


def with_cluster_uuids(present: Iterable[str], clusters: Mapping[str, frozenset[str]]) -> list[str]:
    """Add the UUID of every cluster one of whose nodes is present (branch.md 6).

    Cluster UUIDs found in ``present`` itself are dropped: git-annex never logs them and
    derives them only from nodes.

    Returns:
        The sorted UUIDs.
    """
    found = {uuid for uuid in present if not is_cluster_uuid(uuid)}
    for cluster, nodes in clusters.items():
        if found & nodes:
            found.add(cluster)
    return sorted(found)


def count_copies(uuids: Iterable[str]) -> int:
    """Number of copies among ``uuids``: cluster UUIDs never count (branch.md 6)."""
    return sum(1 for uuid in set(uuids) if not is_cluster_uuid(uuid))
