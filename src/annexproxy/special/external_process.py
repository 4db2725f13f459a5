"""One running external special remote program: a process pumped through a conversation.

Owns the process's pipes: lines from its stdout go to `ExternalConversation`, whose
replies are written back; its stderr is relayed to the log. Knows nothing of keys,
temp files or pools (`annexproxy.special.external`). Every way the process can fail
(exit, ERROR, a broken line, a reply out of turn) becomes `NodeUnavailable` with a
message naming the program and saying it is started again on next use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from annexproxy.errors import NodeUnavailable, RemoteProtocolError
from annexproxy.special import external_protocol as p

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0
"""Seconds a program may take to say VERSION and answer EXTENSIONS."""
EXIT_WAIT = 10.0
"""Seconds a program may take to exit once its stdin is closed."""
_WHEN = {
    p.State.AWAIT_VERSION: "before saying VERSION",
    p.State.AWAIT_EXTENSIONS: "during the EXTENSIONS exchange",
    p.State.IDLE: "between requests",
    p.State.BUSY: "while handling a request",
    p.State.CLOSED: "after the conversation ended",
}


class ExternalProgram:
    """One running program and its conversation (one request at a time)."""

    def __init__(
        self, proc: asyncio.subprocess.Process, conversation: p.ExternalConversation, label: str
    ) -> None:
        assert proc.stdin is not None
        assert proc.stdout is not None
        assert proc.stderr is not None
        self._proc = proc
        self._stdin = proc.stdin
        self._stdout = proc.stdout
        self.conversation = conversation
        self.label = label
        self._stderr = asyncio.create_task(self._relay_stderr(proc.stderr))
        self._events: list[p.Event] = []
        self.ordered: bool | None = None

    async def _relay_stderr(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            log.warning("%s: %s", self.label, line.decode("utf-8", "replace").rstrip())

    @property
    def idle(self) -> bool:
        """Whether the program can take a new request."""
        return self.conversation.state is p.State.IDLE and self._proc.returncode is None

    async def _write(self, data: bytes, when: str) -> None:
        try:
            self._stdin.write(data)
            await self._stdin.drain()
        except (OSError, RuntimeError) as exc:
            raise await self._gone(when) from exc

    async def _gone(self, when: str) -> NodeUnavailable:
        status: int | None = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(EXIT_WAIT):
                status = await self._proc.wait()
        how = f"exited with status {status}" if status is not None else "stopped talking"
        return NodeUnavailable(
            f"{self.label} {how} {when}; it is started again on next use (see its messages "
            "in the gateway's log, and check it with 'git annex testremote')"
        )

    async def _read_line(self) -> bytes:
        try:
            return await self._stdout.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            raise await self._gone(_WHEN[self.conversation.state]) from exc
        except asyncio.LimitOverrunError as exc:
            raise NodeUnavailable(
                f"{self.label} sent a line longer than {p.MAX_LINE_BYTES} bytes; it is "
                "started again on next use"
            ) from exc
        except OSError as exc:
            raise await self._gone("while we were reading from it") from exc

    async def next_event(self) -> p.Event | None:
        """Read one line; answer what it asks; the event it brings, if any.

        Returns None for lines that need nothing from the driver (the start-up
        exchange, GETCONFIG and the like, which are answered here).

        Raises:
            NodeUnavailable: the program died, sent ERROR or broke the protocol.
        """
        if self._events:
            return self._events.pop(0)
        line = await self._read_line()
        try:
            reply, events = self.conversation.receive_line(line)
        except RemoteProtocolError as exc:
            raise NodeUnavailable(f"{self.label}: {exc}; it is started again on next use") from exc
        for event in events:
            if isinstance(event, p.Note):
                # DEBUG text only for debugging (git-annex shows it with --debug only).
                level = logging.DEBUG if event.text.startswith("DEBUG") else logging.INFO
                log.log(level, "%s: %s", self.label, event.text)
            else:
                self._events.append(event)
        if reply:
            await self._write(reply, "while we were answering it")
        return self._events.pop(0) if self._events else None

    async def start(self) -> None:
        """Wait for VERSION and the EXTENSIONS exchange, then PREPARE.

        Raises:
            NodeUnavailable: the program did not start up or could not prepare.
        """
        try:
            async with asyncio.timeout(START_TIMEOUT):
                while self.conversation.state is not p.State.IDLE:
                    await self.next_event()
        except TimeoutError:
            raise NodeUnavailable(
                f"{self.label} did not start the protocol within {START_TIMEOUT:.0f} s "
                "(no VERSION line); is it a git-annex special remote program?"
            ) from None
        response = await self.request(p.Prepare())
        if isinstance(response, p.PrepareFailure):
            raise NodeUnavailable(
                f"{self.label} could not prepare: "
                f"{response.error or 'PREPARE failed with no reason given'}"
            )

    async def send(self, request: p.Request) -> None:
        """Send ``request`` (the answer comes as a `Reply` event)."""
        await self._write(self.conversation.send(request), "before it read our request")

    async def request(self, request: p.Request) -> p.Response:
        """Send ``request`` and wait for its answer (ignoring progress).

        Raises:
            NodeUnavailable: the program died, sent ERROR or broke the protocol.
        """
        await self.send(request)
        while True:
            event = await self.next_event()
            if isinstance(event, p.Reply):
                return event.response

    async def is_ordered(self) -> bool:
        """Whether downloads are written in order (asked once per process)."""
        if self.ordered is None:
            self.ordered = isinstance(await self.request(p.GetOrdered()), p.Ordered)
        return self.ordered

    async def close(self, *, force: bool) -> None:
        """End the process: close its stdin and wait, or kill it when ``force``."""
        with contextlib.suppress(OSError, RuntimeError):
            self._stdin.close()
        if force:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
        try:
            async with asyncio.timeout(EXIT_WAIT):
                await self._proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            await self._proc.wait()
        # The relay ends at the stderr EOF (it may have been cancelled at loop shutdown).
        await asyncio.wait({self._stderr})


# --- the backend ------------------------------------------------------------------------
