"""annexproxy-shell and git-annex-shell, each on a gateway with a 3-node cluster, asked the
same things through the cluster and a proxied node (trace 04's conversations).

Replies are compared after replacing each side's gateway, cluster and node UUIDs by names
(-PLUS lists as sorted names) and TIMESTAMP values by N.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest

from annexproxy.testing.p2pscript import parse_script, replay
from annexproxy.testing.realannex import ClusterSetup, annex_env, make_cluster, shell_program

pytestmark = pytest.mark.interop

CLIENT = "506f13e8-32ba-4e70-a3c2-46fb079139b1"
CONTENT = b"eighth file via cluster\n"
KEY = f"SHA256E-s24--{hashlib.sha256(CONTENT).hexdigest()}.txt"
HELLO = "SHA256E-s6--5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03.txt"
V4 = "S: AUTH-SUCCESS X\nC: VERSION 4\nS: VERSION 4\n"
PUT = f"C: PUT n8.txt {KEY}\nS: PUT-FROM 0\nC: DATA 24\nC: <bytes: {CONTENT!r}>\nC: VALID\n"

# (name, target, script)
SCENARIOS = [
    (
        "cluster-v4",
        "cluster",
        V4 + f"C: CHECKPRESENT {KEY}\nS: FAILURE\n" + PUT + "S: SUCCESS-PLUS\n"
        f"C: PUT n8.txt {KEY}\nS: ALREADY-HAVE-PLUS\nC: CHECKPRESENT {KEY}\nS: SUCCESS\n"
        f"C: LOCKCONTENT {KEY}\nS: FAILURE\nC: GET 0 n8.txt {KEY}\nS: DATA 24\n"
        f"S: <24 bytes: {CONTENT!r}>\nS: VALID\nC: SUCCESS\nC: GETTIMESTAMP\nS: TIMESTAMP 1\n"
        f"C: REMOVE-BEFORE 1 {KEY}\nS: FAILURE\nC: REMOVE {KEY}\nS: SUCCESS-PLUS\n"
        "C: NOTIFYCHANGE\nS: ERROR protocol error\nS: <EOF>\n",
    ),
    (
        "cluster-v1",
        "cluster",
        "S: AUTH-SUCCESS X\nC: VERSION 1\nS: VERSION 1\n" + PUT + f"S: SUCCESS\nC: REMOVE {KEY}\n"
        "S: SUCCESS\n",
    ),
    (
        "node",
        "node1",
        V4 + PUT + f"S: SUCCESS\nC: LOCKCONTENT {KEY}\nS: SUCCESS\nC: UNLOCKCONTENT\n"
        f"C: REMOVE {KEY}\nS: SUCCESS\n",
    ),
    ("second-version", "cluster", V4 + "C: VERSION 4\nS: ERROR protocol error\nS: <EOF>\n"),
    (
        "unparsable-after-version",
        "cluster",
        V4 + f"C: FROBNICATE\nC: CHECKPRESENT {HELLO}\nS: FAILURE\n",
    ),
    (
        "unparsable-later",
        "cluster",
        V4 + f"C: CHECKPRESENT {HELLO}\nS: FAILURE\nC: FROBNICATE\nS: <EOF>\n",
    ),
    ("node-unparsable", "node1", V4 + "C: FROBNICATE\nS: <EOF>\n"),
    ("client-error", "cluster", V4 + "C: ERROR bye\nS: <EOF>\n"),
    ("unknown-uuid", "unknown", "S: <EOF>\n"),
]

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _names(setup: ClusterSetup) -> dict[str, str]:
    names = {setup.gateway.uuid: "GATEWAY", setup.cluster_uuid: "CLUSTER"}
    names.update({node.uuid: f"NODE{i}" for i, node in enumerate(setup.nodes, 1)})
    return names


def _normalise(lines: list[str], names: dict[str, str]) -> list[str]:
    out = []
    for line in lines:
        line = _UUID.sub(lambda m: names.get(m.group(0), "OTHER"), line)
        words = line.split(" ")
        if words[0].endswith("-PLUS"):
            line = " ".join([words[0], *sorted(words[1:])])
        if words[0] == "TIMESTAMP":
            line = "TIMESTAMP N"
        out.append(line)
    return out


def _play(program: str, setup: ClusterSetup, target: str, script: str) -> tuple[list[str], int]:
    uuid = {
        "cluster": setup.cluster_uuid,
        "node1": setup.nodes[0].uuid,
        "unknown": "11111111-2222-3333-4444-555555555555",
    }[target]
    argv = [program, "p2pstdio", str(setup.gateway.path), CLIENT, "--uuid", uuid]
    got = replay(argv, parse_script(script), cwd=setup.gateway.path, env=annex_env(), timeout=30)
    assert got.exit_status is not None
    return _normalise(got.received, _names(setup)), got.exit_status


@pytest.fixture(scope="module")
def gateways(tmp_path_factory: pytest.TempPathFactory) -> tuple[ClusterSetup, ClusterSetup]:
    return (
        make_cluster(tmp_path_factory.mktemp("theirs")),
        make_cluster(tmp_path_factory.mktemp("ours")),
    )


@pytest.mark.parametrize(("name", "target", "script"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_gateway_answers_like_git_annex(
    name: str, target: str, script: str, gateways: tuple[ClusterSetup, ClusterSetup]
) -> None:
    theirs, ours = gateways
    reference = _play(shutil.which("git-annex-shell") or "git-annex-shell", theirs, target, script)
    got = _play(shell_program(), ours, target, script)
    assert got == reference
    assert Path(ours.gateway.path).is_dir()
