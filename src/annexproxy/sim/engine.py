"""The simulator: runs sim commands against a `SimState` exactly like ``git annex sim``.

Owns command execution (sim.md 3, 7), actions and their operations (sim.md 6) and the step
loop (sim.md 5). Randomness comes only from the state's seed through `sim_random`;
preferred content from `annexproxy.sim.wants.Wants` (the gateway's evaluator). Notes
(``showLongNote``) go to an injected callback; ``visit`` runs through an injected callback
(the CLI runs a shell), so this module stays pure: no I/O.
"""

from __future__ import annotations

import hashlib
import uuid as uuidlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from annexproxy.errors import AnnexProxyError, ExpressionSyntaxError
from annexproxy.keys import Key
from annexproxy.preferred import parse_expression
from annexproxy.sim.commands import (
    Action,
    Command,
    SimAction,
    While,
    action_kind,
    connection_pairs,
    format_command,
)
from annexproxy.sim.metadata import MetaDataError, apply_modification, parse_modification
from annexproxy.sim.oplist import Op, OpList, Segment
from annexproxy.sim.rng import SplitMix, sim_random
from annexproxy.sim.state import RepoState, SimState
from annexproxy.sim.wants import DEFAULT_PATH_PREFIX, Wants
from annexproxy.uuids import RepoUUID

#: ``simUUIDNameSpace``: the v5 UUID of git-annex's sim URL in the URL namespace.
SIM_NAMESPACE = uuidlib.uuid5(
    uuidlib.NAMESPACE_URL, "http://git-annex.branchable.com/git-annex-sim/"
)
KEY_SUFFIX = ".this-is-a-test-key"
_UNSYNC = ("getwanted", "sendwanted", "dropunwantedfrom")


class SimError(AnnexProxyError):
    """A sim command failed; the message is git-annex's (``git-annex: MESSAGE``)."""


class VisitFailed(AnnexProxyError):
    """A ``visit`` command exited non-zero: git-annex exits with its status at once.

    Attributes:
        status: the exit status of the command.
    """

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


#: visit(repository UUID, repository name, command words) -> exit status.
Visitor = Callable[[RepoUUID, str, Sequence[str]], int]


def _no_visit(uuid: RepoUUID, name: str, words: Sequence[str]) -> int:
    del uuid, name, words
    raise SimError("Simulated repository unavailable.")


def sim_uuid(name: str, drawn: bytes) -> RepoUUID:
    """``genSimUUID``: v5 UUID of the name plus the drawn bytes (sim.md 7.1)."""
    digest = hashlib.sha1(SIM_NAMESPACE.bytes + name.encode() + drawn).digest()
    return RepoUUID(str(uuidlib.UUID(bytes=digest[:16], version=5)))


def sim_key(size: int, drawn: bytes) -> Key:
    """``genSimKey``: a SHA256E test key of the drawn bytes with the given size (7.2)."""
    return Key(variety="SHA256E", name=hashlib.sha256(drawn).hexdigest() + KEY_SUFFIX, size=size)


@dataclass(slots=True)
class Trace:
    """Each repository's own size after every successful operation (for plots)."""

    names: list[str] = field(default_factory=list)
    samples: list[list[int]] = field(default_factory=list)


class Simulator:
    """Runs commands; every error is a `SimError` with git-annex's message."""

    def __init__(
        self,
        state: SimState,
        *,
        note: Callable[[str], None] = lambda text: None,
        visit: Visitor = _no_visit,
        path_prefix: str = DEFAULT_PATH_PREFIX,
        trace: Trace | None = None,
    ) -> None:
        self.state = state
        self.note = note
        self.visit = visit
        self.wants = Wants(state, path_prefix)
        self.trace = trace

    # --- helpers ------------------------------------------------------------------------

    def _known(self, name: str) -> RepoUUID:
        """``checkKnownRepo``: a repository or cluster node name."""
        found = self.state.lookup(name)
        if found is None:
            choices = " ".join(sorted(self.state.repos))
            raise SimError(
                f'No repository in the simulation is named "{name}". Choose from: {choices}'
            )
        return found

    def _known_not_special(self, name: str) -> RepoUUID:
        uuid = self._known(name)
        if self.state.repostate[uuid].special:
            raise SimError(f"{name} is a special remote, so git-annex cannot run on it.")
        return uuid

    def _known_remote(self, remote: str, repo: str, uuid: RepoUUID) -> RepoUUID:
        if remote not in self.state.connections.get(uuid, ()):
            raise SimError(f'Repository {repo} does not have a remote "{remote}".')
        return self._known(remote)

    def _not_existing(self, name: str) -> None:
        if name in self.state.repos:
            raise SimError(f'There is already a repository in the simulation named "{name}".')
        if name in self.state.clusternodes:
            raise SimError(f'There is already a cluster node in the simulation named "{name}".')

    def _random_bytes(self) -> bytes:
        drawn, self.state.rng = sim_random(self.state.rng, lambda g: g.words(1024))
        return drawn

    def _draw(self, low: int, high: int) -> int:
        value, seed = sim_random(self.state.rng, lambda g: g.range(low, high))
        self.state.set_rng(seed)
        return value

    def _sample(self) -> None:
        if self.trace is None:
            return
        state = self.state
        names = sorted(state.repos)
        if names != self.trace.names:
            self.trace.names = names
            self.trace.samples = []
        own = [state.repostate[state.repos[n]].live.get(state.repos[n], 0) for n in names]
        self.trace.samples.append(own)

    # --- commands -----------------------------------------------------------------------

    def run(self, command: Command) -> None:
        """Execute one command (``runSimCommand``).

        Raises:
            SimError: the command failed (the whole invocation fails, nothing is saved).
            VisitFailed: a ``visit`` command exited non-zero.
        """
        name = command.name
        if name in ("present", "notpresent"):
            self._check_presence(command)
            return
        if name == "visit":
            self._visit(command)
            return
        state = self.state
        state.clock += 1
        state.add_history(format_command(command))
        handler = getattr(self, "_cmd_" + name.lstrip("#"), None)
        if handler is None:
            raise SimError(f"{name} is not supported by this simulator")
        handler(command)
        self._sample()

    def _check_presence(self, command: Command) -> None:
        repo, path = command.args
        uuid = self._known(repo)
        key = self.state.files.get(path)
        want = command.name == "present"
        if key is None:
            self.note(
                f"Expected {path} {'to be' if want else 'to not be'} present in {repo}, "
                "but the simulation does not include that file."
            )
        elif self.state.repostate[uuid].has(uuid, key) != want:
            self.note(
                f"Expected {path} to be present in {repo}, but it is not."
                if want
                else f"Expected {path} not to be present in {repo}, but it is present."
            )
        else:
            return
        self.state.failed = True

    def _visit(self, command: Command) -> None:
        repo, words = command.args[0], command.args[1:]
        uuid = self._known(repo)
        if not words:
            self.note("Starting a shell in the simulated repository.")
        status = self.visit(uuid, repo, words)
        if not words:
            self.note("Finished visit to simulated repository.")
            return
        if status != 0:
            self.note(f"Command {' '.join(words)} exited nonzero.")
            raise VisitFailed(f"visit exited with status {status}", status=status)
        self.state.add_history(format_command(command))

    def _cmd_comment(self, command: Command) -> None:
        del command

    _cmd_blank = _cmd_comment

    def _add_repo(self, name: str, special: bool) -> None:
        self._not_existing(name)
        state = self.state
        uuid = sim_uuid(name, self._random_bytes())
        state.repos[name] = uuid
        state.repostate[uuid] = RepoState(name, special)
        state.connections[uuid] = set()
        state.groups[uuid] = set()
        state.trust[uuid] = "semitrusted"
        state.wanted.pop(uuid, None)
        state.required.pop(uuid, None)
        state.maxsize.pop(uuid, None)
        state.touch_config()

    def _cmd_init(self, command: Command) -> None:
        self._add_repo(command.args[0], special=False)

    def _cmd_initremote(self, command: Command) -> None:
        self._add_repo(command.args[0], special=True)

    def _cmd_use(self, command: Command) -> None:
        raise SimError(
            f'Unable to use a repository "{command.args[0]}" in the simulation because '
            "annexproxy sim does not read real repositories (use is not supported)"
        )

    _cmd_addtree = _cmd_use

    def _cmd_connect(self, command: Command) -> None:
        state = self.state
        for repo, remote in connection_pairs(command.args):
            uuid = self._known(repo)
            if state.repostate[uuid].special:
                raise SimError(f"{repo} is a special remote, and cannot connect to {remote}")
            state.connections.setdefault(uuid, set()).add(remote)

    def _cmd_disconnect(self, command: Command) -> None:
        pairs = connection_pairs(command.args)
        for index, (repo, remote) in enumerate(pairs):
            uuid = self._known(repo)
            if index < len(pairs) - 1:  # the reference never applies the last pair
                self.state.connections.setdefault(uuid, set()).discard(remote)

    def _add_file(self, path: str, size: int, repos: Sequence[str]) -> None:
        key = sim_key(size, self._random_bytes())
        for repo in repos:
            uuid = self._known(repo)
            self.state.add_file(path, key)
            self.state.set_present(True, uuid, repo, key, uuid)

    def _cmd_add(self, command: Command) -> None:
        self._add_file(command.args[0], command.numbers[0], command.repos)

    def _cmd_addmulti(self, command: Command) -> None:
        count, low, high = command.numbers
        if count <= 0:
            raise SimError(f"addmulti needs a positive number of files, not {count}")
        for number in range(count, 0, -1):
            size, self.state.rng = sim_random(self.state.rng, lambda g: g.range(low, high))
            self._add_file(f"{number}{command.args[0]}", size, command.repos)

    def _cmd_seed(self, command: Command) -> None:
        self.state.rng = command.numbers[0]

    def _cmd_numcopies(self, command: Command) -> None:
        self.state.numcopies = max(1, command.numbers[0])
        self.state.touch_config()

    def _cmd_mincopies(self, command: Command) -> None:
        self.state.mincopies = max(1, command.numbers[0])
        self.state.touch_config()

    def _cmd_trustlevel(self, command: Command) -> None:
        self.state.trust[self._known(command.args[0])] = command.args[1]
        self.state.touch_config()

    def _cmd_group(self, command: Command) -> None:
        self.state.groups.setdefault(self._known(command.args[0]), set()).add(command.args[1])
        self.state.touch_config()

    def _cmd_ungroup(self, command: Command) -> None:
        groups = self.state.groups.get(self._known(command.args[0]))
        if groups is not None:
            groups.discard(command.args[1])
        self.state.touch_config()

    def _cmd_metadata(self, command: Command) -> None:
        path, text = command.args
        try:
            modification = parse_modification(text)
        except MetaDataError as exc:
            raise SimError(str(exc)) from exc
        key = self.state.files.get(path)
        if key is None:
            raise SimError(f"Cannot set metadata of unknown file {path}")
        current = self.state.metadata.setdefault(key, {})
        apply_modification(current, modification)

    @staticmethod
    def _check_expressions(expressions: Sequence[str]) -> None:
        for expression in expressions:
            try:
                parse_expression(expression)
            except ExpressionSyntaxError as exc:
                raise SimError(f'Failed parsing "{expression}": {exc.args[0]}') from exc

    def _cmd_wanted(self, command: Command) -> None:
        uuid = self._known(command.args[0])
        self._check_expressions(command.args[1:])
        self.state.wanted[uuid] = command.args[1]
        self.state.touch_config()

    def _cmd_required(self, command: Command) -> None:
        uuid = self._known(command.args[0])
        self._check_expressions(command.args[1:])
        self.state.required[uuid] = command.args[1]
        self.state.touch_config()

    def _cmd_groupwanted(self, command: Command) -> None:
        self._check_expressions(command.args[1:])
        self.state.groupwanted[command.args[0]] = command.args[1]
        self.state.touch_config()

    def _random_expression(self, terms: Sequence[str]) -> str:
        """``randomPreferredContentExpression`` (sim.md 7.3), one sim_random."""
        self._check_expressions(terms)

        def draw(gen: SplitMix) -> str:
            count = len(terms)
            pieces: list[list[str]] = []
            for _ in range(gen.range(1, count)):
                term = terms[gen.range(0, count - 1)]
                notted, combine_and = gen.next_bool(), gen.next_bool()
                connective = [] if not pieces else ["and" if combine_and else "or"]
                pieces.append((["not"] if notted else []) + [term, *connective])
            return " ".join(word for piece in reversed(pieces) for word in piece)

        expression, self.state.rng = sim_random(self.state.rng, draw)
        self.state.touch_config()
        return expression

    def _cmd_randomwanted(self, command: Command) -> None:
        uuid = self._known(command.args[0])
        self.state.wanted[uuid] = self._random_expression(command.args[1:])

    def _cmd_randomrequired(self, command: Command) -> None:
        uuid = self._known(command.args[0])
        self.state.required[uuid] = self._random_expression(command.args[1:])

    def _cmd_randomgroupwanted(self, command: Command) -> None:
        self.state.groupwanted[command.args[0]] = self._random_expression(command.args[1:])

    def _cmd_maxsize(self, command: Command) -> None:
        self.state.maxsize[self._known(command.args[0])] = command.numbers[0]
        self.state.touch_config()

    def _cmd_rebalance(self, command: Command) -> None:
        self.state.rebalance = command.flag
        self.state.touch_config()

    def _cmd_clusternode(self, command: Command) -> None:
        node, repo = command.args
        uuid = self._known(repo)
        self._not_existing(node)
        self.state.clusternodes[node] = uuid

    def _cmd_action(self, command: Command) -> None:
        assert command.action is not None
        for op in self._components(command.action):
            self.apply(op)

    def _cmd_step(self, command: Command) -> None:
        self._step(command.numbers[0], must_stabilize=False)

    def _cmd_stepstable(self, command: Command) -> None:
        self._step(command.numbers[0], must_stabilize=True)

    # --- actions ------------------------------------------------------------------------

    def _components(self, action: SimAction) -> list[Op]:
        """The operations of an action, with ``while`` interleaving (sim.md 6.5)."""
        if isinstance(action, While):
            first = self._components(action.first)
            second = self._components(action.second)
            return self._mingle(first, second)
        return [(s, i) for s in self._segments(action) for i in range(len(s.files))]

    def _mingle(self, first: list[Op], second: list[Op]) -> list[Op]:
        out: list[Op] = []
        a, b = 0, 0
        while a < len(first) and b < len(second):
            coin, self.state.rng = sim_random(self.state.rng, lambda g: g.next_bool())
            if coin:
                out.append(first[a])
                a += 1
            else:
                out.append(second[b])
                b += 1
        return out + first[a:] + second[b:]

    def _segments(self, action: Action) -> list[Segment]:
        """``getSimActionComponents`` for one action: merges now, operations as segments.

        Raises:
            SimError: unknown repository or remote, special remote acting, ...
        """
        kind, repo, remote = action.kind, action.repo, action.remote
        if kind == "pull":
            assert remote is not None
            parts = [Action("gitpull", repo, remote), Action("getwanted", repo, remote)]
            return self._sequence([*parts, Action("dropunwanted", repo)])
        if kind in ("push", "sync"):
            assert remote is not None
            steps = ["sendwanted", "dropunwantedfrom", "gitpush"]
            if kind == "sync":
                steps = ["gitpull", "getwanted", *steps]
            return self._sequence([Action(action_kind(k), repo, remote) for k in steps])
        if kind == "dropunwanted":
            uuid = self._known_not_special(repo)
            return [self._drop_segment(uuid, repo, uuid, repo)]
        assert remote is not None
        if kind in ("gitpush", "gitpull"):
            uuid = self._known_not_special(repo)
            self._known_remote(remote, repo, uuid)
            src, dest = (repo, remote) if kind == "gitpush" else (remote, repo)
            src_uuid, dest_uuid = self.state.repos.get(src), self.state.repos.get(dest)
            if src_uuid is None or dest_uuid is None:
                raise SimError(f"Unable to find {src} or {dest} in simRepos")
            self.state.merge(src_uuid, dest_uuid)
            return []
        if kind == "dropunwantedfrom":
            uuid = self._known(repo)
            target = self._known_remote(remote, repo, uuid)
            return [self._drop_segment(uuid, repo, target, remote)]
        uuid = self._known_not_special(repo)
        target = self._known_remote(remote, repo, uuid)
        files = self.state.sorted_files()
        op = "get" if kind == "getwanted" else "send"
        return [Segment(op, uuid, repo, target, remote, files)]

    def _sequence(self, actions: list[Action]) -> list[Segment]:
        out: list[Segment] = []
        for action in actions:
            out.extend(self._segments(action))
        return out

    def _drop_segment(
        self, actor: RepoUUID, actor_name: str, target: RepoUUID, target_name: str
    ) -> Segment:
        state = self.state
        remotes = frozenset(
            state.repos[r] for r in state.connections.get(actor, ()) if r in state.repos
        )
        files = state.sorted_files()
        return Segment("drop", actor, actor_name, target, target_name, files, remotes)

    # --- operations ---------------------------------------------------------------------

    def apply(self, op: Op) -> bool:
        """Run one operation; True when it changed something (sim.md 6.1-6.3)."""
        segment, index = op
        path, key = segment.files[index]
        if segment.kind == "get":
            done = self._get(segment, path, key)
        elif segment.kind == "send":
            done = self._send(segment, path, key)
        else:
            done = self._drop(segment, path, key)
        if done:
            self._sample()
        return done

    def _get(self, seg: Segment, path: str, key: Key) -> bool:
        state, actor, remote = self.state, seg.actor, seg.target
        mine = state.repostate[actor]
        if not mine.has(remote, key) or mine.has(actor, key):
            return False
        if not state.repostate[remote].has(remote, key):
            return False
        self.wants.update_size_db(actor)
        if not self.wants.want_get(actor, actor, key, path):
            return False
        state.add_history(f"present {seg.actor_name} {path}")
        state.set_present(True, actor, seg.actor_name, key, actor)
        return True

    def _send(self, seg: Segment, path: str, key: Key) -> bool:
        state, actor, remote = self.state, seg.actor, seg.target
        mine = state.repostate[actor]
        if mine.has(remote, key) or not mine.has(actor, key):
            return False
        if state.repostate[remote].has(remote, key):
            return False
        self.wants.update_size_db(actor)
        if not self.wants.want_get(actor, remote, key, path):
            return False
        state.add_history(f"present {seg.target_name} {path}")
        state.set_present(True, remote, seg.target_name, key, actor)
        state.set_present(True, remote, seg.target_name, key, remote)
        return True

    def _drop(self, seg: Segment, path: str, key: Key) -> bool:
        state, actor, target = self.state, seg.actor, seg.target
        mine = state.repostate[actor]
        if not mine.has(target, key):
            return False
        self.wants.update_size_db(actor)
        if not self.wants.want_drop(actor, target, key, path):
            return False
        if not self._safe_drop(seg, key):
            return False
        state.add_history(f"notpresent {seg.target_name} {path}")
        state.set_present(False, target, seg.target_name, key, target)
        state.set_present(False, target, seg.target_name, key, actor)
        return True

    def _safe_drop(self, seg: Segment, key: Key) -> bool:
        """``safeDropAnalysis`` over the copies the actor can verify (sim.md 6.3)."""
        state = self.state
        copies = locked = 0
        for uuid in state.repostate[seg.actor].locations(key):
            if uuid == seg.target:
                continue
            other = state.repostate.get(uuid)
            if other is None or not other.has(uuid, key):
                continue
            if uuid in seg.remotes or uuid == seg.actor:
                copies += 1
                locked += 0 if other.special else 1
            elif state.trust.get(uuid) == "trusted":
                copies += 1
                locked += 1
        return copies >= state.numcopies and locked >= state.mincopies

    # --- steps --------------------------------------------------------------------------

    def _gather(self, kinds: Sequence[str]) -> OpList:
        """Candidate operations of every repository (sim.md 5.1)."""
        return OpList(self.gather_segments(kinds))

    def gather_segments(self, kinds: Sequence[str]) -> list[Segment]:
        """The segments of `_gather`, in the reference's order (merges are applied)."""
        state = self.state
        actions = [
            Action(action_kind(kind), repo, remote)
            for repo in sorted(state.repos, reverse=True)
            if state.repos[repo] in state.connections
            for remote in sorted(state.connections[state.repos[repo]])
            for kind in kinds
        ]
        gathered: list[list[Segment]] = []
        for action in actions:
            try:
                gathered.append(self._segments(action))
            except SimError:
                continue
        return [s for segments in reversed(gathered) for s in segments]

    def _run_one(self, ops: OpList) -> None:
        """``runoneaction``: random operations until one succeeds or none is left."""
        while len(ops):
            index = self._draw(0, len(ops) - 1)
            if self.apply(ops.pop(index)):
                return

    def _step(self, start: int, *, must_stabilize: bool) -> None:
        """``handleStep`` (sim.md 5.3), including its discarded last operation."""
        state, n = self.state, start
        while n >= 0:
            ops = self._gather(_UNSYNC)
            self._run_one(ops)
            if not len(ops):
                ops = self._gather(("sync",))
                self._run_one(ops)
                if not len(ops):
                    self.note(f"Simulation has stabilized after {start - n} steps.")
                    return
            n -= 1
            while n >= 0:
                state.begin_undo()
                self._run_one(ops)
                if not len(ops):
                    state.rollback()
                    break
                state.end_undo()
                n -= 1
        if must_stabilize:
            self.note(f"Simulation failed to stabilize after {start} steps.")
            state.failed = True
