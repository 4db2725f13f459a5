"""Ask annexproxy-shell and git-annex-shell the same things; their answers must agree.

Each scenario is one or more connections in the trace format of shared/spec/traces
(`annexproxy.testing.p2pscript`), replayed against both servers on twin repositories.
Replies are compared after replacing the served repository's UUID by a name and TIMESTAMP
values by ``N``. The recorded traces 01 and 03 are also checked literally.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from annexproxy.testing.p2pscript import (
    Replay,
    expected_lines,
    normalise,
    parse_script,
    replay,
    sections,
)
from annexproxy.testing.realannex import AnnexRepo, add_file, annex_env, shell_program

pytestmark = pytest.mark.interop

TRACES = Path(__file__).resolve().parents[3] / "shared" / "spec" / "traces"
CLIENT = "506f13e8-32ba-4e70-a3c2-46fb079139b1"
TRACE_SERVER = "b9ea2830-9f27-4383-8602-ecfef4699f7e"
HELLO = "SHA256E-s6--5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03.txt"
MISSING = "SHA256E-s5--0000000000000000000000000000000000000000000000000000000000000000"


def sha_key(content: bytes, ext: str = ".bin") -> str:
    return f"SHA256E-s{len(content)}--{hashlib.sha256(content).hexdigest()}{ext}"


BIG = bytes(i % 251 for i in range(20000))
BIGKEY = sha_key(BIG)
SMALL = b"hello world"
SMALLKEY = sha_key(SMALL, ".txt")
WRONG = b"HELLO WORLD"


@dataclass(frozen=True)
class Scenario:
    connections: list[str]
    env: dict[str, str] = field(default_factory=dict)
    extra_args: tuple[str, ...] = ()


AUTH = "S: AUTH-SUCCESS SERVER\n"
V4 = AUTH + "C: VERSION 4\nS: VERSION 4\n"

SCENARIOS: dict[str, Scenario] = {
    "put-interrupted-then-resumed": Scenario(
        [
            V4 + f"C: PUT data/big.bin {BIGKEY}\nS: PUT-FROM 0\nC: DATA 20000\n"
            f"C: <bytes: {BIG[:8000]!r}>\nC: <close stdin>\nS: FAILURE\nS: <EOF>\n",
            V4 + f"C: PUT data/big.bin {BIGKEY}\nS: PUT-FROM 8000\nC: DATA 12000\n"
            f"C: <bytes: {BIG[8000:]!r}>\nC: VALID\nS: SUCCESS\n"
            f"C: CHECKPRESENT {BIGKEY}\nS: SUCCESS\nC: PUT x {BIGKEY}\nS: ALREADY-HAVE\n",
        ]
    ),
    "put-wrong-content-then-invalid": Scenario(
        [
            V4 + f"C: PUT s.txt {SMALLKEY}\nS: PUT-FROM 0\nC: DATA 11\nC: <bytes: {WRONG!r}>\n"
            f"C: VALID\nS: FAILURE\nC: CHECKPRESENT {SMALLKEY}\nS: FAILURE\n"
            f"C: PUT s.txt {SMALLKEY}\nS: PUT-FROM 0\nC: DATA 11\nC: <bytes: {SMALL!r}>\n"
            f"C: INVALID\nS: SUCCESS\nC: CHECKPRESENT {SMALLKEY}\nS: SUCCESS\n"
        ]
    ),
    "data-present": Scenario(
        [
            V4 + f"C: PUT s.txt {SMALLKEY}\nS: PUT-FROM 0\nC: DATA-PRESENT\nS: FAILURE\n"
            f"C: PUT h.txt {HELLO}\nS: ALREADY-HAVE\n",
            AUTH + f"C: VERSION 3\nS: VERSION 3\nC: PUT s.txt {SMALLKEY}\nS: PUT-FROM 0\n"
            "C: DATA-PRESENT\nS: ERROR expected DATA\nC: GETTIMESTAMP\nS: TIMESTAMP 1\n",
        ]
    ),
    "v0-put-and-get": Scenario(
        [
            AUTH + f"C: PUT s.txt {SMALLKEY}\nS: PUT-FROM 0\nC: DATA 11\nC: <bytes: {SMALL!r}>\n"
            f"S: SUCCESS\nC: GET 6 s.txt {SMALLKEY}\nS: DATA 5\nS: <5 bytes: b'world'>\n"
            f"C: SUCCESS\nC: GET 0 m {MISSING}\nS: DATA 0\nC: FAILURE\n"
            "C: GETTIMESTAMP\nS: TIMESTAMP 1\n"
        ]
    ),
    "remove-and-recheck": Scenario(
        [
            V4 + f"C: REMOVE {HELLO}\nS: SUCCESS\nC: CHECKPRESENT {HELLO}\nS: FAILURE\n"
            f"C: REMOVE {HELLO}\nS: SUCCESS\nC: LOCKCONTENT {HELLO}\nS: FAILURE\n"
            f"C: GET 0 hello.txt {HELLO}\nS: DATA 0\nS: INVALID\nC: FAILURE\n"
            f"C: GETTIMESTAMP\nS: TIMESTAMP 1\nC: REMOVE-BEFORE 999999999 {MISSING}\nS: SUCCESS\n"
        ]
    ),
    "lock-then-misc": Scenario(
        [
            V4 + f"C: LOCKCONTENT {HELLO}\nS: SUCCESS\nC: CHECKPRESENT {HELLO}\n"
            "S: ERROR expected UNLOCKCONTENT\n"
            f"C: LOCKCONTENT {HELLO}\nS: SUCCESS\nC: UNLOCKCONTENT\n"
            f"C: REMOVE-BEFORE 999999999 {HELLO}\nS: SUCCESS\n"
        ]
    ),
    "protocol-errors": Scenario(
        [
            V4 + "C: version 4\nS: ERROR unknown command\nC: VALID\nS: ERROR unexpected command\n"
            f"C: GET x y {HELLO}\nS: ERROR unknown command\nC: DATA 3\n"
            "S: ERROR unexpected command\nC: PUT-FROM 3\nS: ERROR unexpected command\n"
            f"C: GET 0  {HELLO}\nS: DATA 6\nS: <6 bytes: b'hello\\n'>\nS: VALID\nC: VALID\n"
            "S: ERROR expected SUCCESS or SUCCESS-PLUS or FAILURE or FAILURE-PLUS\n"
            f"C: PUT  {SMALLKEY}\nS: PUT-FROM 0\nC: VALID\nS: ERROR expected DATA\n"
            f"C: PUT  {SMALLKEY}\nS: PUT-FROM 0\nC: DATA 11\nC: <bytes: {SMALL!r}>\n"
            "C: SUCCESS\nS: ERROR expected VALID or INVALID\nS: SUCCESS\n"
            f"C: CHECKPRESENT {SMALLKEY}\nS: SUCCESS\n"
            "C: VERSION 9\nS: VERSION 4\nC: BYPASS a b c\nC: GETTIMESTAMP\nS: TIMESTAMP 1\n"
            "C: ERROR bye\nS: <EOF>\n"
        ]
    ),
    "put-cancelled-with-error": Scenario(
        [
            V4 + f"C: PUT  {SMALLKEY}\nS: PUT-FROM 0\nC: ERROR changed my mind\n"
            "C: GETTIMESTAMP\nS: TIMESTAMP 1\n"
        ]
    ),
    "read-only": Scenario(
        [
            V4
            + f"C: PUT x {SMALLKEY}\nS: ERROR this repository is read-only; write access denied\n"
            f"C: REMOVE {HELLO}\nS: ERROR this repository is read-only; write access denied\n"
            f"C: LOCKCONTENT {HELLO}\nS: SUCCESS\nC: UNLOCKCONTENT\n"
            f"C: GET 0  {HELLO}\nS: DATA 6\nS: <6 bytes: b'hello\\n'>\nS: VALID\nC: SUCCESS\n"
            "C: CONNECT git-receive-pack\n"
            "S: ERROR this repository is read-only; write access denied\nS: <EOF>\n"
        ],
        env={"GIT_ANNEX_SHELL_READONLY": "1"},
    ),
    "append-only": Scenario(
        [
            V4 + f"C: REMOVE {HELLO}\nS: ERROR this repository is append-only; removal denied\n"
            f"C: REMOVE-BEFORE 99999999 {HELLO}\n"
            "S: ERROR this repository is append-only; removal denied\n"
            f"C: PUT x {SMALLKEY}\nS: PUT-FROM 0\nC: DATA 11\nC: <bytes: {SMALL!r}>\nC: VALID\n"
            "S: SUCCESS\n"
        ],
        env={"GIT_ANNEX_SHELL_APPENDONLY": "1"},
    ),
    "line-too-long": Scenario([V4 + "C: CHECKPRESENT " + "A" * 40000 + "\nS: <EOF>\n"]),
    "notifychange-unavailable": Scenario([V4 + "C: NOTIFYCHANGE\nS: <EOF>\n"]),
    "connect-unavailable": Scenario([V4 + "C: CONNECT git-upload-pack\nS: <EOF>\n"]),
    "uuid-mismatch": Scenario(
        ["S: <EOF>\n"], extra_args=("--uuid", "11111111-2222-3333-4444-555555555555")
    ),
    "directory-restricted": Scenario(
        ["S: <EOF>\n"], env={"GIT_ANNEX_SHELL_DIRECTORY": "/srv/other"}
    ),
}


@pytest.fixture
def twins(annex_repo_factory: Callable[..., AnnexRepo]) -> tuple[AnnexRepo, AnnexRepo]:
    ours = annex_repo_factory("ours")
    theirs = annex_repo_factory("theirs")
    for repo in (ours, theirs):
        assert add_file(repo, "hello.txt", b"hello\n") == HELLO
    return ours, theirs


def _play(program: str, repo: AnnexRepo, scenario: Scenario) -> list[tuple[list[str], int | None]]:
    results: list[tuple[list[str], int | None]] = []
    for script in scenario.connections:
        argv = [program, "p2pstdio", str(repo.path), CLIENT, *scenario.extra_args]
        got: Replay = replay(
            argv, parse_script(script), cwd=repo.path, env=annex_env(scenario.env), timeout=20
        )
        results.append((normalise(got.received, {repo.uuid: "SERVER"}), got.exit_status))
    return results


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_same_answers_as_git_annex_shell(name: str, twins: tuple[AnnexRepo, AnnexRepo]) -> None:
    ours, theirs = twins
    scenario = SCENARIOS[name]
    reference = _play(shutil.which("git-annex-shell") or "git-annex-shell", theirs, scenario)
    got = _play(shell_program(), ours, scenario)
    assert got == reference
    # The scripts also say what the reference answers, so a drift in git-annex shows up.
    for (lines, _status), script in zip(reference, scenario.connections, strict=True):
        assert lines == normalise(expected_lines(parse_script(script)), {})


def _trace_section(trace: str, name: str | None = None) -> str:
    text = (TRACES / trace).read_text(encoding="utf-8")
    return text if name is None else sections(text)[name]


@pytest.mark.parametrize(
    ("trace", "section"),
    [
        ("01-p2pstdio-basic.txt", None),
        ("03-p2pstdio-modes-errors.txt", "version 0 connection (client never sends VERSION)"),
    ],
)
def test_recorded_trace_replays(
    trace: str, section: str | None, annex_repo_factory: Callable[..., AnnexRepo]
) -> None:
    repo = annex_repo_factory("server")
    add_file(repo, "hello.txt", b"hello\n")
    steps = parse_script(_trace_section(trace, section))
    got = replay(
        [shell_program(), "p2pstdio", str(repo.path), CLIENT],
        steps,
        cwd=repo.path,
        env=annex_env(),
        timeout=20,
    )
    assert normalise(got.received, {repo.uuid: "SERVER"}) == normalise(
        expected_lines(steps), {TRACE_SERVER: "SERVER"}
    )
    assert got.exit_status == 0
