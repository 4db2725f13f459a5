"""balanced.tsv against repositories rebuilt with git-annex's own generator.

Each scenario's repository is built by shared/spec/vectors/tools/gen_balanced.py (real
git-annex: directory special remotes with fixed UUIDs, groups, trust, maxsize, threshold,
fromkey, setpresentkey), then every row is answered through
`annexproxy.server.wants.Wants` reading that repository (issue 4: fixtures rebuilt).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from annexproxy.keys import Key
from annexproxy.preferred import PreferredContent
from annexproxy.server.wants import Wants
from annexproxy.testing.vectors import VECTORS, load_generator, read_table
from annexproxy.uuids import RepoUUID

pytestmark = [pytest.mark.interop, pytest.mark.slow]


def _rows() -> dict[tuple[str, str, str, str], tuple[str, str]]:
    return {
        (r["scenario"], r["rebalance"], r["expression"], r["key"]): (
            r["want_get_by"],
            r["want_drop_by"],
        )
        for r in read_table("balanced.tsv")
    }


def test_balanced_rows_from_rebuilt_repositories(tmp_path: Path) -> None:
    generator = load_generator("gen_balanced")
    config = json.loads((VECTORS / "tools" / "bal_shared.json").read_text())
    keys = generator.make_keys(config)
    expected = _rows()
    members = [(m["name"], RepoUUID(m["uuid"])) for m in config["members"]]
    checked = 0
    disagreements = []
    for scenario in config["scenarios"]:
        scenario["locations"] = generator.scenario_locations(config, scenario, keys)
        repo = generator.build(config, scenario, str(tmp_path), keys)
        with Wants.open(repo) as wants:
            for evaluation in scenario["evals"]:
                expression = evaluation["expr"]
                rebalance = bool(evaluation.get("rebalance"))
                repos = dict(wants.context.repositories)
                for _, uuid in members:
                    repos[uuid] = dataclasses.replace(repos[uuid], wanted=expression)
                evaluator = PreferredContent(
                    dataclasses.replace(wants.context, repositories=repos, rebalance=rebalance)
                )
                for text in keys:
                    key = Key.parse(text)
                    get = [n for n, u in members if evaluator.want_get(u, key)]
                    drop = [n for n, u in members if evaluator.want_drop(u, key)]
                    got = (" ".join(sorted(get)) or "-", " ".join(sorted(drop)) or "-")
                    row = (scenario["name"], "yes" if rebalance else "no", expression, text)
                    checked += 1
                    if expected[row] != got:
                        disagreements.append((row, got, expected[row]))
    assert checked == len(expected)
    assert disagreements[:5] == []
