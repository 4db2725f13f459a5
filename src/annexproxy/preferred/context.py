"""What an evaluation may know: repositories, logs, sizes and options (injected state).

`Repository` is one row of the git-annex branch's per-repository logs (uuid.log, trust.log,
group.log, preferred-content.log, required-content.log, maxsize.log, remote.log's
preferreddir). `MatchContext` bundles every repository with the global settings and
with callables for per-key facts (location log, local presence, metadata, URLs, unused
keys, gitattributes numcopies) and a `SizeSource` for live sizes. A branch reader builds
it once per branch state; `annexproxy.preferred.evaluate.PreferredContent` derives its
indexes and caches from it. Nothing here reads a clock, a file or randomness.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from annexproxy.keys import Key
from annexproxy.preferred.terms import TrustLevel
from annexproxy.space.maxsize import DEFAULT_FULLY_BALANCED_THRESHOLD
from annexproxy.space.sizes import SizeSnapshot, SizeSource
from annexproxy.uuids import RepoUUID


@dataclass(frozen=True, slots=True, kw_only=True)
class Repository:
    """One repository as the git-annex branch describes it.

    ``wanted``/``required`` are the raw expressions (None: no log line; ``""`` is a line
    with an empty expression, which also means "not configured"). ``preferreddir`` is the
    remote.log field (None: git-annex's default ``public``).
    """

    uuid: RepoUUID
    description: str = ""
    trust: TrustLevel = TrustLevel.SEMITRUSTED
    groups: frozenset[str] = frozenset()
    wanted: str | None = None
    required: str | None = None
    maxsize: int | None = None
    preferreddir: str | None = None


def _no_attribute(path: str) -> int | None:
    del path
    return None


def _no_metadata(key: Key) -> Mapping[str, Collection[str]]:
    del key
    return {}


def _no_strings(key: Key) -> Collection[str]:
    del key
    return ()


def _no_keys(key: Key) -> Collection[Key]:
    del key
    return ()


def _never(key: Key) -> bool:
    del key
    return False


@dataclass(frozen=True, slots=True, kw_only=True)
class MatchContext:
    """Everything preferred-content evaluation reads, injected by the caller.

    Attributes:
        here: the repository the command runs in.
        repositories: every known repository (uuid.log, group.log, trust.log, ...).
            UUIDs that are not listed are semitrusted, in no group, unconfigured.
        locations: the location log of a key: UUIDs marked present (journal included),
            *without* cluster UUIDs; dead repositories may be included (they are filtered
            here).
        group_wanted: groupwanted expressions by group (empty ones are ignored).
        numcopies: the global numcopies (numcopies.log), None when unset (1).
        mincopies: the global mincopies (carried for callers; no term uses it).
        numcopies_attr: the ``annex.numcopies`` gitattribute of a path, None when unset.
        clusters: cluster UUID -> its node UUIDs (a node's copy also counts as present
            in its clusters, like git-annex's loggedLocations).
        here_has: whether ``here`` actually has the content (object store); None means
            "use the location log".
        metadata: the current metadata of a key (field -> values).
        urls: the URLs recorded for a key (web log, downloader prefixes included).
        equivalent_keys: recorded equivalent keys (for VURL and ``securehash``).
        unused: whether a key was found by the last ``git annex unused``.
        sizes: live repository sizes (maxsize.md section 2).
        fully_balanced_threshold: ``annex.fullybalancedthreshhold`` in percent.
        rebalance: the ``--rebalance`` option.
    """

    here: RepoUUID
    repositories: Mapping[RepoUUID, Repository]
    locations: Callable[[Key], Collection[RepoUUID]]
    group_wanted: Mapping[str, str] = field(default_factory=dict)
    numcopies: int | None = None
    mincopies: int | None = None
    numcopies_attr: Callable[[str], int | None] = _no_attribute
    clusters: Mapping[RepoUUID, frozenset[RepoUUID]] = field(default_factory=dict)
    here_has: Callable[[Key], bool] | None = None
    metadata: Callable[[Key], Mapping[str, Collection[str]]] = _no_metadata
    urls: Callable[[Key], Collection[str]] = _no_strings
    equivalent_keys: Callable[[Key], Collection[Key]] = _no_keys
    unused: Callable[[Key], bool] = _never
    sizes: SizeSource = field(default_factory=SizeSnapshot)
    fully_balanced_threshold: float = DEFAULT_FULLY_BALANCED_THRESHOLD
    rebalance: bool = False
