"""wantget.tsv against a repository rebuilt with real git-annex, read through our branch layer.

The vector test (tests/vectors) checks the evaluator on the shared JSON fixture; this one
rebuilds the fixture's repository with git-annex itself, using the generator that made
the vectors (shared/spec/vectors/tools/gen_wantget.py), then answers every row through
`annexproxy.server.wants.Wants` reading that repository's branch, journal, git config
and .gitattributes, as `annexproxy wants` does (issue 4: fixtures rebuilt, not trusted).
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


def test_wantget_rows_from_a_rebuilt_repository(tmp_path: Path) -> None:
    config = json.loads((VECTORS / "tools" / "wg_shared.json").read_text())
    repo, keys = load_generator("gen_wantget").setup(config, str(tmp_path))
    uuid_of = {r["name"]: r["uuid"] for r in config["remotes"]}
    uuid_of["here"] = config["here"]["uuid"]
    rows = read_table("wantget.tsv")
    injected = {item["expr"] for item in config.get("injected", [])}
    checked = 0
    disagreements = []
    with Wants.open(repo) as wants:
        evaluators: dict[tuple[str, str], PreferredContent] = {}
        for row in rows:
            who, expression = row["repo"], row["expression"]
            if expression not in injected and expression not in {
                e["expr"] for e in config["evals"]
            }:
                continue  # a label for a non-preferred-content injection (groupwanted log)
            uuid = RepoUUID(uuid_of[who])
            evaluator = evaluators.get((who, expression))
            if evaluator is None:
                repos = dict(wants.context.repositories)
                repos[uuid] = dataclasses.replace(repos[uuid], wanted=expression)
                context = dataclasses.replace(wants.context, repositories=repos)
                evaluator = evaluators[(who, expression)] = PreferredContent(context)
            key = Key.parse(keys[row["file"]])
            assert str(key) == row["key"]
            got = (
                evaluator.want_get(uuid, key, row["file"]),
                evaluator.want_drop(uuid, key, row["file"]),
            )
            expected = (row["want_get"] == "1", row["want_drop"] == "1")
            checked += 1
            if got != expected:
                disagreements.append((who, expression, row["file"], got, expected))
    assert checked > 4000
    assert disagreements == []
