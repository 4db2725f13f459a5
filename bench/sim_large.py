"""Benchmark: a 20-repository, 100,000-file simulation (issue 8: under a minute).

Runs in process through the pure core (no state file): one source repository holding
100,000 files, 19 nodes in a balanced group with maxsizes, every node connected both
ways to the source, then ``step`` and an ``action`` over every file. Prints the time of
each phase and the total. Usage: ``python bench/sim_large.py [FILES] [STEPS]``.
"""

from __future__ import annotations

import sys
import time

from annexproxy.sim import SimState, Simulator, parse_sim_file


def sim_text(files: int, steps: int) -> str:
    """The benchmark's sim file."""
    nodes = [f"n{i:02d}" for i in range(1, 20)]
    lines = ["seed 2024", "init src", *(f"init {n}" for n in nodes)]
    for index, node in enumerate(nodes):
        lines += [
            f"connect src <-> {node}",
            f"group {node} pool",
            f"wanted {node} balanced=pool",
            f"maxsize {node} {20 + index}GB",
        ]
    lines += [
        "wanted src nothing",
        "numcopies 1",
        f"addmulti {files} .dat 1kB 1MB src",
        f"step {steps}",
        "action src sendwanted n01",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Run the benchmark and print timings."""
    files = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    state = SimState(rng=0)
    notes: list[str] = []
    simulator = Simulator(state, note=notes.append)
    started = time.perf_counter()
    for command in parse_sim_file(sim_text(files, steps)):
        begin = time.perf_counter()
        simulator.run(command)
        took = time.perf_counter() - begin
        if took > 0.5:
            print(f"{took:8.2f} s  {command.name} {' '.join(command.args)}")
    total = time.perf_counter() - started
    transfers = sum(1 for line in state.history if line.startswith("present "))
    print(f"repositories {len(state.repos)}, files {len(state.files)}, transfers {transfers}")
    print(f"notes: {notes}")
    print(f"total {total:.1f} s ({'under' if total < 60 else 'OVER'} a minute)")


if __name__ == "__main__":
    main()
