"""The simulation's state (sim.md 3) and the only functions that change locations.

Owns `SimState`: repositories and cluster nodes, every repository's *view* (what it
believes about each key's locations, with the vector clock of each entry) and its *live*
size bookkeeping, the global configuration, the random seed, the clock and the history.
`SimState.set_present` applies git-annex's clock rule (within one command an entry can
change only once) and cluster-node propagation; `SimState.merge` is a git-annex branch
merge. An undo journal lets the step loop discard the last operation exactly like the
reference (sim.md 5.3). `to_json`/`from_json` give a plain-data form for the state file;
writing it is the caller's job. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from annexproxy.keys import Key
from annexproxy.space.sizes import key_size
from annexproxy.uuids import RepoUUID

#: A view entry: (clock, present?).
Entry = tuple[int, bool]
STATE_VERSION = 1


@dataclass(slots=True)
class RepoState:
    """What one simulated repository knows (``SimRepoState``)."""

    name: str
    special: bool
    view: dict[Key, dict[RepoUUID, Entry]] = field(default_factory=dict)
    live: dict[RepoUUID, int] = field(default_factory=dict)

    def has(self, uuid: RepoUUID, key: Key) -> bool:
        """Whether ``uuid`` has ``key`` in this repository's view."""
        entries = self.view.get(key)
        if not entries:
            return False
        entry = entries.get(uuid)
        return entry is not None and entry[1]

    def locations(self, key: Key) -> frozenset[RepoUUID]:
        """The UUIDs this view marks present for ``key``."""
        entries = self.view.get(key)
        if not entries:
            return frozenset()
        return frozenset(u for u, (_, present) in entries.items() if present)


@dataclass(slots=True)
class SizeFreeze:
    """Per-process repository sizes of one acting repository (sim.md 8.1): base and db0."""

    base: dict[RepoUUID, int]
    db0: dict[RepoUUID, int]


@dataclass(slots=True)
class SimState:
    """The whole simulation (``SimState``); mutate only through the methods below."""

    rng: int
    repos: dict[str, RepoUUID] = field(default_factory=dict)
    clusternodes: dict[str, RepoUUID] = field(default_factory=dict)
    repostate: dict[RepoUUID, RepoState] = field(default_factory=dict)
    connections: dict[RepoUUID, set[str]] = field(default_factory=dict)
    files: dict[str, Key] = field(default_factory=dict)
    trust: dict[RepoUUID, str] = field(default_factory=dict)
    numcopies: int = 1
    mincopies: int = 1
    groups: dict[RepoUUID, set[str]] = field(default_factory=dict)
    metadata: dict[Key, dict[str, set[str]]] = field(default_factory=dict)
    wanted: dict[RepoUUID, str] = field(default_factory=dict)
    required: dict[RepoUUID, str] = field(default_factory=dict)
    groupwanted: dict[str, str] = field(default_factory=dict)
    maxsize: dict[RepoUUID, int] = field(default_factory=dict)
    rebalance: bool = False
    clock: int = 0
    history: list[str] = field(default_factory=list)
    failed: bool = False
    #: The ``SizeChanges`` table of each acting repository's scratch repository: it
    #: survives between invocations and is not rolled back with the state.
    size_db: dict[RepoUUID, dict[RepoUUID, int]] = field(default_factory=dict)
    #: Per-process size caches (not saved in the state file).
    size_freeze: dict[RepoUUID, SizeFreeze] = field(default_factory=dict)
    #: Bumped whenever configuration changes (evaluator caches key on it).
    config_version: int = 0
    _undo: list[tuple[Any, ...]] | None = None
    _sorted_files: list[tuple[str, Key]] | None = None

    # --- configuration ----------------------------------------------------------------

    def touch_config(self) -> None:
        """Note a configuration change (trust, groups, expressions, sizes, ...)."""
        self.config_version += 1

    def sorted_files(self) -> list[tuple[str, Key]]:
        """Files in ascending path order (``M.toList simFiles``), cached until an add."""
        if self._sorted_files is None:
            self._sorted_files = sorted(self.files.items(), key=lambda item: item[0])
        return self._sorted_files

    def add_file(self, path: str, key: Key) -> None:
        """Record (or replace) a simulated file."""
        self.files[path] = key
        self._sorted_files = None

    def name_of(self, uuid: RepoUUID) -> str:
        """The repository name of a UUID."""
        return self.repostate[uuid].name

    def lookup(self, name: str) -> RepoUUID | None:
        """A repository or cluster node name to its UUID (``checkKnownRepo``)."""
        found = self.repos.get(name)
        return found if found is not None else self.clusternodes.get(name)

    # --- history and randomness --------------------------------------------------------

    def add_history(self, line: str) -> None:
        """Append a line to the history (undoable)."""
        if self._undo is not None:
            self._undo.append(("history", len(self.history)))
        self.history.append(line)

    def set_rng(self, seed: int) -> None:
        """Store the next seed (undoable)."""
        if self._undo is not None:
            self._undo.append(("rng", self.rng))
        self.rng = seed

    def freeze_sizes(self, actor: RepoUUID, freeze: SizeFreeze) -> None:
        """Remember the per-process size base of an acting repository (undoable)."""
        if self._undo is not None:
            self._undo.append(("freeze", actor))
        self.size_freeze[actor] = freeze

    # --- locations ---------------------------------------------------------------------

    def set_present(
        self, present: bool, uuid: RepoUUID, name: str, key: Key, stu: RepoUUID
    ) -> None:
        """``setPresentKey``: in ``stu``'s view, ``uuid`` has (or lacks) ``key``.

        When ``name`` is a cluster node name for ``uuid``, every other repository with a
        remote of that name learns the same (sim.md 6.6).
        """
        self._set_one(self.repostate[stu], present, uuid, key)
        if self.clusternodes.get(name) == uuid:
            for other in sorted(self.connections):
                if other != stu and name in self.connections[other]:
                    self._set_one(self.repostate[other], present, uuid, key)

    def _set_one(self, rst: RepoState, present: bool, uuid: RepoUUID, key: Key) -> None:
        entries = rst.view.get(key)
        old = entries.get(uuid) if entries is not None else None
        was = old is not None and old[1]
        undo = self._undo
        if was != present:
            size = key_size(key)
            before = rst.live.get(uuid)
            if undo is not None:
                undo.append(("live", rst, uuid, before))
            rst.live[uuid] = (before or 0) + (size if present else -size)
        if old is not None and old[0] >= self.clock:
            return  # newerLocationState keeps the old entry on a clock tie
        if entries is None:
            entries = rst.view[key] = {}
            if undo is not None:
                undo.append(("newkey", rst, key))
        elif undo is not None:
            undo.append(("entry", entries, uuid, old))
        entries[uuid] = (self.clock, present)

    def merge(self, src: RepoUUID, dest: RepoUUID) -> None:
        """A git-annex branch merge of ``src``'s view into ``dest`` (sim.md 3), not undoable."""
        source, target = self.repostate[src].view, self.repostate[dest]
        view = target.view
        for key, entries in source.items():
            mine = view.get(key)
            if mine is None:
                view[key] = dict(entries)
                continue
            for uuid, entry in entries.items():
                old = mine.get(uuid)
                if old is None or old[0] <= entry[0]:
                    mine[uuid] = entry
        target.live = recompute_live(view)

    # --- undo journal ------------------------------------------------------------------

    def begin_undo(self) -> None:
        """Start journalling changes so that `rollback` can discard them."""
        self._undo = []

    def end_undo(self) -> None:
        """Keep the journalled changes."""
        self._undo = None

    def rollback(self) -> None:
        """Discard every change since `begin_undo` (the size database is kept)."""
        journal, self._undo = self._undo or [], None
        for item in reversed(journal):
            tag = item[0]
            if tag == "history":
                del self.history[item[1] :]
            elif tag == "rng":
                self.rng = item[1]
            elif tag == "freeze":
                self.size_freeze.pop(item[1], None)
            elif tag == "live":
                _, rst, uuid, before = item
                if before is None:
                    rst.live.pop(uuid, None)
                else:
                    rst.live[uuid] = before
            elif tag == "newkey":
                item[1].view.pop(item[2], None)
            else:
                _, entries, uuid, old = item
                if old is None:
                    entries.pop(uuid, None)
                else:
                    entries[uuid] = old


def recompute_live(view: dict[Key, dict[RepoUUID, Entry]]) -> dict[RepoUUID, int]:
    """``calcLiveSizeChanges``: sum of key sizes per UUID over present entries."""
    live: dict[RepoUUID, int] = {}
    for key, entries in view.items():
        size = key_size(key)
        for uuid, (_, present) in entries.items():
            if present:
                live[uuid] = live.get(uuid, 0) + size
    return live


# --- plain-data form -------------------------------------------------------------------


def to_json(state: SimState) -> dict[str, Any]:
    """The state as JSON-compatible data (the per-process size caches are left out)."""
    keys = sorted({str(k): k for k in _all_keys(state)}.items())
    index = {key: n for n, (_, key) in enumerate(keys)}
    return {
        "version": STATE_VERSION,
        "keys": [text for text, _ in keys],
        "rng": state.rng,
        "repos": state.repos,
        "clusternodes": state.clusternodes,
        "repostate": {
            uuid: {
                "name": rst.name,
                "special": rst.special,
                "view": [
                    [index[key], [[u, c, p] for u, (c, p) in entries.items()]]
                    for key, entries in rst.view.items()
                ],
                "live": rst.live,
            }
            for uuid, rst in state.repostate.items()
        },
        "connections": {u: sorted(c) for u, c in state.connections.items()},
        "files": [[path, index[key]] for path, key in state.files.items()],
        "trust": state.trust,
        "numcopies": state.numcopies,
        "mincopies": state.mincopies,
        "groups": {u: sorted(g) for u, g in state.groups.items()},
        "metadata": [
            [index[key], {f: sorted(v) for f, v in fields.items()}]
            for key, fields in state.metadata.items()
        ],
        "wanted": state.wanted,
        "required": state.required,
        "groupwanted": state.groupwanted,
        "maxsize": state.maxsize,
        "rebalance": state.rebalance,
        "clock": state.clock,
        "history": state.history,
        "failed": state.failed,
        "size_db": state.size_db,
    }


def _all_keys(state: SimState) -> Iterator[Key]:
    yield from state.files.values()
    yield from state.metadata
    for rst in state.repostate.values():
        yield from rst.view


def _sim_key(text: str) -> Key:
    # Keys come from our own state file; parse them without the safety checks of
    # Key.parse (simulated sizes may be negative).
    head, _, name = text.partition("--")
    variety, _, size = head.partition("-s")
    return Key(variety=variety, name=name, size=int(size) if size else None)


def from_json(data: dict[str, Any]) -> SimState:
    """Rebuild a state from `to_json` data.

    Raises:
        KeyError, ValueError, TypeError: the data is not a saved sim state.
    """
    if data.get("version") != STATE_VERSION:
        raise ValueError("unknown sim state version")
    keys = [_sim_key(text) for text in data["keys"]]
    state = SimState(rng=int(data["rng"]))
    state.repos = {n: RepoUUID(u) for n, u in data["repos"].items()}
    state.clusternodes = {n: RepoUUID(u) for n, u in data["clusternodes"].items()}
    for uuid, raw in data["repostate"].items():
        rst = RepoState(raw["name"], bool(raw["special"]))
        for index, entries in raw["view"]:
            rst.view[keys[index]] = {RepoUUID(u): (int(c), bool(p)) for u, c, p in entries}
        rst.live = {RepoUUID(u): int(v) for u, v in raw["live"].items()}
        state.repostate[RepoUUID(uuid)] = rst
    state.connections = {RepoUUID(u): set(c) for u, c in data["connections"].items()}
    state.files = {path: keys[index] for path, index in data["files"]}
    state.trust = {RepoUUID(u): t for u, t in data["trust"].items()}
    state.numcopies, state.mincopies = int(data["numcopies"]), int(data["mincopies"])
    state.groups = {RepoUUID(u): set(g) for u, g in data["groups"].items()}
    state.metadata = {
        keys[index]: {f: set(v) for f, v in fields.items()} for index, fields in data["metadata"]
    }
    state.wanted = {RepoUUID(u): e for u, e in data["wanted"].items()}
    state.required = {RepoUUID(u): e for u, e in data["required"].items()}
    state.groupwanted = dict(data["groupwanted"])
    state.maxsize = {RepoUUID(u): int(v) for u, v in data["maxsize"].items()}
    state.rebalance = bool(data["rebalance"])
    state.clock = int(data["clock"])
    state.history = list(data["history"])
    state.failed = bool(data["failed"])
    state.size_db = {
        RepoUUID(a): {RepoUUID(u): int(v) for u, v in sizes.items()}
        for a, sizes in data["size_db"].items()
    }
    return state
