"""The gateway admin commands, with git-annex's arguments and effects (clusters.md 4).

The commands: updateproxy, initcluster, updatecluster, extendcluster, maxsize, info.

Owns the gateway's view of its own git config (remotes, ``annex.cluster.*``, proxied
remotes derived from other proxies' ``proxy.log`` lines), the sets git-annex computes
for ``proxy.log`` and ``cluster.log``, repository names (remote name, description,
UUID, ``here``), git-annex's size syntax, and the ``info`` report. Every command that
writes first merges unmerged sibling refs (as git-annex updates its branch before it
reads), then changes logs through the journal under its lock, then commits the journal.
Arguments are checked before anything is written. Nothing is printed here: results
carry the lines ``cli/admin.py`` prints.
"""

from __future__ import annotations

import math
import re
import uuid as uuidlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from annexproxy.branch import commit as branch_commit
from annexproxy.branch.git_plumbing import GitPlumbing
from annexproxy.branch.journal import Journal, vector_clock
from annexproxy.branch.logs import cluster, descriptions, maxsize, proxy
from annexproxy.branch.logs.presence import present_infos
from annexproxy.branch.logs.proxy import ProxyEntry, is_legal_remote_name
from annexproxy.branch.logs.snapshot import BranchConfig
from annexproxy.branch.view import BranchView
from annexproxy.errors import ConfigError, RepositoryError
from annexproxy.keys import unkeyfile
from annexproxy.space import units
from annexproxy.uuids import is_cluster_uuid

# --- sizes (git-annex Utility/DataUnits.hs) ---------------------------------------------

_STORAGE = [("B", "byte"), ("kB", "kilobyte"), ("MB", "megabyte"), ("GB", "gigabyte")]
_STORAGE += [("TB", "terabyte"), ("PB", "petabyte"), ("EB", "exabyte"), ("ZB", "zettabyte")]
_STORAGE += [("YB", "yottabyte")]
_MEMORY = [("KiB", "kibibyte"), ("MiB", "mebibyte"), ("GiB", "gibibyte"), ("TiB", "tebibyte")]
_MEMORY += [("PiB", "pebibyte"), ("EiB", "exbibyte"), ("ZiB", "zebibyte"), ("YiB", "yobibyte")]
# storage units first: "M" and "MB" are 10^6, only "MiB" is 2^20 (git-annex dataUnits).
_UNITS = [(a, n, 1000**i) for i, (a, n) in enumerate(_STORAGE)] + [
    (a, n, 1024 ** (i + 1)) for i, (a, n) in enumerate(_MEMORY)
]


def parse_size(text: str) -> int:
    """Parse a size as git-annex does: ``100M``, ``1GB``, ``2TiB``, ``10 megabytes``.

    The one size grammar of `annexproxy.space.units` (git-annex's ``readSize``), which
    also reads sizes in preferred content; here a size that is not one is an error.

    Raises:
        ConfigError: the text is not a size.
    """
    size = units.parse_size(text)
    if size is None or size < 0:
        raise ConfigError(f"bad size {text!r}: expected a number and a unit, like 100M or 2TiB")
    return size


def _round_half_even(value: Fraction) -> int:
    """Haskell's ``round``: halves go to the even neighbour."""
    low = math.floor(value)
    rest = value - low
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and low % 2):
        return low + 1
    return low


def format_size(size: int) -> str:
    """A size the way git-annex shows it roughly: ``310 kB``, ``10 MB``, ``0 B``."""
    for abbrev, _name, multiplier in reversed(_UNITS[: len(_STORAGE)]):
        if size >= multiplier:
            value = Fraction(size, multiplier)
            if value.denominator == 1 or value >= 100:
                return f"{round(value)} {abbrev}"
            return f"{float(value):.1f} {abbrev}".replace(".0 ", " ")
    return f"{size} B"


def _storage_unit(size: int) -> tuple[str, int]:
    for abbrev, _name, multiplier in reversed(_UNITS[: len(_STORAGE)]):
        if size >= multiplier:
            return abbrev, multiplier
    return "B", 1


def precise_size(size: int) -> str:
    """git-annex's ``preciseSize``: ``100.0 MB``, ``1.073741824 GB``, ``999.0 B``."""
    abbrev, multiplier = _storage_unit(size)
    return f"{size / multiplier!r} {abbrev}"


def whole_size(size: int) -> str:
    """git-annex's ``roughSize' 0`` (the maxsize table): ``10 MB``, ``6 B``."""
    abbrev, multiplier = _storage_unit(size)
    return f"{_round_half_even(Fraction(size, multiplier))} {abbrev}"


# --- the gateway's git config -------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Remote:
    """A git remote of the gateway, configured or proxied through another remote."""

    name: str
    uuid: str | None
    proxy: bool = False
    cluster_node: frozenset[str] = frozenset()  # cluster names (annex-cluster-node)
    cluster_gateway: frozenset[str] = frozenset()  # cluster UUIDs (annex-cluster-gateway)
    private: bool = False
    reaches_proxies: bool = False  # ssh or annex+http: its proxy.log line yields remotes
    proxied_by: str | None = None  # the proxying remote's UUID, for proxied remotes


def _add_name(description: str, name: str) -> str:
    """git-annex's ``addName``: a remote name after the description, once."""
    if description == name:
        return f"[{name}]"
    if not description:
        return f"[{name}]"
    return f"{description} [{name}]"


def _percent(size: int, limit: int) -> int:
    """git-annex's ``showPercentage 0``: the percentage rounded half to even."""
    if limit == 0:
        return 0
    return _round_half_even(Fraction(100 * size, limit))


def _words(value: str | None) -> frozenset[str]:
    return frozenset((value or "").split())


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "yes", "on", "1")


def _reaches_proxies(url: str, annex_url: str | None) -> bool:
    """Only ssh and annex+http remotes can proxy for a client (clusters.md 2)."""
    if annex_url:
        return True
    if url.startswith(("ssh://", "git+ssh://", "ssh+git://")):
        return True
    head = url.split("/", 1)[0]
    return "://" not in url and ":" in head and not url.startswith((".", "/"))


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewaySetup:
    """What the gateway's git config says: its UUID, its clusters and its remotes."""

    uuid: str
    clusters: dict[str, str]  # cluster name -> cluster UUID (annex.cluster.NAME)
    remotes: tuple[Remote, ...]  # configured remotes, by name

    @classmethod
    def from_config(cls, entries: dict[str, str]) -> GatewaySetup:
        """Interpret git config entries (as `GitPlumbing.config_entries` returns them).

        Raises:
            RepositoryError: ``annex.uuid`` is not set.
        """
        my_uuid = entries.get("annex.uuid")
        if not my_uuid:
            raise RepositoryError("not a git-annex repository (no annex.uuid): run git annex init")
        clusters = {
            name.removeprefix("annex.cluster."): value
            for name, value in entries.items()
            if name.startswith("annex.cluster.") and is_cluster_uuid(value)
        }
        names = sorted(
            {n[len("remote.") : n.rfind(".")] for n in entries if n.startswith("remote.")} - {""}
        )
        remotes = []
        for name in names:

            def get(key: str, name: str = name) -> str | None:
                return entries.get(f"remote.{name}.{key}")

            remotes.append(
                Remote(
                    name=name,
                    uuid=get("annex-uuid") or None,
                    proxy=_is_true(get("annex-proxy")),
                    cluster_node=_words(get("annex-cluster-node")),
                    cluster_gateway=_words(get("annex-cluster-gateway")),
                    private=_is_true(get("annex-private")),
                    reaches_proxies=_reaches_proxies(get("url") or "", get("annexurl")),
                )
            )
        return cls(uuid=my_uuid, clusters=clusters, remotes=tuple(remotes))

    def proxied_remotes(self, config: BranchConfig) -> list[Remote]:
        """Remotes reached through another proxy, named ``<proxy remote>-<name>``."""
        configured = {r.name for r in self.remotes}
        found = []
        for remote in self.remotes:
            if remote.uuid is None or not remote.reaches_proxies:
                continue
            for entry in sorted(config.proxies.get(remote.uuid, ())):
                name = f"{remote.name}-{entry.name}"
                if name in configured or entry.uuid == self.uuid:
                    continue
                found.append(
                    Remote(name=name, uuid=entry.uuid, proxy=remote.proxy, proxied_by=remote.uuid)
                )
        return found

    def all_remotes(self, config: BranchConfig) -> list[Remote]:
        """Configured remotes, then proxied ones."""
        return [*self.remotes, *self.proxied_remotes(config)]


def proxy_refusal(remote: Remote, config: BranchConfig) -> str | None:
    """Why git-annex would refuse to proxy ``remote``, or None (clusters.md 4)."""
    if remote.uuid is None:
        return f"{remote.name} has no known annex-uuid; run git annex sync first"
    settings = config.remotes.get(remote.uuid, {})
    if settings.get("exporttree") == "yes" and settings.get("annexobjects") != "yes":
        return (
            f"{remote.name} is a special remote configured with exporttree=yes, but without "
            f"annexobjects=yes. Cannot proxy to this remote. Suggest you run: git-annex "
            f"enableremote {remote.name} annexobjects=yes"
        )
    return None


# --- commands -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminResult:
    """What a command did: lines for the user, warnings, and the new branch tip."""

    messages: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    commit: str | None = None


class Gateway:
    """An open gateway repository, for the admin commands."""

    def __init__(self, plumbing: GitPlumbing) -> None:
        """Use an open repository (it stays owned by the caller).

        Raises:
            RepositoryError: it is not an initialised git-annex repository.
        """
        self.plumbing = plumbing
        if not plumbing.annexdir.is_dir() or not plumbing.read_settings().uuid:
            raise RepositoryError(
                f"{plumbing.gitdir} is not a git-annex repository: run git annex init there"
            )
        self.journal = Journal(plumbing.annexdir, plumbing)

    @classmethod
    @contextmanager
    def open(cls, path: Path | str) -> Iterator[Gateway]:
        """Open the gateway repository at (or above) ``path``.

        Raises:
            RepositoryError: no git-annex repository there.
        """
        with GitPlumbing(path) as plumbing:
            yield cls(plumbing)

    def setup(self) -> GatewaySetup:
        """The gateway's git config.

        Raises:
            RepositoryError: the config cannot be read.
        """
        return GatewaySetup.from_config(self.plumbing.config_entries())

    def view(self) -> BranchView:
        """A fresh view of the branch (journal and unmerged siblings included).

        Raises:
            RepositoryError: the refs cannot be read.
        """
        return BranchView(self.plumbing, self.journal)

    def _write(self, path: str, change: Callable[[bytes], bytes]) -> None:
        self.journal.modify(path, change)

    def _commit(self) -> str | None:
        return branch_commit.commit_journal(self.plumbing, self.journal).commit

    # updateproxy ---------------------------------------------------------------------

    def update_proxy(self) -> AdminResult:
        """``git annex updateproxy``: record this gateway's proxy.log line if it changed.

        Raises:
            RepositoryError: the repository cannot be read or written.
        """
        branch_commit.merge_siblings(self.plumbing, self.journal)
        messages, warnings = self._update_proxy(self.setup(), self.view().config())
        return AdminResult(messages=messages, warnings=warnings, commit=self._commit())

    def proxy_set(
        self, setup: GatewaySetup, config: BranchConfig
    ) -> tuple[set[ProxyEntry], list[str]]:
        """The entries ``updateproxy`` records, and the refusal warnings (clusters.md 4)."""
        entries: set[ProxyEntry] = set()
        warnings: list[str] = []
        for remote in setup.remotes:
            in_cluster = any(name in setup.clusters for name in remote.cluster_node)
            if not (remote.proxy or in_cluster):
                continue
            refusal = proxy_refusal(remote, config)
            if refusal is not None or remote.uuid is None:
                warnings.append(refusal or remote.name)
                continue
            entries.add(ProxyEntry(remote.uuid, remote.name))
        entries.update(ProxyEntry(cu, name) for name, cu in setup.clusters.items())
        listed = {e.uuid for e in entries}
        my_nodes: set[str] = set()
        for cu in setup.clusters.values():
            my_nodes.update(config.recorded_clusters.get(cu, ()))
        for remote in setup.proxied_remotes(config):
            if remote.uuid in my_nodes and remote.uuid not in listed:
                entries.add(ProxyEntry(remote.uuid, remote.name))
                listed.add(remote.uuid)
        private = {r.uuid for r in setup.remotes if r.private}
        return {e for e in entries if e.uuid not in private}, warnings

    def _update_proxy(
        self, setup: GatewaySetup, config: BranchConfig
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        wanted, warnings = self.proxy_set(setup, config)
        current = config.proxies.get(setup.uuid, frozenset())
        if wanted == current:
            return ("No proxy changes to record.",), tuple(warnings)
        now = vector_clock()
        self._write(proxy.PATH, lambda content: proxy.set_proxies(content, setup.uuid, wanted, now))
        lines = [f"Started proxying for {e.name}" for e in sorted(wanted - current)]
        lines += [f"Stopped proxying for {e.name}" for e in sorted(current - wanted)]
        return tuple(lines), tuple(warnings)

    # initcluster / updatecluster / extendcluster -----------------------------------------

    def init_cluster(
        self,
        name: str,
        description: str | None = None,
        *,
        new_uuid: Callable[[], str] = lambda: str(uuidlib.uuid4()),
    ) -> AdminResult:
        """``git annex initcluster NAME [DESC]``: config and uuid.log; not cluster.log.

        Raises:
            ConfigError: ``name`` is not a legal git remote name.
            RepositoryError: the repository cannot be read or written.
        """
        if not is_legal_remote_name(name):
            raise ConfigError(f"That cluster name is not a valid git remote name: {name!r}")
        setup = self.setup()
        cluster_uuid = setup.clusters.get(name)
        if cluster_uuid is None:
            raw = new_uuid()
            cluster_uuid = "ac" + raw[2:14] + "8" + raw[15:]
        branch_commit.merge_siblings(self.plumbing, self.journal)
        if name not in setup.clusters:
            self.plumbing.set_config(f"annex.cluster.{name}", cluster_uuid)
        text = description if description is not None else f"cluster {name}"
        now = vector_clock()
        self._write(
            descriptions.PATH,
            lambda content: descriptions.set_description(content, cluster_uuid, text, now),
        )
        return AdminResult(messages=(f"initcluster {name} ok",), commit=self._commit())

    def update_cluster(self) -> AdminResult:
        """``git annex updatecluster``: cluster.log per cluster if changed, then updateproxy.

        Raises:
            RepositoryError: the repository cannot be read or written.
        """
        branch_commit.merge_siblings(self.plumbing, self.journal)
        messages = self._update_clusters()
        more, warnings = self._update_proxy(self.setup(), self.view().config())
        return AdminResult(messages=(*messages, *more), warnings=warnings, commit=self._commit())

    def _update_clusters(self) -> list[str]:
        setup, config = self.setup(), self.view().config()
        remotes = setup.all_remotes(config)
        proxied_uuids = {r.uuid for r in remotes if r.proxied_by is not None}
        name_of = {r.uuid: r.name for r in reversed(remotes) if r.uuid}
        messages = []
        for name, cu in sorted(setup.clusters.items()):
            nodes = {
                r.uuid
                for r in setup.remotes
                if name in r.cluster_node and r.uuid and proxy_refusal(r, config) is None
            }
            recorded = config.recorded_clusters.get(cu, frozenset())
            nodes.update(u for u in recorded if u in proxied_uuids)
            if nodes == recorded:
                messages.append(f"No cluster node changes for cluster: {name}")
                continue
            self._write(cluster.PATH, _cluster_change(cu, nodes))
            for node in sorted(nodes - recorded):
                messages.append(f"Added node {name_of.get(node, node)} to cluster: {name}")
            for node in sorted(recorded - nodes):
                label = name_of.get(node) or config.descriptions.get(node) or node
                messages.append(f"Removed node {label} from cluster: {name}")
        return messages

    def extend_cluster(self, gateway_remote: str, name: str) -> AdminResult:
        """``git annex extendcluster REMOTE NAME``: become another gateway of a cluster.

        Raises:
            ConfigError: no such remote, or no cluster ``REMOTE-NAME`` proxied by it.
            RepositoryError: the repository cannot be read or written.
        """
        setup, config = self.setup(), self.view().config()
        remote = next((r for r in setup.remotes if r.name == gateway_remote), None)
        if remote is None:
            raise ConfigError(f"there is no git remote named {gateway_remote!r}")
        wanted = f"{gateway_remote}-{name}"
        found = next(
            (
                r
                for r in setup.proxied_remotes(config)
                if r.name == wanted and r.uuid and is_cluster_uuid(r.uuid)
            ),
            None,
        )
        if found is None or found.uuid is None:
            raise ConfigError(
                f"Expected to find a cluster remote named {wanted} that is proxied by "
                f"{gateway_remote}; perhaps you need to run git fetch {gateway_remote} first"
            )
        if name not in setup.clusters:
            self.plumbing.set_config(f"annex.cluster.{name}", found.uuid)
        self.plumbing.set_config(f"remote.{gateway_remote}.annex-cluster-gateway", found.uuid)
        result = self.update_cluster()
        return AdminResult(
            messages=(f"extendcluster {name} ok", *result.messages),
            warnings=result.warnings,
            commit=result.commit,
        )

    # maxsize ------------------------------------------------------------------------------

    def find_repository(self, name: str, config: BranchConfig | None = None) -> str:
        """A repository UUID from ``here``, a remote name, a UUID or a description.

        Raises:
            ConfigError: nothing matches, or a description matches several UUIDs.
        """
        setup = self.setup()
        config = config or self.view().config()
        if name in ("here", "."):
            return setup.uuid
        for remote in setup.all_remotes(config):
            if remote.name == name and remote.uuid:
                return remote.uuid
        if name in config.known_uuids() or name == setup.uuid:
            return name
        matches = [u for u, d in config.descriptions.items() if d == name]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise ConfigError(f"{name!r} describes several repositories; give a UUID")
        raise ConfigError(
            f"there is no repository named {name!r} (give a remote name, a UUID or a description)"
        )

    def maxsize(self, repository: str, size: str | None = None) -> AdminResult:
        """``git annex maxsize REPO [SIZE]``: show or set a repository's maximum size.

        Raises:
            ConfigError: unknown repository or bad size (nothing is written).
            RepositoryError: the repository cannot be read or written.
        """
        config = self.view().config()
        target = self.find_repository(repository, config)
        if size is None:
            current = config.maxsize.get(target)
            return AdminResult(messages=("" if current is None else precise_size(current),))
        value = parse_size(size)
        branch_commit.merge_siblings(self.plumbing, self.journal)
        now = vector_clock()
        self._write(maxsize.PATH, lambda content: maxsize.set_maxsize(content, target, value, now))
        return AdminResult(messages=(f"maxsize {repository} ok",), commit=self._commit())

    def maxsize_overview(self, *, in_bytes: bool = False) -> AdminResult:
        """``git annex maxsize`` without arguments: sizes, maximum sizes and fill.

        Rows as git-annex orders them: by maximum size, then size, largest first (equal
        rows by UUID, descending); dead repositories left out.

        Raises:
            RepositoryError: the branch cannot be read.
        """
        view = self.view()
        config = view.config()
        sizes = self.repository_sizes(view)
        for uuid in (*config.descriptions, *config.maxsize):  # known, even if empty
            sizes.setdefault(uuid, 0)
        rows = []
        for uuid, size in sizes.items():
            if config.trust_of(uuid).value == "dead":
                continue
            rows.append((uuid, size, config.maxsize.get(uuid)))
        rows.sort(key=lambda r: r[0], reverse=True)
        rows.sort(key=lambda r: (r[2] is not None, r[2] or 0, r[1]), reverse=True)

        def shown(value: int | None) -> str:
            if value is None:
                return ""
            return str(value) if in_bytes else whole_size(value)

        lines = [f"{'size':>7} {'maxsize':>7} {'%full':>6}  repository"]
        names = self._names(config)
        for uuid, size, limit in rows:
            full = ""
            if limit is not None:
                full = ">100%" if size > limit else f"{_percent(size, limit)}%"
            lines.append(f"{shown(size):>7} {shown(limit):>7} {full:>6}  {names.get(uuid, uuid)}")
        return AdminResult(messages=tuple(lines))

    def _names(self, config: BranchConfig) -> dict[str, str]:
        """``UUID -- description [remote]`` as git-annex prints repositories."""
        setup = self.setup()
        descriptions = dict(config.descriptions)
        remote_names: dict[str, list[str]] = {}
        for remote in setup.remotes:
            if remote.uuid:
                remote_names.setdefault(remote.uuid, []).append(remote.name)
        remote_names.setdefault(setup.uuid, []).append("here")
        shown = {}
        for uuid in set(descriptions) | set(remote_names):
            text = descriptions.get(uuid, "")
            for name in remote_names.get(uuid, []):
                text = _add_name(text, name)
            shown[uuid] = f"{uuid} -- {text}" if text else uuid
        return shown

    # info ---------------------------------------------------------------------------------

    def repository_sizes(self, view: BranchView) -> dict[str, int]:
        """Bytes per repository from location logs (branch.md 6); clusters not sized.

        Reads every location log once, holding only the running totals.

        Raises:
            RepositoryError: git or the journal cannot be read.
        """
        totals: dict[str, int] = {}
        for path in view.location_log_paths():
            content = view.read(path)
            if content is None:
                continue
            size = _key_size(path)
            for info in present_infos(content):
                uuid = info.decode("utf-8", "surrogateescape")
                totals[uuid] = totals.get(uuid, 0) + size
        return totals

    def info(self) -> InfoReport:
        """Everything ``annexproxy info`` shows (read only; nothing is merged or written).

        Raises:
            RepositoryError: git or the journal cannot be read.
        """
        view = self.view()
        config = view.config()
        sizes = self.repository_sizes(view)
        repos = []
        for uuid in config.known_uuids():
            repos.append(
                RepositoryInfo(
                    uuid=uuid,
                    description=config.descriptions.get(uuid, ""),
                    trust=config.trust_of(uuid).value,
                    groups=tuple(sorted(config.groups.get(uuid, ()))),
                    wanted=config.preferred.get(uuid),
                    required=config.required.get(uuid),
                    maxsize=config.maxsize.get(uuid),
                    size=None if is_cluster_uuid(uuid) else sizes.get(uuid, 0),
                )
            )
        clusters = tuple(
            ClusterInfo(
                uuid=cu,
                name=config.cluster_name(cu),
                nodes=tuple(sorted(nodes)),
                gateways=tuple(config.gateways_of(cu)),
            )
            for cu, nodes in config.clusters.items()
        )
        proxies = tuple(
            ProxyInfo(gateway=gateway, remotes=tuple(sorted(entries)))
            for gateway, entries in sorted(config.proxies.items())
        )
        return InfoReport(
            here=self.setup().uuid,
            repositories=tuple(repos),
            clusters=clusters,
            proxies=proxies,
            numcopies=config.numcopies,
            mincopies=config.mincopies,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RepositoryInfo:
    """One repository in the ``info`` report."""

    uuid: str
    description: str
    trust: str
    groups: tuple[str, ...]
    wanted: str | None
    required: str | None
    maxsize: int | None
    size: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterInfo:
    """One cluster in the ``info`` report."""

    uuid: str
    name: str | None
    nodes: tuple[str, ...]
    gateways: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyInfo:
    """One proxy's ``proxy.log`` entries in the ``info`` report."""

    gateway: str
    remotes: tuple[ProxyEntry, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class InfoReport:
    """The ``annexproxy info`` report."""

    here: str
    repositories: tuple[RepositoryInfo, ...]
    clusters: tuple[ClusterInfo, ...]
    proxies: tuple[ProxyInfo, ...]
    numcopies: int | None
    mincopies: int | None

    def to_json(self) -> dict[str, object]:
        """The JSON object ``info --json`` prints (the shape of issue 3)."""
        return {
            "repositories": [
                {
                    "uuid": r.uuid,
                    "description": r.description,
                    "trust": r.trust,
                    "groups": list(r.groups),
                    "wanted": r.wanted,
                    "required": r.required,
                    "maxsize": r.maxsize,
                    "size": r.size,
                }
                for r in self.repositories
            ],
            "clusters": [
                {
                    "uuid": c.uuid,
                    "name": c.name,
                    "nodes": list(c.nodes),
                    "gateways": list(c.gateways),
                }
                for c in self.clusters
            ],
            "proxies": [
                {
                    "gateway": p.gateway,
                    "remotes": [{"uuid": e.uuid, "name": e.name} for e in p.remotes],
                }
                for p in self.proxies
            ],
            "numcopies": self.numcopies,
            "mincopies": self.mincopies,
        }


def _cluster_change(cluster_uuid: str, nodes: set[str]) -> Callable[[bytes], bytes]:
    now = vector_clock()

    def change(content: bytes) -> bytes:
        return cluster.set_cluster_nodes(content, cluster_uuid, nodes, now)

    return change


_SIZE_FIELD = re.compile(r"-s([0-9]+)(?=-|$)")


def _key_size(path: str) -> int:
    """The ``-s`` field of the key whose log is at ``path``; 0 without one."""
    key = unkeyfile(path.rsplit("/", 1)[-1].removesuffix(".log"))
    head = key.split("--", 1)[0]
    match = _SIZE_FIELD.search(head)
    return int(match.group(1)) if match else 0
