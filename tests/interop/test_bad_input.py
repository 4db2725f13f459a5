"""Bad input and bad luck against annexproxy-shell processes: nothing lost, nothing stale."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annexproxy.testing.realannex import AnnexRepo, annex_env, shell_program

pytestmark = pytest.mark.interop

CLIENT = "506f13e8-32ba-4e70-a3c2-46fb079139b1"
CONTENT = bytes(i % 253 for i in range(300_000))
KEY = f"SHA256E-s{len(CONTENT)}--{hashlib.sha256(CONTENT).hexdigest()}.bin"


class Server:
    """One annexproxy-shell p2pstdio process, driven line by line."""

    def __init__(self, repo: AnnexRepo) -> None:
        self.proc = subprocess.Popen(
            [shell_program(), "p2pstdio", str(repo.path), CLIENT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=annex_env(),
        )
        assert self.readline().startswith("AUTH-SUCCESS ")
        self.send(b"VERSION 4\n")
        assert self.readline() == "VERSION 4"

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def readline(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().decode().rstrip("\n")

    def finish(self) -> tuple[int, str]:
        assert self.proc.stdin is not None
        assert self.proc.stderr is not None
        if not self.proc.stdin.closed:
            self.proc.stdin.close()
        status = self.proc.wait(timeout=30)
        stderr = self.proc.stderr.read().decode()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return status, stderr


@pytest.fixture
def repo(annex_repo_factory: Callable[..., AnnexRepo]) -> AnnexRepo:
    return annex_repo_factory("server", bare=True)


def _objects(repo: AnnexRepo) -> list[Path]:
    return [p for p in (repo.annexdir / "objects").rglob("*") if p.is_file()]


def _present(repo: AnnexRepo) -> bool:
    return repo.annex("contentlocation", KEY, check=False).returncode == 0


def test_disconnect_mid_put_leaves_no_object_and_no_stale_lock(repo: AnnexRepo) -> None:
    server = Server(repo)
    server.send(f"PUT big.bin {KEY}\n".encode())
    assert server.readline() == "PUT-FROM 0"
    server.send(f"DATA {len(CONTENT)}\n".encode() + CONTENT[:100_000])
    status, stderr = server.finish()
    assert status == 1
    assert "Traceback" not in stderr
    assert _objects(repo) == []
    assert not _present(repo)

    # No stale lock: a new connection resumes at once from the partial bytes.
    server = Server(repo)
    server.send(f"PUT big.bin {KEY}\n".encode())
    assert server.readline() == "PUT-FROM 100000"
    server.send(f"DATA {len(CONTENT) - 100_000}\n".encode() + CONTENT[100_000:] + b"VALID\n")
    assert server.readline() == "SUCCESS"
    assert server.finish()[0] == 0
    assert _present(repo)
    repo.annex("fsck", "--all", "--quiet")


def test_two_clients_uploading_one_key_end_with_one_good_object(repo: AnnexRepo) -> None:
    first, second = Server(repo), Server(repo)
    first.send(f"PUT a.bin {KEY}\n".encode())
    assert first.readline() == "PUT-FROM 0"
    first.send(f"DATA {len(CONTENT)}\n".encode() + CONTENT[:50_000])
    # The second upload of the same key waits for the first one to finish.
    second.send(f"PUT b.bin {KEY}\n".encode())
    first.send(CONTENT[50_000:] + b"VALID\n")
    assert first.readline() == "SUCCESS"
    assert second.readline() == "ALREADY-HAVE"
    assert first.finish()[0] == 0
    assert second.finish()[0] == 0
    assert len(_objects(repo)) == 1
    repo.annex("fsck", "--all", "--quiet")


def test_keys_with_path_tricks_are_refused(repo: AnnexRepo, tmp_path: Path) -> None:
    server = Server(repo)
    for key in [
        "SHA256E-s1--../../../escape",
        "SHA256E-s1--a/../../escape",
        "SHA256E-s1--/etc/passwd",
        "WORM-s1--" + "x" * 400,
        "SHA256E-s1--..",
    ]:
        server.send(f"PUT f {key}\n".encode())
        assert server.readline() == "ERROR unknown command", key
    server.send(b"PUT f SHA256E-s1--a\x00b\n")
    assert server.readline() == "ERROR unknown command"
    assert server.finish()[0] == 0
    assert not list(tmp_path.rglob("escape"))
    assert _objects(repo) == []


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2000))
def test_garbage_gets_errors_or_a_clean_close(repo: AnnexRepo, garbage: bytes) -> None:
    proc = subprocess.run(
        [shell_program(), "p2pstdio", str(repo.path), CLIENT],
        input=b"VERSION 4\n" + garbage,
        capture_output=True,
        env=annex_env(),
        timeout=60,
        check=False,
    )
    assert proc.returncode in (0, 1)
    assert b"Traceback" not in proc.stderr
    assert proc.stdout.startswith(b"AUTH-SUCCESS ")
