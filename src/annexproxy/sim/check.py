"""Static check of a sim file: expressions git-annex will not use because they are unstable.

git-annex evaluates an expression with a negated ``present`` (or a term that expands to
one: ``balanced=``, ``sizebalanced=``, ``standard``/``groupwanted`` falling back to
``present``) as false for every file (preferred-content.md section 12), which a
simulation then shows only as content that never moves. `check_commands` replays the
configuration commands of a sim file and reports every repository whose effective
preferred content is unstable at some point. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from annexproxy.sim.commands import Command
from annexproxy.sim.engine import Simulator
from annexproxy.sim.state import SimState

#: Commands that only move content or check it: skipped by the static check.
_SKIPPED = frozenset(
    {"step", "stepstable", "action", "visit", "present", "notpresent", "use", "addtree"}
)


@dataclass(frozen=True, slots=True)
class Unstable:
    """A repository whose preferred content git-annex will ignore.

    Attributes:
        line: 1-based line number of the command after which it was seen.
        repository: the repository name.
        expression: its preferred content (wanted, or required when only that is set).
        terms: the negated unstable terms.
    """

    line: int
    repository: str
    expression: str
    terms: tuple[str, ...]

    def message(self) -> str:
        """git-annex's ``--explain`` wording for it."""
        terms = ", ".join(self.terms)
        return (
            f"line {self.line}: {self.repository}: preferred content expression "
            f'"{self.expression}" is not stable due to negated use of {terms}, '
            "so will not be used"
        )


def check_commands(commands: Sequence[Command], *, initial_seed: int = 0) -> list[Unstable]:
    """Replay the configuration of a sim file and list the unstable expressions.

    Raises:
        SimError: a configuration command fails (unknown repository, bad expression).
    """
    state = SimState(rng=initial_seed)
    simulator = Simulator(state)
    found: dict[tuple[str, str], Unstable] = {}
    for number, command in enumerate(commands, start=1):
        if command.name in _SKIPPED:
            continue
        simulator.run(command)
        if not state.repos:
            continue
        evaluator = simulator.wants.evaluator(next(iter(state.repostate)))
        for name, uuid in sorted(state.repos.items()):
            matcher = evaluator.preferred(uuid)
            if matcher is None or matcher.stable:
                continue
            expression = state.wanted.get(uuid) or state.required.get(uuid) or ""
            if (name, expression) not in found:
                found[(name, expression)] = Unstable(
                    number, name, expression, matcher.unstable_terms
                )
    return list(found.values())
