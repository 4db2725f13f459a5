"""Start HTTP servers for tests: `annexproxy serve` or `git annex p2phttp`, on loopback.

Readiness is an event: annexproxy prints a "serving ... at URL" line on stderr; for
git-annex's server we wait until its port accepts connections (bounded). Servers are
stopped (SIGTERM, then SIGKILL) when the context ends.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from annexproxy.testing.realannex import annex_env, shell_program

_READY = re.compile(rb"serving .* at (annex\+https?://[^\s]+)")


@dataclass(frozen=True, slots=True)
class RunningServer:
    """A server the test can reach."""

    url: str  # annex+http://127.0.0.1:PORT/git-annex/
    port: int
    process: subprocess.Popen[bytes]
    log: Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def annexproxy_serve(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 30.0
) -> Iterator[RunningServer]:
    """Run ``annexproxy serve --port 0 --bind 127.0.0.1 ARGS`` in ``cwd``."""
    log = cwd.parent / f"annexproxy-serve-{os.getpid()}-{time.monotonic_ns()}.log"
    argv = [shell_program("annexproxy"), "serve", "--port", "0", "--bind", "127.0.0.1", *args]
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=annex_env(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    try:
        url = _wait_ready(proc, timeout)
        port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
        with log.open("wb") as sink:
            copier = threading.Thread(target=_copy, args=(proc, sink), daemon=True)
            copier.start()
            try:
                yield RunningServer(url=url, port=port, process=proc, log=log)
            finally:
                _stop(proc)
                copier.join(timeout=15)
    finally:
        _stop(proc)
        proc.stderr.close()


def _copy(proc: subprocess.Popen[bytes], sink: BinaryIO) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:
        sink.write(line)
        sink.flush()


def _wait_ready(proc: subprocess.Popen[bytes], timeout: float) -> str:
    assert proc.stderr is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stderr, selectors.EVENT_READ)
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not selector.select(max(0.0, deadline - time.monotonic())):
            break
        line = proc.stderr.readline()
        if not line:
            break
        seen += line
        match = _READY.search(line)
        if match:
            return match.group(1).decode()
    _stop(proc)
    raise RuntimeError(f"annexproxy serve did not start: {seen.decode(errors='replace')}")


@contextlib.contextmanager
def git_annex_p2phttp(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 30.0
) -> Iterator[RunningServer]:
    """Run ``git annex p2phttp --port P --bind 127.0.0.1 -J2 ARGS`` in ``cwd``."""
    port = free_port()
    log = cwd.parent / f"p2phttp-{port}.log"
    argv: Sequence[str] = [
        "git",
        "annex",
        "p2phttp",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "-J2",
        *args,
    ]
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=annex_env(env),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", port), timeout=1),
                ):
                    break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"git annex p2phttp did not start: {log.read_text()}")
                time.sleep(0.05)  # polling a port that is not listening yet
            yield RunningServer(
                url=f"annex+http://127.0.0.1:{port}/git-annex/", port=port, process=proc, log=log
            )
        finally:
            _stop(proc)
