"""Every row of shared/spec/vectors/wantget.tsv, reproduced from wantget-fixture.json.

The fixture lists the repositories (groups, trust, required content, preferreddir), the
files with their keys, logged locations, metadata and URLs, numcopies, .gitattributes and
groupwanted expressions. For each (repository, expression) of the TSV the repository's
preferred content is set to the expression and want-get / want-drop are compared with
what git-annex 10.20261026 answered (preferred-content.md, vectors/README.md section 2).
"""

from __future__ import annotations

import csv
import dataclasses
import fnmatch
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from annexproxy.keys import Key
from annexproxy.preferred import MatchContext, PreferredContent, Repository, TrustLevel
from annexproxy.space import RepoSizeTracker
from annexproxy.uuids import RepoUUID

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "spec" / "vectors"


def _load_rows() -> list[dict[str, str]]:
    with (VECTORS / "wantget.tsv").open(encoding="utf-8", newline="") as handle:
        lines = [line for line in handle if not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))


def _numcopies_attr(gitattributes: str) -> Any:
    rules: list[tuple[str, int]] = []
    for line in gitattributes.splitlines():
        pattern, _, attr = line.partition(" ")
        name, _, value = attr.partition("=")
        if name == "annex.numcopies":
            rules.append((pattern, int(value)))

    def lookup(path: str) -> int | None:
        found = None
        for pattern, value in rules:  # later lines win, like git
            if fnmatch.fnmatchcase(path, pattern) and path.count("/") == pattern.count("/"):
                found = value
        return found

    return lookup


class Fixture:
    def __init__(self) -> None:
        data = json.loads((VECTORS / "wantget-fixture.json").read_text(encoding="utf-8"))
        self.uuid_of: dict[str, RepoUUID] = {data["here"]["name"]: RepoUUID(data["here"]["uuid"])}
        repos: dict[RepoUUID, Repository] = {}
        here = data["here"]
        repos[RepoUUID(here["uuid"])] = Repository(
            uuid=RepoUUID(here["uuid"]),
            description=here.get("desc", ""),
            groups=frozenset(here.get("groups", [])),
        )
        for remote in data["remotes"]:
            uuid = RepoUUID(remote["uuid"])
            self.uuid_of[remote["name"]] = uuid
            groups = list(remote.get("groups", []))
            groups += remote.get("groups_after_dead", [])
            extra = dict(x.split("=", 1) for x in remote.get("initremote_extra", []))
            repos[uuid] = Repository(
                uuid=uuid,
                trust=TrustLevel.from_name(remote.get("trust", "semitrusted"))
                or TrustLevel.SEMITRUSTED,
                groups=frozenset(groups),
                required=remote.get("required"),
                preferreddir=extra.get("preferreddir"),
            )
        self.repos = repos
        self.here = RepoUUID(here["uuid"])
        self.keys = {path: Key.parse(text) for path, text in data["keys"].items()}
        self.locations = {
            self.keys[path]: frozenset(RepoUUID(u) for u in uuids)
            for path, uuids in data["logged_locations"].items()
        }
        self.local = {
            self.keys[f["path"]] for f in data["files"] if "here" in f.get("locations", [])
        }
        self.metadata: dict[Key, dict[str, set[str]]] = {}
        self.urls: dict[Key, tuple[str, ...]] = {}
        for f in data["files"]:
            key = self.keys[f["path"]]
            fields: dict[str, set[str]] = defaultdict(set)
            for item in f.get("metadata", []):
                name, _, value = item.partition("=")
                fields[name].add(value)
            self.metadata[key] = dict(fields)
            self.urls[key] = tuple(f.get("urls", []))
        self.sizes = RepoSizeTracker.from_locations(self.locations, known=repos)
        self.base = MatchContext(
            here=self.here,
            repositories=repos,
            locations=lambda key: self.locations.get(key, frozenset()),
            group_wanted=data["groupwanted"],
            numcopies=data["numcopies"],
            numcopies_attr=_numcopies_attr(data["gitattributes"]),
            here_has=lambda key: key in self.local,
            metadata=lambda key: self.metadata.get(key, {}),
            urls=lambda key: self.urls.get(key, ()),
            sizes=self.sizes,
        )

    def evaluator(self, repo: str, expression: str) -> PreferredContent:
        uuid = self.uuid_of[repo]
        repos = dict(self.repos)
        repos[uuid] = dataclasses.replace(repos[uuid], wanted=expression)
        return PreferredContent(dataclasses.replace(self.base, repositories=repos))


ROWS = _load_rows()


def test_vector_file_is_complete() -> None:
    assert len(ROWS) == 5076


def test_every_wantget_row() -> None:
    fixture = Fixture()
    evaluators: dict[tuple[str, str], PreferredContent] = {}
    mismatches = []
    for row in ROWS:
        ident = (row["repo"], row["expression"])
        if ident not in evaluators:
            evaluators[ident] = fixture.evaluator(*ident)
        evaluator = evaluators[ident]
        uuid = fixture.uuid_of[row["repo"]]
        key = Key.parse(row["key"])
        assert key == fixture.keys[row["file"]]
        got_get = evaluator.want_get(uuid, key, row["file"])
        got_drop = evaluator.want_drop(uuid, key, row["file"])
        expected = (row["want_get"] == "1", row["want_drop"] == "1")
        if (got_get, got_drop) != expected:
            mismatches.append((row["repo"], row["expression"], row["file"], expected))
    assert mismatches == []


@pytest.mark.parametrize(
    ("expression", "file", "wanted"),
    [
        ("include=*.mp3", "song.mp3", True),
        ("include=*.mp3", "Music/Song.MP3", False),
        ("include=photos/IMG[[:space:]]1.jpg", "photos/IMG 1.jpg", True),
        ("smallerthan=1", "remote/url.bin", True),
        ("foo=bar", "song.mp3", True),
        ("foo=bar", "docs/archive/report.pdf", False),
    ],
)
def test_worked_examples(expression: str, file: str, wanted: bool) -> None:
    fixture = Fixture()
    evaluator = fixture.evaluator("here", expression)
    assert evaluator.want_get(fixture.here, fixture.keys[file], file) is wanted
