"""Preferred content of a real repository: a `MatchContext` built from its branch and config.

Owns the composition of the pure evaluator (``annexproxy.preferred``) with one git-annex
repository, the one the command (or the gateway) runs in: repositories from uuid.log,
trust.log (plus ``remote.NAME.annex-trustlevel``), group.log, preferred-content.log,
required-content.log, group-preferred-content.log, maxsize.log and remote.log's
``preferreddir``; numcopies from numcopies.log; clusters from cluster.log; per-key
locations, URLs and equivalent keys from the key's presence logs (journal and unmerged
siblings included, through `BranchView`); local presence of *here* from the object
store; ``annex.numcopies`` gitattributes through one ``git check-attr --stdin``
coprocess; ``annex.fullybalancedthreshhold`` from git config. Repository sizes are
computed from every location log once per `Wants` (lazily, on the first size question)
and then kept up to date incrementally.

`Wants` answers want-get / want-drop for (repository, key, file) with the expression of
each repository parsed and compiled once and locations cached per key. It must stay
fresh by being told: `Wants.note_location` after the gateway records a presence change,
`Wants.refresh` when the branch may have moved (merge, push, another writer).
``unused`` is not read yet: that term sees no unused keys. Metadata comes from the key's
``.log.met`` (the values in force; not the derived ``lastchanged`` fields). Nothing is
printed here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType

from annexproxy.branch.configmemo import ConfigMemo
from annexproxy.branch.git_plumbing import GitPlumbing
from annexproxy.branch.journal import Journal
from annexproxy.branch.logs.metadata import current_metadata
from annexproxy.branch.logs.presence import present_infos
from annexproxy.branch.logs.snapshot import BranchConfig
from annexproxy.branch.logs.trust import TrustLevel as LogTrust
from annexproxy.branch.paths import branch_path, key_log_path
from annexproxy.branch.view import BranchView
from annexproxy.errors import AnnexProxyError, ConfigError, RepositoryError
from annexproxy.keys import Key, unkeyfile
from annexproxy.preferred import (
    MatchContext,
    PreferredContent,
    Repository,
    TrustLevel,
    Verdict,
)
from annexproxy.server.admin import GatewaySetup
from annexproxy.server.gitattributes import CheckAttr
from annexproxy.space import DEFAULT_FULLY_BALANCED_THRESHOLD, RepoSizeTracker
from annexproxy.uuids import RepoUUID, is_cluster_uuid

_TRUST = {
    LogTrust.TRUSTED: TrustLevel.TRUSTED,
    LogTrust.SEMITRUSTED: TrustLevel.SEMITRUSTED,
    LogTrust.UNTRUSTED: TrustLevel.UNTRUSTED,
    LogTrust.DEAD: TrustLevel.DEAD,
}
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
#: Entries kept in the per-key location cache before it is emptied (bounded memory).
CACHE_LIMIT = 200_000


def _trust_overrides(entries: Mapping[str, str]) -> dict[str, TrustLevel]:
    """``remote.NAME.annex-trustlevel`` of remotes with a UUID (git-annex's local trust)."""
    found: dict[str, TrustLevel] = {}
    for name, value in entries.items():
        if name.startswith("remote.") and name.endswith(".annex-trustlevel"):
            remote = name[len("remote.") : -len(".annex-trustlevel")]
            uuid = entries.get(f"remote.{remote}.annex-uuid")
            level = TrustLevel.from_name(value.strip().lower())
            if uuid and level is not None:
                found[uuid] = level
    return found


def repositories_of(
    config: BranchConfig, here: str, overrides: Mapping[str, TrustLevel] | None = None
) -> dict[RepoUUID, Repository]:
    """Every repository the branch knows, as the evaluator sees it.

    Args:
        config: the resolved configuration logs.
        here: the UUID of the repository the command runs in (always included).
        overrides: trust levels set in git config, winning over trust.log.

    Returns:
        UUID -> `Repository`, for every UUID with a description, a setting or a
        special-remote configuration.
    """
    overrides = overrides or {}
    uuids = {*config.known_uuids(), *config.remotes, here}
    repos: dict[RepoUUID, Repository] = {}
    for uuid in sorted(uuids):
        trust = overrides.get(uuid, _TRUST[config.trust_of(uuid)])
        repos[RepoUUID(uuid)] = Repository(
            uuid=RepoUUID(uuid),
            description=config.descriptions.get(uuid, ""),
            trust=trust,
            groups=config.groups.get(uuid, frozenset()),
            wanted=config.preferred.get(uuid),
            required=config.required.get(uuid),
            maxsize=config.maxsize.get(uuid),
            preferreddir=config.remotes.get(uuid, {}).get("preferreddir"),
        )
    return repos


def key_of_log_path(path: str) -> Key | None:
    """The key whose location log is at ``path`` (None: not a key we can parse)."""
    name = path.rsplit("/", 1)[-1].removesuffix(".log")
    try:
        return Key.parse(unkeyfile(name))
    except AnnexProxyError:
        return None


class Wants:
    """want-get / want-drop of any repository for keys of one repository's branch.

    Build with `Wants.open` (owns the repository) or from an open `GitPlumbing`.
    Cheap per question: ``want_get(uuid, key, file)`` costs one location-log read per
    key (then cached) and a compiled-closure evaluation.
    """

    def __init__(
        self, plumbing: GitPlumbing, *, rebalance: bool = False, attributes: bool = True
    ) -> None:
        """Read the branch configuration and git config of an open repository.

        Args:
            plumbing: the open repository (stays owned by the caller).
            rebalance: answer as with ``--rebalance``.
            attributes: consult ``annex.numcopies`` gitattributes (a coprocess).

        Raises:
            RepositoryError: not a git-annex repository, or it cannot be read.
        """
        self.plumbing = plumbing
        if not plumbing.annexdir.is_dir() or not plumbing.read_settings().uuid:
            raise RepositoryError(
                f"{plumbing.gitdir} is not a git-annex repository: run git annex init there"
            )
        self.journal = Journal(plumbing.annexdir, plumbing)
        self.view = BranchView(plumbing, self.journal, config_memo=ConfigMemo())
        self.rebalance = rebalance
        worktree = _worktree_of(plumbing)
        self.attributes = CheckAttr(worktree if attributes else None)
        self._locations: dict[Key, frozenset[RepoUUID]] = {}
        self._sizes: RepoSizeTracker | None = None
        self._seen_uuids: set[RepoUUID] = set()
        self._names: dict[str, RepoUUID] = {}
        self._load_config()

    @classmethod
    @contextlib.contextmanager
    def open(cls, path: Path | str, **options: bool) -> Iterator[Wants]:
        """Open the repository at (or above) ``path`` and answer questions about it.

        Raises:
            RepositoryError: no git-annex repository there.
        """
        with GitPlumbing(path) as plumbing, cls(plumbing, **options) as wants:
            yield wants

    def __enter__(self) -> Wants:
        """Use as a context manager: `close` on exit."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the check-attr coprocess."""
        self.close()

    def close(self) -> None:
        """Release the coprocess (the repository stays open; idempotent)."""
        self.attributes.close()

    # --- state -----------------------------------------------------------------------

    def _load_config(self) -> None:
        entries = self.plumbing.config_entries()
        self.setup = GatewaySetup.from_config(entries)
        self.here = RepoUUID(self.setup.uuid)
        self.config = self.view.config()
        self._trust = _trust_overrides(entries)
        self.threshold = _threshold(entries.get("annex.fullybalancedthreshhold"))
        self._names.clear()
        self.context = MatchContext(
            here=self.here,
            repositories=repositories_of(self.config, self.here, self._trust),
            locations=self.locations,
            group_wanted=self.config.group_preferred,
            numcopies=self.config.numcopies,
            mincopies=self.config.mincopies,
            numcopies_attr=self.attributes.numcopies,
            clusters={RepoUUID(c): _uuids(n) for c, n in self.config.clusters.items()},
            here_has=self.here_has,
            urls=self._urls,
            metadata=self._metadata,
            equivalent_keys=self._equivalent_keys,
            sizes=_LazySizes(self),
            fully_balanced_threshold=self.threshold,
            rebalance=self.rebalance,
        )
        self.evaluator = PreferredContent(self.context)

    @property
    def sizes(self) -> RepoSizeTracker:
        """Repository sizes from every location log, computed on first use.

        Reserve space here (``sizes.reserve``) for uploads a `Verdict` with ``reserve``
        decided, so that concurrent placement decisions see each other.

        Raises:
            RepositoryError: the branch cannot be read.
        """
        if self._sizes is None:
            tracker = RepoSizeTracker(self.context.repositories)
            for path in self.view.location_log_paths():
                key = key_of_log_path(path)
                content = self.view.read(path)
                if key is None or content is None:
                    continue
                for uuid in _present(content):
                    self._seen_uuids.add(uuid)
                    tracker.set_present(key, uuid, present=True)
            self._sizes = tracker
        return self._sizes

    def locations(self, key: Key) -> frozenset[RepoUUID]:
        """UUIDs the location log marks as having ``key`` (cached per key).

        Raises:
            RepositoryError: the branch or the journal cannot be read.
        """
        found = self._locations.get(key)
        if found is None:
            content = self.view.location_log(key)
            found = _present(content) if content is not None else frozenset()
            if len(self._locations) >= CACHE_LIMIT:
                self._locations.clear()
            self._locations[key] = found
        return found

    def here_has(self, key: Key) -> bool:
        """Whether the object store of this repository holds ``key``'s content."""
        objects = self.plumbing.annexdir / "objects"
        name = key.keyfile()
        for levels in (2, 1):
            for hashdir in (key.hashdir_mixed(levels), key.hashdir_lower(levels)):
                if (objects / hashdir / name / name).is_file():
                    return True
        return False

    def _metadata(self, key: Key) -> Mapping[str, Collection[str]]:
        content = self.view.read(key_log_path(key, ".log.met", branchhash1=self._hash1))
        return current_metadata(content) if content is not None else {}

    def _urls(self, key: Key) -> Collection[str]:
        content = self.view.read(key_log_path(key, ".log.web", branchhash1=self._hash1))
        if content is None:
            return ()
        return [u.decode("utf-8", "surrogateescape") for u in present_infos(content)]

    def _equivalent_keys(self, key: Key) -> Collection[Key]:
        content = self.view.read(key_log_path(key, ".log.ek", branchhash1=self._hash1))
        found = []
        for info in present_infos(content or b""):
            with contextlib.suppress(AnnexProxyError):
                found.append(Key.parse(info.decode("utf-8", "surrogateescape")))
        return found

    @property
    def _hash1(self) -> bool:
        return self.view.settings_branchhash1

    # --- keeping fresh -----------------------------------------------------------------

    def note_location(self, key: Key, uuid: RepoUUID, *, present: bool) -> None:
        """Tell about a location change just recorded (by us): cache and sizes follow.

        Call it after the gateway logs that ``uuid`` gained or lost ``key``; it costs
        O(1) and needs no branch read. Changes made by others are picked up by
        `refresh`.
        """
        cached = self._locations.get(key)
        if cached is not None:
            self._locations[key] = cached | {uuid} if present else cached - {uuid}
        if self._sizes is not None:
            self._sizes.set_present(key, uuid, present=present)

    def refresh(self) -> bool:
        """Catch up with the branch (commits, merges, pushes) and the journal.

        Re-reads the configuration logs and git config (recompiling the expressions
        only when something changed), forgets cached locations, and updates sizes from
        the location logs that changed between the old and the new tip and the ones in
        the journal.

        Returns:
            True when the configuration changed (the expressions were recompiled).

        Raises:
            RepositoryError: the branch cannot be read.
        """
        old_tip = self.view.tip
        self.view.refresh()
        self._locations.clear()
        changed = self._config_changed()
        if changed:
            self._load_config()
        if self._sizes is not None:
            self._resize(old_tip)
        return changed

    def _config_changed(self) -> bool:
        if self.view.config() != self.config:
            return True
        entries = self.plumbing.config_entries()
        return (
            GatewaySetup.from_config(entries) != self.setup
            or _trust_overrides(entries) != self._trust
            or _threshold(entries.get("annex.fullybalancedthreshhold")) != self.threshold
        )

    def _resize(self, old_tip: str | None) -> None:
        assert self._sizes is not None
        new_tip = self.view.tip
        paths = {branch_path(name) for name in self.journal.files()}
        if old_tip is None or new_tip is None:
            self._sizes = None  # start over on the next size question
            return
        if old_tip != new_tip:
            paths.update(self.plumbing.changed_files(old_tip, new_tip))
        for path in paths:
            key = key_of_log_path(path) if "/" in path and path.endswith(".log") else None
            if key is None:
                continue
            content = self.view.read(path)
            now = _present(content) if content is not None else frozenset()
            self._seen_uuids.update(now)
            for uuid in self._seen_uuids | set(self.context.repositories):
                self._sizes.set_present(key, uuid, present=uuid in now)

    # --- questions ----------------------------------------------------------------------

    def resolve(self, name: str) -> RepoUUID:
        """A repository UUID from ``here``, a remote name, a UUID or a description.

        Raises:
            ConfigError: nothing matches, or a description matches several UUIDs.
        """
        found = self._names.get(name)
        if found is None:
            found = RepoUUID(_resolve(name, self.setup, self.config))
            self._names[name] = found
        return found

    def want_get_verdict(self, repo: RepoUUID, key: Key, file: str | None = None) -> Verdict:
        """Whether ``repo`` wants ``key`` (as ``find --want-get-by``), with the reserve flag.

        Raises:
            RepositoryError: the branch cannot be read.
        """
        return self.evaluator.want_get_verdict(repo, key, file or None)

    def want_get(self, repo: RepoUUID, key: Key, file: str | None = None) -> bool:
        """Whether ``repo`` wants ``key`` (``git annex find --want-get-by=REPO``).

        Raises:
            RepositoryError: the branch cannot be read.
        """
        return self.evaluator.want_get(repo, key, file or None)

    def want_drop(self, repo: RepoUUID, key: Key, file: str | None = None) -> bool:
        """Whether ``repo`` may drop ``key`` (``git annex find --want-drop-by=REPO``).

        Raises:
            RepositoryError: the branch cannot be read.
        """
        return self.evaluator.want_drop(repo, key, file or None)

    def with_expression(self, expression: str) -> PreferredContent:
        """An evaluator in which *here* prefers ``expression`` and requires nothing.

        Used by ``matchexpression``. The expression is not checked here.
        """
        repos = dict(self.context.repositories)
        repos[self.here] = dataclasses.replace(repos[self.here], wanted=expression, required=None)
        return PreferredContent(dataclasses.replace(self.context, repositories=repos))


class _LazySizes:
    """A `SizeSource` that computes the sizes on the first question."""

    def __init__(self, wants: Wants) -> None:
        self._wants = wants

    def size_of(self, uuid: RepoUUID) -> int | None:
        tracker = self._wants._sizes  # the hot path: skip the property once computed
        return (tracker or self._wants.sizes).size_of(uuid)


def _resolve(name: str, setup: GatewaySetup, config: BranchConfig) -> str:
    """``Remote.nameToUUID``: ``here``/``.``, remote name, UUID, then description."""
    if name in ("here", "."):
        return setup.uuid
    for remote in setup.all_remotes(config):
        if remote.name == name and remote.uuid:
            return remote.uuid
    if name == setup.uuid or name in config.known_uuids() or name in config.remotes:
        return name
    matches = [u for u, d in config.descriptions.items() if d == name]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ConfigError(f"{name!r} describes several repositories; give a UUID")
    raise ConfigError(
        f"there is no repository named {name!r} (give a remote name, a UUID or a description)"
    )


def _present(content: bytes) -> frozenset[RepoUUID]:
    found = (RepoUUID(i.decode("utf-8", "surrogateescape")) for i in present_infos(content))
    return frozenset(u for u in found if not is_cluster_uuid(u))


def _uuids(values: Iterable[str]) -> frozenset[RepoUUID]:
    return frozenset(RepoUUID(v) for v in values)


def _threshold(value: str | None) -> float:
    """``annex.fullybalancedthreshhold`` (percent); the default when unset or unreadable."""
    if value is not None and _NUMBER.fullmatch(value.strip()):
        return float(value.strip())
    return DEFAULT_FULLY_BALANCED_THRESHOLD


def _worktree_of(plumbing: GitPlumbing) -> Path | None:
    """The top of the work tree, None for a bare repository (``<top>/.git`` layout)."""
    gitdir = plumbing.gitdir
    if gitdir.name == ".git" and gitdir.parent.is_dir():
        return gitdir.parent
    return None
