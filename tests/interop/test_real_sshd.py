"""The real git-annex client against annexproxy-shell as a forced command of a real sshd.

Unlike test_shell_client.py's ssh stand-in, here OpenSSH authenticates a key, starts the
forced command from ``authorized_keys`` with sshd's minimal environment and hands it the
client's request in SSH_ORIGINAL_COMMAND; git's own fetch goes the same way. Also checks
that GIT_ANNEX_SHELL_READONLY and GIT_ANNEX_SHELL_DIRECTORY set in the forced command are
honoured, and that stopping the server ends the sessions it started.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from annexproxy.testing.realannex import AnnexRepo, annex_env, run
from annexproxy.testing.sshd import PrivateSshd, SshIdentity, find_sshd, forced_command

pytestmark = [
    pytest.mark.interop,
    pytest.mark.sshd,
    pytest.mark.skipif(
        find_sshd() is None,
        reason="no OpenSSH server (sshd) installed: apt-get install openssh-server",
    ),
]

FILES: dict[str, bytes] = {
    "empty": b"",
    "small.txt": b"annexproxy over real ssh\n",
    "mib plus one.bin": bytes(range(256)) * 4096 + b"!",
    "ünïcødé dir/naïve.txt": "grüße\n".encode(),
}


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[PrivateSshd]:
    with PrivateSshd(tmp_path / "sshd") as server:
        yield server


@pytest.fixture
def server(annex_repo_factory: Callable[..., AnnexRepo]) -> AnnexRepo:
    return annex_repo_factory("server", bare=True)


def _clone(identity: SshIdentity, server: AnnexRepo, path: Path) -> AnnexRepo:
    """Clone over ssh as remote ``origin`` and init git-annex (git-annex-shell by default)."""
    env = identity.client_env()
    run(
        ["git", "clone", "-q", identity.url(server.path), str(path)],
        path.parent,
        env=annex_env(env),
    )
    client = AnnexRepo(path=path, uuid="", bare=False, env=env)
    client.git("config", "annex.sshcaching", "false")
    client.annex("init", "-q", "client")
    return dataclasses.replace(client, uuid=client.git("config", "annex.uuid").stdout.strip())


def _as(client: AnnexRepo, identity: SshIdentity) -> AnnexRepo:
    """The same clone, connecting with another key (and so another forced command)."""
    return dataclasses.replace(client, env=identity.client_env())


def _add_files(client: AnnexRepo, files: dict[str, bytes]) -> dict[str, str]:
    for name, content in files.items():
        target = client.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    client.annex("add", "--quiet", *files)
    client.git("commit", "-q", "-m", "files")
    return {name: client.annex("lookupkey", name).stdout.strip() for name in files}


def _stored_objects(server: AnnexRepo) -> list[Path]:
    objects = server.annexdir / "objects"
    return sorted(p for p in objects.rglob("*") if p.is_file()) if objects.exists() else []


def test_roundtrip_through_real_sshd(sshd: PrivateSshd, server: AnnexRepo) -> None:
    identity = sshd.authorize("rw", forced_command())
    client = _clone(identity, server, server.path.parent / "client")
    keys = _add_files(client, FILES)

    client.annex("copy", "--to", "origin", ".")
    for name, key in keys.items():
        assert server.uuid in server.annex("whereis", "--key", key).stdout, name
        assert "origin" in client.annex("whereis", name).stdout, name
    server.annex("fsck", "--all", "--quiet")

    # A local drop must lock the copy on origin (LOCKCONTENT) to prove it exists.
    client.annex("drop", ".")
    assert not any((client.path / name).exists() for name in FILES)
    client.annex("get", "--from", "origin", ".")
    for name, content in FILES.items():
        assert (client.path / name).read_bytes() == content

    client.annex("fsck", "--from", "origin", "--quiet", ".")

    client.annex("drop", "--from", "origin", ".")
    for key in keys.values():
        assert server.uuid not in server.annex("whereis", "--key", key, check=False).stdout
    assert _stored_objects(server) == []
    # Ask the server itself (CHECKPRESENT) rather than the client's location log.
    present = client.annex("checkpresentkey", keys["small.txt"], "origin", check=False)
    assert present.returncode == 1, present.stderr

    # Every request really went through sshd with our key.
    assert "Accepted publickey" in sshd.log


def test_dash_c_forced_command(sshd: PrivateSshd, server: AnnexRepo) -> None:
    # The form git-annex-shell's documentation gives:
    # command="... git-annex-shell -c \"$SSH_ORIGINAL_COMMAND\"".
    identity = sshd.authorize("rw", forced_command(dash_c=True))
    assert '-c \\"$SSH_ORIGINAL_COMMAND\\""' in sshd.authorized_keys.read_text()
    client = _clone(identity, server, server.path.parent / "client")
    keys = _add_files(client, {"file": b"through -c\n"})
    client.annex("copy", "--to", "origin", "file")
    assert server.uuid in server.annex("whereis", "--key", keys["file"]).stdout
    client.annex("drop", "file")
    client.annex("get", "--from", "origin", "file")
    assert (client.path / "file").read_bytes() == b"through -c\n"

    # Every request really went through sshd with our key.
    assert "Accepted publickey" in sshd.log


def test_readonly_forced_command_refuses_writes_but_serves_reads(
    sshd: PrivateSshd, server: AnnexRepo
) -> None:
    writer = sshd.authorize("rw", forced_command())
    reader = sshd.authorize("ro", forced_command(env={"GIT_ANNEX_SHELL_READONLY": "1"}))
    # Cloning (git-upload-pack) is a read, so the read-only key may do it.
    client = _clone(reader, server, server.path.parent / "client")
    keys = _add_files(client, {"first": b"first\n", "second": b"second\n"})

    refused = client.annex("copy", "--to", "origin", "first", check=False)
    assert refused.returncode != 0, refused.stdout + refused.stderr
    assert _stored_objects(server) == []
    assert server.uuid not in server.annex("whereis", "--key", keys["first"], check=False).stdout
    pushed = client.git("push", "origin", "main", check=False)
    assert pushed.returncode != 0
    assert "read-only" in pushed.stderr

    # Content put there with a writing key can still be read with the read-only one.
    _as(client, writer).annex("copy", "--to", "origin", "second")
    assert len(_stored_objects(server)) == 1
    client.annex("drop", "second")
    client.annex("get", "--from", "origin", "second")
    assert (client.path / "second").read_bytes() == b"second\n"
    refused = client.annex("drop", "--from", "origin", "second", check=False)
    assert refused.returncode != 0
    assert len(_stored_objects(server)) == 1


def test_directory_restriction_refuses_other_repositories(
    sshd: PrivateSshd, server: AnnexRepo, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    writer = sshd.authorize("rw", forced_command())
    fenced = sshd.authorize(
        "fenced", forced_command(env={"GIT_ANNEX_SHELL_DIRECTORY": str(elsewhere)})
    )

    cloned = run(
        ["git", "clone", "-q", fenced.url(server.path), str(tmp_path / "refused")],
        tmp_path,
        env=annex_env(fenced.client_env()),
        check=False,
    )
    assert cloned.returncode != 0
    assert "Only allowed to access" in cloned.stderr

    client = _as(_clone(writer, server, tmp_path / "client"), fenced)
    _add_files(client, {"file": b"content\n"})
    refused = client.annex("copy", "--to", "origin", "file", check=False)
    assert refused.returncode != 0
    assert _stored_objects(server) == []
    fetched = client.git("fetch", "origin", check=False)
    assert fetched.returncode != 0
    assert "Only allowed to access" in fetched.stderr


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_stopping_sshd_ends_open_sessions(tmp_path: Path, server: AnnexRepo) -> None:
    sshd = PrivateSshd(tmp_path / "sshd")
    sshd.start()
    try:
        identity = sshd.authorize("rw", forced_command())
        with subprocess.Popen(
            [
                *identity.ssh_command_words(),
                f"{identity.user}@{identity.host}",
                f"git-upload-pack '{server.path}'",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        ) as client:
            try:
                assert client.stdout is not None
                # The first pkt-line of the ref advertisement: the session is running.
                assert len(client.stdout.read(4)) == 4
                spawned = sshd.descendants()
                assert spawned
                sshd.stop()
                assert [pid for pid in spawned if _alive(pid)] == []
                assert client.wait(timeout=30) != 0
            finally:
                if client.poll() is None:
                    client.kill()
    finally:
        sshd.stop()
