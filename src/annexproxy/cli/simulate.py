r"""What `annexproxy sim` runs: git annex sim with its output, plus ``--json``, ``--plot``.

The I/O layer of the simulator: finds the git directory, keeps the state in
``<gitdir>/annex/annexproxy-sim/state.json`` between invocations (git-annex keeps its own
in ``<gitdir>/annex/sim/``; the two never share a directory), runs ``visit`` commands in
a scratch directory per simulated repository, draws the initial seed from the system's
entropy, and prints notes and errors exactly as git-annex does (notes on stdout as
``\\n  TEXT\\n``, errors on stderr as ``git-annex: MESSAGE`` and a blank line, status 1).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from annexproxy.errors import AnnexProxyError
from annexproxy.sim import commands as simcommands
from annexproxy.sim.check import check_commands
from annexproxy.sim.engine import Trace, VisitFailed
from annexproxy.sim.report import summary
from annexproxy.sim.rng import to_signed
from annexproxy.sim.session import run_line, show, start
from annexproxy.sim.state import SimState, from_json, to_json
from annexproxy.uuids import RepoUUID

STATE_DIR = "annexproxy-sim"
STATE_FILE = "state.json"
_TRACE_LIMIT = 20000


class _Fail(Exception):
    """Stop with ``git-annex: MESSAGE`` on stderr and status 1."""


def _note(text: str) -> None:
    sys.stdout.write(f"\n  {text}\n")
    sys.stdout.flush()


def _git_dir() -> Path:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--absolute-git-dir"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise _Fail("Not in a git repository.") from exc
    return Path(out.stdout.strip())


class _Place:
    """Where the simulation of this repository lives."""

    def __init__(self) -> None:
        self.git_dir = _git_dir()
        self.dir = self.git_dir / "annex" / STATE_DIR
        self.file = self.dir / STATE_FILE
        # git-annex's scratch repositories are <gitdir>/annex/sim/<UUID>; simulated file
        # names reach path-based terms relative to them (sim.md 8).
        scratch = self.git_dir / "annex" / "sim" / "x"
        self.prefix = os.path.relpath(Path.cwd(), scratch) + "/"
        self.shown = os.path.relpath(self.git_dir / "annex" / "sim" / "state")

    def load(self) -> tuple[SimState, list[Any]]:
        try:
            text = self.file.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise _Fail(
                f"{self.shown}: openFile: does not exist (No such file or directory)"
            ) from exc
        try:
            data = json.loads(text)
            return from_json(data["state"]), list(data.get("trace", []))
        except (KeyError, ValueError, TypeError) as exc:
            raise _Fail("unable to parse sim state file") from exc

    def save(self, state: SimState, trace: Trace | None, old: list[Any] | None = None) -> None:
        samples = list(old or [])
        if trace is not None:
            samples.append({"names": trace.names, "samples": trace.samples})
        tmp = self.file.with_suffix(".tmp")
        payload = {"state": to_json(state), "trace": samples}
        tmp.write_text(json.dumps(payload, separators=(",", ":")), encoding="utf-8")
        tmp.replace(self.file)

    def visit(self, uuid: RepoUUID, name: str, words: Sequence[str]) -> int:
        del name
        where = self.dir / uuid
        where.mkdir(parents=True, exist_ok=True)
        sys.stdout.flush()
        command = ["sh", "-c", " ".join(words)] if words else [os.environ.get("SHELL", "sh")]
        return subprocess.run(command, cwd=where, check=False).returncode


def _initial_seed() -> int:
    return to_signed(random.SystemRandom().getrandbits(64))


def _start(place: _Place, path: str | None, args: argparse.Namespace) -> tuple[SimState, Trace]:
    if place.dir.exists():
        raise _Fail(
            "A sim was previously started. Use `git-annex sim end` to stop it before "
            "starting a new one."
        )
    _note("Sim started.")
    text = None
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise _Fail(f"{path}: openFile: does not exist (No such file or directory)") from exc
    commands = simcommands.parse_sim_file(text) if text is not None else []
    del commands  # parse errors stop here, before the directory exists
    place.dir.mkdir(parents=True)
    trace = Trace()
    state = start(
        text,
        initial_seed=_initial_seed(),
        note=_note,
        visit=place.visit,
        path_prefix=place.prefix,
        trace=trace,
    )
    del args
    return state, trace


def _end(place: _Place) -> None:
    if place.dir.exists():
        shutil.rmtree(place.dir)
    _note("Sim ended.")


def _output(state: SimState, traces: list[Any], args: argparse.Namespace) -> None:
    if args.plot is not None:
        plot_simulation(state, traces, args.plot)
    if args.json:
        sys.stdout.write(json.dumps(summary(state), indent=2) + "\n")


def _dispatch(words: list[str], args: argparse.Namespace) -> int:
    place = _Place()
    if words == ["start"] or (len(words) == 2 and words[0] == "start"):
        state, trace = _start(place, words[1] if len(words) == 2 else None, args)
        place.save(state, trace)
        _output(state, [{"names": trace.names, "samples": trace.samples}], args)
        if state.failed:
            raise _Fail("Simulation had errors.")
        return 0
    if words == ["end"]:
        _end(place)
        return 0
    if words == ["show"]:
        state, traces = place.load()
        if args.json or args.plot is not None:
            _output(state, traces, args)
        else:
            sys.stdout.write(show(state))
        return 0
    if len(words) == 2 and words[0] == "run":
        state, trace = _start(place, words[1], args)
        _end(place)
        _output(state, [{"names": trace.names, "samples": trace.samples}], args)
        if state.failed:
            sys.stdout.write(show(state))
            raise _Fail("Simulation shown above had errors.")
        return 0
    if len(words) == 2 and words[0] == "check":
        return _check(words[1])
    command = simcommands.parse_words(words)
    del command  # parse before loading, like git-annex
    state, traces = place.load()
    trace = Trace()
    newly_failed = run_line(state, words, note=_note, visit=place.visit, path_prefix=place.prefix)
    place.save(state, None, traces)
    del trace
    if newly_failed:
        raise _Fail("Simulation had errors.")
    return 0


def _check(path: str) -> int:
    text = Path(path).read_text(encoding="utf-8")
    found = check_commands(simcommands.parse_sim_file(text))
    for item in found:
        print(item.message())
    if not found:
        print("no unstable preferred content expressions")
    return 1 if found else 0


def run_sim(args: argparse.Namespace) -> int:
    """Run ``annexproxy sim WORDS...``; errors print like git-annex's."""
    words = list(args.words)
    if words[:1] == ["--"]:
        words = words[1:]
    try:
        return _dispatch(words, args)
    except VisitFailed as exc:
        return exc.status
    except (_Fail, AnnexProxyError) as exc:
        sys.stdout.flush()
        sys.stderr.write(f"git-annex: {exc.args[0]}\n\n")
        return 1


def plot_simulation(state: SimState, traces: list[Any], path: Path) -> None:
    """Draw each repository's size over the simulated operations and the final fill.

    Left: one line per repository (its size as it sees itself, in MB) after every
    successful operation. Right: final size and maxsize per repository.

    Raises:
        _Fail: matplotlib is not installed (``pip install annexproxy[sim]``).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise _Fail("--plot needs matplotlib: pip install 'annexproxy[sim]'") from exc
    names = sorted(state.repos)
    series: dict[str, list[float]] = {n: [] for n in names}
    for chunk in traces:
        for sample in chunk.get("samples", []):
            known = dict(zip(chunk.get("names", []), sample, strict=False))
            for name in names:
                series[name].append(known.get(name, 0) / 1e6)
    final = [state.repostate[state.repos[n]].live.get(state.repos[n], 0) / 1e6 for n in names]
    limits = [state.maxsize.get(state.repos[n]) for n in names]
    figure, (over_time, at_end) = plt.subplots(1, 2, figsize=(13, 5.5))
    for name in names:
        values = series[name] or [final[names.index(name)]]
        over_time.plot(range(len(values)), values, label=name)
    over_time.set_xlabel("simulation events (commands and successful operations)")
    over_time.set_ylabel("size (MB)")
    over_time.set_title("Repository sizes during the simulation")
    over_time.legend(fontsize="small", ncol=2 if len(names) > 10 else 1)
    positions = range(len(names))
    at_end.bar(positions, final, label="size")
    for x, limit in zip(positions, limits, strict=True):
        if limit is not None:
            at_end.hlines(limit / 1e6, x - 0.4, x + 0.4, colors="red")
    at_end.plot([], [], color="red", label="maxsize")
    at_end.set_xticks(list(positions), names, rotation=45, ha="right")
    at_end.set_xlabel("repository")
    at_end.set_ylabel("size (MB)")
    at_end.set_title("Final distribution")
    at_end.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
