"""A TCP relay for tests that cuts connections part way, as a server that dies would.

`CuttingRelay` forwards loopback connections to a target port from its own thread and
event loop. With ``budget`` set it cuts a connection once that many bytes went upstream
on it (an upload broken off); with ``down_budget``, once that many came back (a download
broken off). ``max_cuts`` bounds how many connections are cut in all; it counts the
bytes relayed each way, so a test can tell a resumed download from one started over.
"""

from __future__ import annotations

import asyncio
import threading


class CuttingRelay:
    """A TCP relay to ``target`` that cuts connections after a byte budget."""

    def __init__(self, target: int) -> None:
        """Start relaying 127.0.0.1:`port` to 127.0.0.1:``target`` (nothing is cut yet)."""
        self.target = target
        self.budget: int | None = None
        """Upstream bytes a connection may carry before it is cut (None: no limit)."""
        self.down_budget: int | None = None
        """Downstream bytes a connection may carry before it is cut (None: no limit)."""
        self.max_cuts: int | None = None
        """How many connections may be cut in all (None: no limit)."""
        self.cuts = 0
        self.up_bytes = 0
        self.down_bytes = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        self._loop.run_until_complete(server.wait_closed())
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    def _may_cut(self) -> bool:
        return self.max_cuts is None or self.cuts < self.max_cuts

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        budget, down_budget = self.budget, self.down_budget

        async def upstream() -> None:
            nonlocal budget
            while data := await reader.read(65536):
                if budget is not None and self._may_cut():
                    if len(data) >= budget:
                        self.cuts += 1
                        raise ConnectionResetError("relay cut")
                    budget -= len(data)
                self.up_bytes += len(data)
                up_writer.write(data)
                await up_writer.drain()

        async def downstream() -> None:
            nonlocal down_budget
            while data := await up_reader.read(65536):
                if down_budget is not None and self._may_cut() and len(data) >= down_budget:
                    self.cuts += 1
                    writer.write(data[:down_budget])
                    self.down_bytes += down_budget
                    await writer.drain()
                    raise ConnectionResetError("relay cut")
                if down_budget is not None:
                    down_budget -= len(data)
                self.down_bytes += len(data)
                writer.write(data)
                await writer.drain()

        tasks = [asyncio.ensure_future(upstream()), asyncio.ensure_future(downstream())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for w in (writer, up_writer):
            w.transport.abort()

    def close(self) -> None:
        """Stop relaying (open connections are dropped) and end the thread."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
