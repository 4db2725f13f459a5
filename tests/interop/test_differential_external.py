"""annexproxy-shell and git-annex-shell, each on a gateway proxying an external remote,
asked the same P2P questions about it; the replies and what each asked the program are
compared (UUIDs replaced by names, temp file paths by TMP).

Seen with git-annex 10.20261026: its gateway spools through
``annex/othertmp/proxy.0/<keyfile>`` (we use ``annex/tmp/annexproxy-*``), asks GETORDERED
right before the first RETRIEVE, answers GETGITDIR with the absolute bare repository path
(git-annex-shell is given an absolute directory), and LOCKCONTENT is FAILURE without
asking the program anything.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest

from annexproxy.testing.p2pscript import parse_script, replay
from annexproxy.testing.proxygateway import make_proxy_gateway
from annexproxy.testing.realannex import AnnexRepo, annex_env, shell_program

pytestmark = [pytest.mark.interop, pytest.mark.slow]

CLIENT = "506f13e8-32ba-4e70-a3c2-46fb079139b1"
CONTENT = b"eighth file via external\n"
KEY = f"SHA256E-s{len(CONTENT)}--{hashlib.sha256(CONTENT).hexdigest()}.txt"
V4 = "S: AUTH-SUCCESS X\nC: VERSION 4\nS: VERSION 4\n"
PUT = (
    f"C: PUT n8.txt {KEY}\nS: PUT-FROM 0\nC: DATA {len(CONTENT)}\n"
    f"C: <bytes: {CONTENT!r}>\nC: VALID\n"
)
GET = (
    f"C: GET 0 n8.txt {KEY}\nS: DATA {len(CONTENT)}\n"
    f"S: <{len(CONTENT)} bytes: {CONTENT!r}>\nS: VALID\nC: SUCCESS\n"
)
SCRIPT = (
    V4 + f"C: CHECKPRESENT {KEY}\nS: FAILURE\n" + PUT + "S: SUCCESS\n"
    f"C: CHECKPRESENT {KEY}\nS: SUCCESS\nC: LOCKCONTENT {KEY}\nS: FAILURE\n" + GET
    + f"C: REMOVE {KEY}\nS: SUCCESS\nC: CHECKPRESENT {KEY}\nS: FAILURE\n"
    "C: NOTIFYCHANGE\nS: ERROR protocol error\nS: <EOF>\n"
)  # fmt: skip
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _gateway(top: Path) -> tuple[AnnexRepo, Path]:
    store = top / "store"
    store.mkdir(parents=True)
    params = ["type=external", "externaltype=testdir", "encryption=none", f"directory={store}"]
    # With a cost configured, neither gateway asks the program GETCOST.
    gateway = make_proxy_gateway(
        top / "gateway", {"ext": params}, remote_config={"annex-cost": "200"}
    )
    return gateway, store


def _play(program: str, gateway: AnnexRepo, store: Path) -> tuple[list[str], list[str]]:
    uuid = gateway.git("config", "remote.ext.annex-uuid").stdout.strip()
    names = {uuid: "EXT", gateway.uuid: "GATEWAY"}
    argv = [program, "p2pstdio", str(gateway.path), CLIENT, "--uuid", uuid]
    got = replay(argv, parse_script(SCRIPT), cwd=gateway.path, env=annex_env(), timeout=60)
    assert got.exit_status is not None
    received = [_UUID.sub(lambda m: names.get(m.group(0), "OTHER"), s) for s in got.received]
    trace = (store / "trace.log").read_text().replace(str(gateway.path), "GATEWAYDIR")
    trace = _UUID.sub(lambda m: names.get(m.group(0), "OTHER"), trace)
    asked = [re.sub(r"^(TRANSFER \S+ \S+) .*$", r"\1 TMP", line) for line in trace.splitlines()]
    return received, asked


@pytest.mark.usefixtures("program_on_path")
def test_proxied_external_remote_answers_like_git_annex(tmp_path: Path) -> None:
    theirs = _play(shutil.which("git-annex-shell") or "git-annex-shell", *_gateway(tmp_path / "t"))
    ours = _play(shell_program(), *_gateway(tmp_path / "o"))
    assert ours[0] == theirs[0]
    # The program is asked the same things in the same order, except that
    # SpecialRemoteStorage asks CHECKPRESENT more often (before storing, for LOCKCONTENT,
    # to find a chunk layout before retrieving, before REMOVE).
    assert _moving(ours[1]) == _moving(theirs[1])
    assert set(ours[1]) >= set(theirs[1])
    # PREPARE: GETUUID, GETGITDIR, GETGITREMOTENAME and an unset GETCONFIG answered alike.
    assert ours[1][:4] == theirs[1][:4] == ["VALUE EXT", "VALUE GATEWAYDIR", "VALUE ext", "VALUE "]


def _moving(asked: list[str]) -> list[str]:
    return [s for s in asked if not s.startswith(("CHECKPRESENT ", "VALUE "))]
