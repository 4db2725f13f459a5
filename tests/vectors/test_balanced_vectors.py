"""Every row of shared/spec/vectors/balanced.tsv, reproduced from balanced-fixture.json.

Each scenario gives the group members, trust changes, maxsizes, threshold, numcopies and
every logged location (filler keys included); repository sizes are recomputed from the
locations with `RepoSizeTracker` and checked against ``git annex maxsize --bytes``. For
each row the expression is every member's preferred content and the members whose
want-get / want-drop matched are compared (vectors/README.md section 1).
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from annexproxy.keys import Key
from annexproxy.preferred import MatchContext, PreferredContent, Repository, TrustLevel
from annexproxy.space import RepoSizeTracker, parse_size
from annexproxy.uuids import RepoUUID

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "spec" / "vectors"
FIXTURE: dict[str, Any] = json.loads(
    (VECTORS / "balanced-fixture.json").read_text(encoding="utf-8")
)
TRUST_COMMANDS = {
    "untrust": TrustLevel.UNTRUSTED,
    "dead": TrustLevel.DEAD,
    "trusted": TrustLevel.TRUSTED,
    "semitrust": TrustLevel.SEMITRUSTED,
}


def _load_rows() -> list[dict[str, str]]:
    with (VECTORS / "balanced.tsv").open(encoding="utf-8", newline="") as handle:
        lines = [line for line in handle if not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))


ROWS = _load_rows()
MEMBERS = {m["name"]: RepoUUID(m["uuid"]) for m in FIXTURE["members"]}
HERE = RepoUUID(FIXTURE["here"]["uuid"])
UUID_OF = {**MEMBERS, FIXTURE["here"]["name"]: HERE}
FILES = {Key.parse(k): f"k{i:03d}" for i, k in enumerate(FIXTURE["keys"])}


@dataclasses.dataclass
class Scenario:
    context: MatchContext
    sizes: RepoSizeTracker
    raw: dict[str, Any]

    def evaluator(self, expression: str, *, rebalance: bool) -> PreferredContent:
        repos = {
            u: dataclasses.replace(r, wanted=expression) if u in MEMBERS.values() else r
            for u, r in self.context.repositories.items()
        }
        return PreferredContent(
            dataclasses.replace(self.context, repositories=repos, rebalance=rebalance)
        )


def build_scenario(raw: dict[str, Any]) -> Scenario:
    group = FIXTURE["group"]
    in_group = set(raw["group_members"])
    repos: dict[RepoUUID, Repository] = {HERE: Repository(uuid=HERE, description="main")}
    for name, uuid in MEMBERS.items():
        maxsize = raw["maxsize"].get(name)
        repos[uuid] = Repository(
            uuid=uuid,
            trust=TRUST_COMMANDS[raw["trust"].get(name, "semitrust")],
            groups=frozenset({group}) if name in in_group else frozenset(),
            maxsize=None if maxsize is None else parse_size(maxsize),
        )
    locations = {
        Key.parse(k): frozenset(UUID_OF[n] for n in names) for k, names in raw["locations"].items()
    }
    sizes = RepoSizeTracker.from_locations(locations, known=repos)
    threshold = raw["annex.fullybalancedthreshhold"]
    context = MatchContext(
        here=HERE,
        repositories=repos,
        locations=lambda key: locations.get(key, frozenset()),
        numcopies=raw["numcopies"],
        sizes=sizes,
        fully_balanced_threshold=90.0 if threshold is None else float(threshold),
    )
    return Scenario(context, sizes, raw)


SCENARIOS = {raw["name"]: build_scenario(raw) for raw in FIXTURE["scenarios"]}


def test_vector_file_is_complete() -> None:
    assert len(ROWS) == 9680


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_sizes_match_git_annex_maxsize_overview(name: str) -> None:
    scenario = SCENARIOS[name]
    reported = {}
    for line in scenario.raw["maxsize_overview_as_reported"][1:]:
        fields = line.split()
        reported[RepoUUID(fields[-3] if fields[-2] == "--" else fields[-4])] = int(fields[0])
    for uuid, size in reported.items():
        assert scenario.sizes.size_of(uuid) == size


def _names(evaluator: PreferredContent, key: Key, *, drop: bool) -> str:
    chosen = []
    for name, uuid in sorted(MEMBERS.items()):
        if drop:
            answer = evaluator.want_drop(uuid, key, FILES[key])
        else:
            answer = evaluator.want_get(uuid, key, FILES[key])
        if answer:
            chosen.append(name)
    return " ".join(chosen) or "-"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_balanced_row(name: str) -> None:
    scenario = SCENARIOS[name]
    rows = [r for r in ROWS if r["scenario"] == name]
    assert rows
    evaluators: dict[tuple[str, bool], PreferredContent] = {}
    mismatches = []
    for row in rows:
        ident = (row["expression"], row["rebalance"] == "yes")
        if ident not in evaluators:
            evaluators[ident] = scenario.evaluator(ident[0], rebalance=ident[1])
        evaluator = evaluators[ident]
        key = Key.parse(row["key"])
        got = (_names(evaluator, key, drop=False), _names(evaluator, key, drop=True))
        if got != (row["want_get_by"], row["want_drop_by"]):
            mismatches.append((row["expression"], row["rebalance"], row["key"], got))
    assert mismatches == []
