"""The stability report and the ``--json`` document of a simulation.

git-annex's own report is its notes ("Simulation has stabilized after N steps." or
"failed to stabilize"). `pending_changes` says *why* a simulation is not stable: every
operation a step would still perform (a repository that wants a file from a remote,
wants to send one, or may drop one), found by trying each candidate operation and
rolling it back. `summary` is the JSON-ready description ``--json`` prints. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from annexproxy.sim.engine import Simulator
from annexproxy.sim.state import SimState

_VERBS = {"get": "getwanted", "send": "sendwanted", "drop": "dropunwantedfrom"}


@dataclass(frozen=True, slots=True)
class Pending:
    """An operation a further step would perform."""

    repository: str
    action: str
    remote: str
    file: str

    def as_dict(self) -> dict[str, str]:
        """JSON form."""
        return {
            "repository": self.repository,
            "action": self.action,
            "remote": self.remote,
            "file": self.file,
        }


def pending_changes(state: SimState, *, limit: int = 1000) -> list[Pending]:
    """Operations that would still succeed, as `Simulator` would gather them (5.1).

    The state is left as it was (each trial is rolled back; the per-repository size
    tables may be refreshed, as any want check refreshes them).
    """
    simulator = Simulator(state)
    found: list[Pending] = []
    rng = state.rng
    for segment in simulator.gather_segments(("getwanted", "sendwanted", "dropunwantedfrom")):
        for index in range(len(segment.files)):
            state.begin_undo()
            done = simulator.apply((segment, index))
            state.rollback()
            if done:
                verb = _VERBS[segment.kind]
                found.append(
                    Pending(segment.actor_name, verb, segment.target_name, segment.files[index][0])
                )
                if len(found) >= limit:
                    state.rng = rng
                    return found
    state.rng = rng
    return found


def summary(state: SimState, *, pending_limit: int = 1000) -> dict[str, Any]:
    """The ``--json`` document: history, repositories with sizes, pending changes."""
    repositories = []
    for name, uuid in sorted(state.repos.items()):
        rst = state.repostate[uuid]
        own = sorted(path for path, key in state.files.items() if rst.has(uuid, key))
        repositories.append(
            {
                "name": name,
                "uuid": uuid,
                "special": rst.special,
                "groups": sorted(state.groups.get(uuid, ())),
                "trust": state.trust.get(uuid, "semitrusted"),
                "wanted": state.wanted.get(uuid),
                "required": state.required.get(uuid),
                "maxsize": state.maxsize.get(uuid),
                "size": rst.live.get(uuid, 0),
                "files": len(own),
                "remotes": sorted(state.connections.get(uuid, ())),
            }
        )
    pending = pending_changes(state, limit=pending_limit)
    return {
        "history": list(state.history),
        "failed": state.failed,
        "files": len(state.files),
        "clusternodes": dict(sorted(state.clusternodes.items())),
        "repositories": repositories,
        "stable": not pending,
        "pending": [p.as_dict() for p in pending],
    }
