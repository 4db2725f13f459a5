"""Replay P2P conversations against a server process and collect what it answers.

Conversations are written in the trace format of shared/spec/traces and played against
annexproxy-shell or git-annex-shell.

Script lines: ``C: <line>`` sends a line; ``C: <bytes: b'...'>`` sends raw payload bytes
(a Python bytes literal); ``C: <close stdin>`` closes the server's input; ``S: <line>``
expects one line; ``S: <N bytes: b'...'>`` expects N payload bytes; ``S: <EOF>`` expects
the end of output. Other lines (comments, ``stderr:``, ``exit status:``, annotations such
as ``<no response within 1.0s>``) are not steps. A read that takes longer than the
timeout fails the replay (a guard against hangs, not a way to synchronise).
"""

from __future__ import annotations

import ast
import os
import re
import selectors
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

_PAYLOAD = re.compile(r"<(\d+) bytes: (b['\"].*['\"])>\Z")
_SEND_BYTES = re.compile(r"<bytes: (b['\"].*['\"])>\Z")
_TIMESTAMP = re.compile(r"^TIMESTAMP \d+$")


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a script: who acts and with what."""

    kind: str  # send_line | send_bytes | close | expect_line | expect_bytes | expect_eof
    data: bytes = b""


@dataclass(slots=True)
class Replay:
    """What a server did during a replay."""

    received: list[str] = field(default_factory=list)
    stderr: str = ""
    exit_status: int | None = None


def parse_script(text: str) -> list[Step]:
    """Turn trace-format text into steps."""
    steps: list[Step] = []
    for raw in text.splitlines():
        if raw.startswith("C: "):
            body = raw[3:]
            if body == "<close stdin>":
                steps.append(Step("close"))
            elif match := _SEND_BYTES.match(body):
                steps.append(Step("send_bytes", ast.literal_eval(match.group(1))))
            else:
                steps.append(Step("send_line", body.encode() + b"\n"))
        elif raw.startswith("S: "):
            body = raw[3:]
            if body == "<EOF>":
                steps.append(Step("expect_eof"))
            elif match := _PAYLOAD.match(body):
                steps.append(Step("expect_bytes", ast.literal_eval(match.group(2))))
            elif body.startswith("<") and body.endswith(">"):
                continue  # an annotation, e.g. "<no response within 1.0s>"
            else:
                steps.append(Step("expect_line", body.encode()))
    return steps


def sections(text: str) -> dict[str, str]:
    """Split a trace file into its ``### name`` sections."""
    out: dict[str, str] = {}
    name = ""
    for line in text.splitlines(keepends=True):
        if line.startswith("### "):
            name = line[4:].strip()
            out[name] = ""
        elif name:
            out[name] += line
    return out


def expected_lines(steps: Sequence[Step]) -> list[str]:
    """The server output a script expects, in the form `Replay.received` records it."""
    out: list[str] = []
    for step in steps:
        if step.kind == "expect_line":
            out.append(step.data.decode())
        elif step.kind == "expect_bytes":
            out.append(f"<{len(step.data)} bytes: {step.data!r}>")
        elif step.kind == "expect_eof":
            out.append("<EOF>")
    return out


class _Reader:
    def __init__(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        assert proc.stdout is not None
        self._out = proc.stdout
        self._fd = proc.stdout.fileno()
        self._timeout = timeout
        self._buf = b""
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._out, selectors.EVENT_READ)

    def _fill(self) -> bool:
        if not self._sel.select(self._timeout):
            raise TimeoutError(f"no output within {self._timeout}s; got so far {self._buf!r}")
        chunk = os.read(self._fd, 65536)
        self._buf += chunk
        return bool(chunk)

    def line(self) -> str:
        while b"\n" not in self._buf:
            if not self._fill():
                return f"<EOF after {self._buf!r}>" if self._buf else "<EOF>"
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode("utf-8", "replace")

    def exactly(self, count: int) -> bytes:
        while len(self._buf) < count:
            if not self._fill():
                break
        data, self._buf = self._buf[:count], self._buf[count:]
        return data

    def rest(self) -> bytes:
        while self._fill():
            pass
        data, self._buf = self._buf, b""
        return data


def replay(
    argv: Sequence[str],
    steps: Sequence[Step],
    *,
    cwd: Path,
    env: dict[str, str],
    timeout: float = 30.0,
) -> Replay:
    """Run a server process and play ``steps`` against it."""
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    result = Replay()
    reader = _Reader(proc, timeout)
    try:
        for step in steps:
            if step.kind in ("send_line", "send_bytes"):
                try:
                    proc.stdin.write(step.data)
                    proc.stdin.flush()
                except BrokenPipeError:
                    result.received.append("<broken pipe>")
                    break
            elif step.kind == "close":
                proc.stdin.close()
            elif step.kind == "expect_line":
                result.received.append(reader.line())
            elif step.kind == "expect_bytes":
                data = reader.exactly(len(step.data))
                result.received.append(f"<{len(data)} bytes: {data!r}>")
            elif step.kind == "expect_eof":
                rest = reader.rest()
                result.received.append("<EOF>" if not rest else f"<extra output {rest!r}>")
        if not proc.stdin.closed:
            proc.stdin.close()
        extra = reader.rest()
        if extra:
            result.received.append(f"<extra output {extra!r}>")
        assert proc.stderr is not None
        result.stderr = proc.stderr.read().decode("utf-8", "replace")
        result.exit_status = proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    return result


def normalise(lines: Sequence[str], uuids: dict[str, str]) -> list[str]:
    """Replace UUIDs by names and TIMESTAMP values by ``N`` so replies can be compared."""
    out = []
    for line in lines:
        for uuid, name in uuids.items():
            line = line.replace(uuid, name)
        out.append("TIMESTAMP N" if _TIMESTAMP.match(line) else line)
    return out
