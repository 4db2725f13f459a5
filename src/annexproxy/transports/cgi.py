"""Answer one aiohttp request with a CGI program (RFC 3875), streaming both bodies.

Owns the CGI plumbing and nothing else: it starts the program with the environment the
caller built, feeds the request body to its stdin, parses the header block it writes
(``Status:`` and other fields, RFC 3875 section 6.3) and streams the rest of its stdout
as the response body. It knows nothing about git or repositories and never decides
access; `annexproxy.server.git_http` does both before calling it.

Every read is bounded (header block size, idle timeouts) and the child never outlives the
request: it is killed if the client goes away or the response ends early.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from annexproxy.errors import ConfigError, RemoteProtocolError

CHUNK: Final = 1 << 16
MAX_HEADER_BLOCK: Final = 64 * 1024
BODY_IDLE_TIMEOUT: Final = 300.0  # a client that sends nothing for this long is dropped
OUTPUT_IDLE_TIMEOUT: Final = 600.0  # a program that writes nothing for this long is killed
EXIT_WAIT: Final = 10.0
STDERR_TAIL: Final = 4096
HELD_BACK: Final = 4  # bytes of output a finisher may replace (a final pkt-line flush)
# Connection-level fields a CGI program must not set (RFC 9110 7.6.1); aiohttp owns them.
HOP_BY_HOP: Final = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer"}
)
_STATUS: Final = re.compile(r"([0-9]{3})(?: (.*))?")
_FIELD_NAME: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
log = logging.getLogger("annexproxy.cgi")
Finisher = Callable[[bytes, bytes], Awaitable[bytes]]
"""Given the first bytes of the body and the held-back last ones, the body's end."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CgiHead:
    """The header block of a CGI response."""

    status: int
    reason: str | None
    headers: tuple[tuple[str, str], ...]


def parse_cgi_head(lines: Sequence[bytes]) -> CgiHead:
    """Parse the header lines of a CGI response (without the blank line ending them).

    Grammar (RFC 3875 6.3): ``field-name ":" [ " " ] field-value NL``; ``Status:`` gives
    ``3DIGIT [ SP reason ]``; without it the status is 302 if ``Location:`` is given,
    else 200. Repeated identical fields (git http-backend writes its no-cache fields
    twice on errors) are kept once.

    Raises:
        RemoteProtocolError: a line is not a field, or the status is malformed.
    """
    status: int | None = None
    reason: str | None = None
    headers: list[tuple[str, str]] = []
    for raw in lines:
        try:
            line = raw.decode("latin-1").rstrip("\r\n")
        except UnicodeDecodeError as exc:  # pragma: no cover - latin-1 decodes anything
            raise RemoteProtocolError(f"CGI header is not text: {raw!r}") from exc
        name, sep, value = line.partition(":")
        if not sep or not _FIELD_NAME.fullmatch(name):
            raise RemoteProtocolError(f"malformed CGI header line: {line!r}")
        value = value.strip()
        if name.lower() == "status":
            match = _STATUS.fullmatch(value)
            if match is None:
                raise RemoteProtocolError(f"malformed CGI Status: {value!r}")
            status, reason = int(match.group(1)), match.group(2)
        elif (name, value) not in headers:
            headers.append((name, value))
    if status is None:
        status = 302 if any(n.lower() == "location" for n, _ in headers) else 200
    return CgiHead(status=status, reason=reason, headers=tuple(headers))


async def respond_with_cgi(
    request: web.Request,
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    before_eof: Finisher | None = None,
) -> web.StreamResponse:
    """Run ``argv`` as a CGI program for ``request`` and stream its answer to the client.

    Args:
        request: the request; its body (if any) becomes the program's stdin.
        argv: the program and its arguments.
        env: the complete environment of the program (CGI meta-variables included).
        before_eof: awaited once the program wrote all its output and exited, before
            the response ends (work the client must not see as finished before it is).
            The last `HELD_BACK` bytes of the output are held back and handed to it with
            the first ones; what it returns ends the response in their place.

    Returns:
        The response, already sent. If the program fails before writing its header
        block the response is a 502; if the client goes away the child is killed.

    Raises:
        ConfigError: the program cannot be started.
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env),
            limit=CHUNK,
        )
    except OSError as exc:
        raise ConfigError(f"cannot run {argv[0]}: {exc}; is git installed?") from exc
    tail = bytearray()
    try:
        async with asyncio.TaskGroup() as group:
            feeder = group.create_task(_feed(request, proc))
            group.create_task(_collect_stderr(proc, tail))
            complete = False
            try:
                response, complete = await _relay(request, proc, before_eof)
                return response
            finally:
                feeder.cancel()
                if not complete:
                    # Nobody reads its output any more: waiting would only delay the kill.
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                await _reap(proc)
    finally:
        await _reap(proc)
        if proc.returncode and proc.returncode > 0:
            message = tail.decode("utf-8", "replace").strip()
            log.warning("%s exited with %s: %s", argv[0], proc.returncode, message)


async def _feed(request: web.Request, proc: asyncio.subprocess.Process) -> None:
    """Copy the request body to the child's stdin, then close it.

    A client that breaks off (or sends a body aiohttp cannot decode) gets its child
    killed, so that the program never acts on a truncated body.
    """
    assert proc.stdin is not None
    stdin = proc.stdin
    try:
        while True:
            async with asyncio.timeout(BODY_IDLE_TIMEOUT):
                chunk = await request.content.read(CHUNK)
            if not chunk:
                break
            try:
                stdin.write(chunk)
                await stdin.drain()
            except ConnectionError:
                return  # the child stopped reading: it has answered already
    except (ConnectionError, TimeoutError, HttpProcessingError, web.RequestPayloadError) as exc:
        log.info("request body broke off (%s); stopping the CGI program", exc)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    finally:
        stdin.close()
        with contextlib.suppress(ConnectionError):
            await stdin.wait_closed()


async def _collect_stderr(proc: asyncio.subprocess.Process, tail: bytearray) -> None:
    """Read the child's stderr so it never blocks on it; keep the last bytes for the log."""
    assert proc.stderr is not None
    while chunk := await proc.stderr.read(CHUNK):
        tail.extend(chunk)
        del tail[:-STDERR_TAIL]


async def _read_head(proc: asyncio.subprocess.Process) -> CgiHead | None:
    """Read the header block; None if the program wrote none (it failed).

    Raises:
        RemoteProtocolError: the block is malformed or longer than `MAX_HEADER_BLOCK`.
    """
    assert proc.stdout is not None
    lines: list[bytes] = []
    size = 0
    while True:
        try:
            async with asyncio.timeout(OUTPUT_IDLE_TIMEOUT):
                line = await proc.stdout.readline()
        except ValueError as exc:  # a line longer than the stream's limit
            raise RemoteProtocolError("CGI header line too long") from exc
        if not line.endswith(b"\n"):
            return None
        if line in (b"\n", b"\r\n"):
            return parse_cgi_head(lines)
        size += len(line)
        if size > MAX_HEADER_BLOCK:
            raise RemoteProtocolError("CGI header block too long")
        lines.append(line)


async def _relay(
    request: web.Request,
    proc: asyncio.subprocess.Process,
    before_eof: Finisher | None,
) -> tuple[web.StreamResponse, bool]:
    """Send the child's answer: its header block, then its stdout as the body.

    Returns the response and whether the child's whole output was relayed.
    """
    assert proc.stdout is not None
    try:
        head = await _read_head(proc)
    except (RemoteProtocolError, TimeoutError) as exc:
        log.warning("bad answer from CGI program: %s", exc)
        head = None
    if head is None:
        failed = web.Response(status=502, text="the git backend failed; see the server log\n")
        return failed, False
    response = web.StreamResponse(status=head.status, reason=head.reason)
    for name, value in head.headers:
        if name.lower() not in HOP_BY_HOP:
            response.headers.add(name, value)
    try:
        await response.prepare(request)
        if request.method == "HEAD":
            await response.write_eof()
            return response, False
        first, held = b"", b""
        while True:
            async with asyncio.timeout(OUTPUT_IDLE_TIMEOUT):
                chunk = await proc.stdout.read(CHUNK)
            if not chunk:
                break
            if before_eof is None:
                await response.write(chunk)
                continue
            first = (first + chunk)[: HELD_BACK + 1] if len(first) <= HELD_BACK else first
            data = held + chunk
            held, out = data[-HELD_BACK:], data[:-HELD_BACK]
            if out:
                await response.write(out)
        if before_eof is not None:
            await _reap(proc)
            await response.write(await before_eof(first, held))
        await response.write_eof()
    except ConnectionError as exc:
        log.info("client went away during a CGI response: %s", exc)
        return response, False
    except TimeoutError:
        log.warning("CGI program stalled; response cut short")
        return response, False
    return response, True


async def _reap(proc: asyncio.subprocess.Process) -> None:
    """Wait a bounded time for the child to end, then kill it."""
    if proc.returncode is not None:
        return
    try:
        async with asyncio.timeout(EXIT_WAIT):
            await proc.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
