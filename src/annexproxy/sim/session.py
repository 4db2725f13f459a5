"""Whole sim invocations without the file system: start, one line, show (sim.md 1).

Owns what ``git annex sim start FILE`` and ``git annex sim LINE...`` do to a state: the
recorded ``seed`` line when a file does not start with one, running every command, and
the failure rules ("Simulation had errors." only when a failure is new). The CLI reads
and writes the state file and prints; this module only computes. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from annexproxy.sim.commands import Command, parse_sim_file, parse_words, seed_command
from annexproxy.sim.engine import SimError, Simulator, Trace, Visitor
from annexproxy.sim.state import SimState
from annexproxy.sim.wants import DEFAULT_PATH_PREFIX

NoteSink = Callable[[str], None]


def _simulator(
    state: SimState, note: NoteSink, visit: Visitor | None, prefix: str, trace: Trace | None
) -> Simulator:
    if visit is None:
        return Simulator(state, note=note, path_prefix=prefix, trace=trace)
    return Simulator(state, note=note, visit=visit, path_prefix=prefix, trace=trace)


def start(
    text: str | None,
    *,
    initial_seed: int,
    note: NoteSink,
    visit: Visitor | None = None,
    path_prefix: str = DEFAULT_PATH_PREFIX,
    trace: Trace | None = None,
) -> SimState:
    """Run a sim file in a new simulation (``startsim'``); ``text`` None: empty sim.

    Args:
        text: the sim file's contents.
        initial_seed: the random seed before the file runs (git-annex draws it from the
            system's entropy; the caller injects it).
        note: receives each ``showLongNote`` text.
        visit: runs ``visit`` commands.
        path_prefix: how simulated file names are seen by path-based terms.
        trace: collects per-operation sizes for plots.

    Returns:
        The final state (``failed`` set when a check failed).

    Raises:
        SimParseError: a line does not parse (nothing has run).
        SimError: a command failed.
        VisitFailed: a ``visit`` command exited non-zero.
    """
    commands = parse_sim_file(text) if text is not None else []
    state = SimState(rng=initial_seed)
    if not commands or commands[0].name != "seed":
        state.history.append(f"seed {initial_seed}")
    simulator = _simulator(state, note, visit, path_prefix, trace)
    for command in commands:
        simulator.run(command)
    return state


def run_line(
    state: SimState,
    words: Sequence[str],
    *,
    note: NoteSink,
    visit: Visitor | None = None,
    path_prefix: str = DEFAULT_PATH_PREFIX,
) -> bool:
    """Run ``git annex sim WORDS...`` against a saved state (mutated in place).

    Returns:
        True when this command newly failed the simulation ("Simulation had errors.").

    Raises:
        SimParseError, SimError, VisitFailed: as for `start`.
    """
    command: Command = parse_words(list(words))
    was_failed = state.failed
    _simulator(state, note, visit, path_prefix, None).run(command)
    return state.failed and not was_failed


def show(state: SimState) -> str:
    """The output of ``git annex sim show``: the history, one line each."""
    return "".join(line + "\n" for line in state.history)


__all__ = ["SimError", "run_line", "seed_command", "show", "start"]
