"""Preferred content inside the simulation: the gateway's evaluator, fed with sim state.

Owns the adapter from `SimState` to `annexproxy.preferred.MatchContext` for one acting
repository (sim.md 8): *here* is the acting repository, whose ``present`` is always false;
locations come from its view; configuration is global; file paths are mangled the way the
reference sees them; repository sizes follow the per-process base plus the persistent
size-change table of sim.md 8.1. One `PreferredContent` per acting repository is kept
until the configuration changes. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from annexproxy.keys import Key
from annexproxy.preferred import MatchContext, PreferredContent, Repository, TrustLevel
from annexproxy.sim.state import SimState, SizeFreeze, recompute_live
from annexproxy.uuids import RepoUUID

#: What the reference prefixes to every simulated file name when run from the top of the
#: host work tree (the scratch repository is ``.git/annex/sim/<UUID>``).
DEFAULT_PATH_PREFIX = "../../../../"


class SimSizes:
    """Repository sizes as acting repository ``actor`` sees them (a `SizeSource`).

    The first lookup in a process freezes ``base`` (sizes in the actor's view) and
    ``db0`` (its size-change table); later lookups add the table's movement since.
    """

    __slots__ = ("actor", "state")

    def __init__(self, state: SimState, actor: RepoUUID) -> None:
        self.state = state
        self.actor = actor

    def size_of(self, uuid: RepoUUID) -> int | None:
        """The live size of ``uuid`` for the actor (None when it has no size entry)."""
        state, actor = self.state, self.actor
        freeze = state.size_freeze.get(actor)
        db = state.size_db.get(actor, {})
        if freeze is None:
            base = dict.fromkeys(state.repostate, 0)
            base.update(recompute_live(state.repostate[actor].view))
            freeze = SizeFreeze(base, dict(db))
            state.freeze_sizes(actor, freeze)
        if uuid not in freeze.base and uuid not in db:
            return None
        return freeze.base.get(uuid, 0) + db.get(uuid, 0) - freeze.db0.get(uuid, 0)


def _no_content(key: Key) -> bool:
    del key
    return False


class Wants:
    """want-get / want-drop for any repository, evaluated as an acting repository would."""

    def __init__(self, state: SimState, path_prefix: str = DEFAULT_PATH_PREFIX) -> None:
        self.state = state
        self.path_prefix = path_prefix
        self._version = -1
        self._by_actor: dict[RepoUUID, PreferredContent] = {}
        self._repositories: dict[RepoUUID, Repository] = {}

    def _refresh(self) -> None:
        state = self.state
        if self._version == state.config_version:
            return
        self._version = state.config_version
        self._by_actor.clear()
        self._repositories = {
            uuid: Repository(
                uuid=uuid,
                description=rst.name,
                trust=TrustLevel.from_name(state.trust.get(uuid, "semitrusted"))
                or TrustLevel.SEMITRUSTED,
                groups=frozenset(state.groups.get(uuid, ())),
                wanted=state.wanted.get(uuid),
                required=state.required.get(uuid),
                maxsize=state.maxsize.get(uuid),
            )
            for uuid, rst in state.repostate.items()
        }

    def evaluator(self, actor: RepoUUID) -> PreferredContent:
        """The evaluator of acting repository ``actor`` (cached per configuration)."""
        self._refresh()
        found = self._by_actor.get(actor)
        if found is None:
            state = self.state
            view = state.repostate[actor]
            metadata = state.metadata

            def meta(key: Key) -> Mapping[str, Collection[str]]:
                return metadata.get(key, {})

            context = MatchContext(
                here=actor,
                repositories=self._repositories,
                locations=view.locations,
                group_wanted=dict(state.groupwanted),
                numcopies=state.numcopies,
                mincopies=state.mincopies,
                here_has=_no_content,
                metadata=meta,
                sizes=SimSizes(state, actor),
                rebalance=state.rebalance,
            )
            found = self._by_actor[actor] = PreferredContent(context)
        return found

    def want_get(self, actor: RepoUUID, repo: RepoUUID, key: Key, path: str) -> bool:
        """Whether ``repo`` wants ``key`` (file ``path``), as ``actor`` evaluates it."""
        return self.evaluator(actor).want_get(repo, key, self.path_prefix + path)

    def want_drop(self, actor: RepoUUID, repo: RepoUUID, key: Key, path: str) -> bool:
        """Whether ``repo`` may drop ``key`` as far as preferred content goes (NP = {repo})."""
        return self.evaluator(actor).want_drop(repo, key, self.path_prefix + path)

    def update_size_db(self, actor: RepoUUID) -> None:
        """``updateLiveSizeChanges``: copy the actor's live sizes into its size table."""
        self.state.size_db.setdefault(actor, {}).update(self.state.repostate[actor].live)
