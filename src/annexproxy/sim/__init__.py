"""``annexproxy sim``: git-annex's simulator of a network of repositories, bit for bit.

Pure core (sim.md): the sim language (`commands`), the state (`state`), git-annex's
random numbers (`rng`), the engine (`engine`) evaluating preferred content with the
gateway's evaluator (`wants`), whole invocations (`session`), the stability report
(`report`) and the static check of unstable expressions (`check`). No I/O: the CLI
(``annexproxy.cli.sim``) reads and writes the state file, runs ``visit`` and prints.
"""

from annexproxy.sim.commands import SimParseError, parse_line, parse_sim_file
from annexproxy.sim.engine import SimError, Simulator, Trace, VisitFailed
from annexproxy.sim.session import run_line, show, start
from annexproxy.sim.state import SimState

__all__ = [
    "SimError",
    "SimParseError",
    "SimState",
    "Simulator",
    "Trace",
    "VisitFailed",
    "parse_line",
    "parse_sim_file",
    "run_line",
    "show",
    "start",
]
