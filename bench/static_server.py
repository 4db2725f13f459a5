"""A trivial static HTTP server for the raw limits: the stdlib's, or aiohttp's FileResponse.

``python bench/static_server.py {stdlib|aiohttp} FILE --bind ADDR --port PORT`` serves
FILE at every path. ``stdlib`` is what ``python -m http.server`` does (read/write copy);
``aiohttp`` uses ``web.FileResponse`` (``loop.sendfile``: the sendfile limit).
"""

from __future__ import annotations

import argparse
import http.server
import shutil
from pathlib import Path

from aiohttp import web


def _stdlib(path: Path, bind: str, port: int) -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            with path.open("rb") as f:
                self.send_response(200)
                self.send_header("Content-Length", str(path.stat().st_size))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                shutil.copyfileobj(f, self.wfile)  # as SimpleHTTPRequestHandler.copyfile

        def log_message(self, format: str, *args: object) -> None:
            pass

    http.server.ThreadingHTTPServer((bind, port), Handler).serve_forever()


def _aiohttp(path: Path, bind: str, port: int) -> None:
    async def handle(request: web.Request) -> web.FileResponse:
        return web.FileResponse(path)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    web.run_app(app, host=bind, port=port, print=None, access_log=None)


def main() -> None:
    """Serve the file until killed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["stdlib", "aiohttp"])
    parser.add_argument("file", type=Path)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    (_stdlib if args.kind == "stdlib" else _aiohttp)(args.file, args.bind, args.port)


if __name__ == "__main__":
    main()
