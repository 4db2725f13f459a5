"""The external backend's driver against scripted programs: start-up and failure paths.

Each program is a few lines of Python on PATH that says and expects exactly what a test
scripts, so every way a program can misbehave is checked without git-annex.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import sys
from pathlib import Path

import pytest

from annexproxy.errors import ConfigError, NodeUnavailable, StorageError
from annexproxy.keys import Key
from annexproxy.special.external import ExternalBackend, find_gitdir, lookup_creds, open_external
from annexproxy.special.remote import SpecialRemote
from annexproxy.uuids import RepoUUID

UUID = RepoUUID("a0a0a0a0-1111-2222-3333-444455556666")
KEY = Key.parse("SHA256E-s3--" + "ab" * 32 + ".txt")

# A program that follows a script: ">" lines are sent, "<" lines must be received (a
# prefix match), "exit N" ends it.
RUNNER = """
import sys
for step in STEPS:
    if step.startswith(">"):
        sys.stdout.write(step[1:] + "\\n")
        sys.stdout.flush()
    elif step.startswith("<"):
        line = sys.stdin.readline()
        if not line.startswith(step[1:]):
            sys.stderr.write(f"expected {step[1:]!r}, got {line!r}\\n")
            sys.exit(9)
    else:
        sys.exit(int(step.split()[1]))
sys.stdin.read()
"""

HANDSHAKE = [">VERSION 2", "<EXTENSIONS INFO GETGITREMOTENAME", ">EXTENSIONS", "<PREPARE"]


def remote(**params: str) -> SpecialRemote:
    return SpecialRemote(
        uuid=UUID,
        name="ext",
        type="external",
        params={"type": "external", "externaltype": "scripted", **params},
    )


@pytest.fixture
def scripted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return bindir


def program(bindir: Path, steps: list[str]) -> None:
    path = bindir / "git-annex-remote-scripted"
    path.write_text(f"#!{sys.executable}\nSTEPS = {steps!r}\n{RUNNER}")
    path.chmod(0o755)


def check(tmp_path: Path, steps: list[str], bindir: Path) -> BaseException | bool:
    program(bindir, steps)

    async def body() -> BaseException | bool:
        backend = await open_external(remote(), base=tmp_path)
        try:
            return await backend.present(KEY)
        except StorageError as exc:
            return exc
        finally:
            await backend.aclose()

    return asyncio.run(body())


def test_a_working_conversation(tmp_path: Path, scripted: Path) -> None:
    steps = [
        *HANDSHAKE,
        ">GETCONFIG directory",
        "<VALUE /some where",
        ">GETUUID",
        f"<VALUE {UUID}",
        ">GETGITREMOTENAME",
        "<VALUE ext",
        ">DEBUG all fine",
        ">PREPARE-SUCCESS",
        f"<CHECKPRESENT {KEY}",
        f">DIRHASH-LOWER {KEY}",
        f"<VALUE {KEY.hashdir_lower()}",
        f">CHECKPRESENT-SUCCESS {KEY}",
    ]
    program(scripted, steps)

    async def body() -> bool:
        backend = await open_external(remote(directory="/some where"), base=tmp_path)
        try:
            return await backend.present(KEY)
        finally:
            await backend.aclose()

    assert asyncio.run(body()) is True


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (["exit 5"], "exited with status 5"),
        ([">HELLO"], "HELLO"),
        ([">VERSION 3"], "VERSION 3"),
        ([">VERSION 2", "<EXTENSIONS", ">EXTENSIONS ASYNC"], "ASYNC"),
        ([*HANDSHAKE, ">PREPARE-FAILURE no disk here"], "could not prepare: no disk here"),
        ([*HANDSHAKE, ">ERROR the disk caught fire"], "the disk caught fire"),
        ([*HANDSHAKE, ">PREPARE-SUCCESS", "<CHECKPRESENT", ">CHECKPRESENT-SUCCESS SHA1--0"],
         "not allowed|does not answer"),
        ([*HANDSHAKE, ">PREPARE-SUCCESS", "<CHECKPRESENT", f">CHECKPRESENT-UNKNOWN {KEY} offline"],
         "cannot tell whether it has .*: offline"),
        ([*HANDSHAKE, ">PREPARE-SUCCESS", "<CHECKPRESENT", "exit 3"], "exited with status 3"),
    ],
)  # fmt: skip
def test_failures_are_clear(tmp_path: Path, scripted: Path, steps: list[str], message: str) -> None:
    outcome = check(tmp_path, steps, scripted)
    assert isinstance(outcome, NodeUnavailable)
    assert "special remote 'ext' (git-annex-remote-scripted)" in str(outcome)
    assert re.search(message, str(outcome)), str(outcome)


def test_missing_externaltype_and_readonly(tmp_path: Path) -> None:
    bare = SpecialRemote(uuid=UUID, name="ext", type="external", params={})
    with pytest.raises(ConfigError, match="no externaltype"):
        asyncio.run(open_external(bare, base=tmp_path))
    with pytest.raises(ConfigError, match="readonly"):
        asyncio.run(open_external(remote(readonly="true"), base=tmp_path))


def test_creds_are_found_where_git_annex_looks(tmp_path: Path) -> None:
    gitdir = tmp_path / ".git"
    embedded = base64.b64encode(b"alice\nsecret\n").decode()
    assert lookup_creds(remote(), gitdir, {}, "creds") is None
    assert lookup_creds(remote(creds=embedded), gitdir, {}, "creds") == ("alice", "secret")
    # Embedded creds of an encrypted remote are gpg-encrypted: not readable here.
    assert lookup_creds(remote(creds=embedded, cipher="xyz"), gitdir, {}, "creds") is None
    (gitdir / "annex" / "creds").mkdir(parents=True)
    (gitdir / "annex" / "creds" / f"{UUID}-creds").write_text("bob\npw\n")
    assert lookup_creds(remote(creds=embedded), gitdir, {}, "creds") == ("bob", "pw")
    env = {f"{UUID}-credslogin": "carol", f"{UUID}-credspassword": "pw2"}
    assert lookup_creds(remote(), gitdir, env, "creds") == ("carol", "pw2")


def test_gitdir_of_plain_bare_and_linked_repositories(tmp_path: Path) -> None:
    (tmp_path / "plain" / ".git").mkdir(parents=True)
    assert find_gitdir(tmp_path / "plain") == ((tmp_path / "plain" / ".git").resolve(), False)
    (tmp_path / "bare").mkdir()
    assert find_gitdir(tmp_path / "bare") == ((tmp_path / "bare").resolve(), True)
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / ".git").write_text("gitdir: ../plain/.git/worktrees/x\n")
    expected = (tmp_path / "plain" / ".git" / "worktrees" / "x").resolve()
    assert find_gitdir(tmp_path / "linked") == (expected, False)


def test_program_environment(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    backend = ExternalBackend(remote(), program="git-annex-remote-x", base=tmp_path, environ={})
    assert backend.tmpdir == (tmp_path / ".git" / "annex" / "tmp").resolve()
    assert backend.label == "special remote 'ext' (git-annex-remote-x)"


def test_a_program_that_does_not_answer_is_stopped(tmp_path: Path, scripted: Path) -> None:
    # It takes CHECKPRESENT and then only waits for stdin to close.
    program(scripted, [*HANDSHAKE, ">PREPARE-SUCCESS", "<CHECKPRESENT"])

    async def body() -> None:
        backend = ExternalBackend(
            remote(), program="git-annex-remote-scripted", base=tmp_path, request_timeout=0.5
        )
        try:
            with pytest.raises(NodeUnavailable, match=r"did not answer CHECKPRESENT within 0.5 s"):
                await backend.present(KEY)
            assert backend._idle == []  # killed, not pooled
        finally:
            await backend.aclose()

    asyncio.run(body())
