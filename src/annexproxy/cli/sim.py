"""`annexproxy sim`: its arguments; the work is in `annexproxy.cli.simulate`.

Kept apart so that other commands (``serve`` above all) do not load the simulator and
numpy: a gateway process stays smaller without them.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``sim``."""
    p = sub.add_parser(
        "sim",
        help="simulate a network of repositories (git annex sim)",
        description=(
            "start [FILE] | end | show | run FILE | check FILE | LINE... "
            "(a sim command, e.g. `init foo`). Options go before the words."
        ),
    )
    p.add_argument("--plot", type=Path, help="draw each repository's size to a PNG file")
    p.add_argument("--json", action="store_true", help="print the simulation as JSON")
    p.add_argument("words", nargs=argparse.REMAINDER, help="subcommand or sim command")
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from annexproxy.cli.simulate import run_sim

    return run_sim(args)
