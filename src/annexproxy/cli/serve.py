"""`annexproxy serve`: P2P over HTTP, with the options of `git annex p2phttp`.

The same port also serves the repositories to git (smart HTTP) and the ``config`` file
git-annex discovers the API with; ``--annex-url`` sets the URL advertised there.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from annexproxy.errors import ConfigError
from annexproxy.p2phttp.auth import AuthPolicy, users_from_environment
from annexproxy.server.git_http import validate_annex_url
from annexproxy.server.http_server import ServeConfig, run_server
from annexproxy.server.malloc_arenas import limit_malloc_arenas


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``serve`` and its options."""
    p = sub.add_parser(
        "serve", help="serve repositories over P2P-over-HTTP (annex+http) and git smart HTTP"
    )
    p.add_argument(
        "--directory",
        action="append",
        type=Path,
        default=[],
        help="serve every git-annex repository below DIR (repeatable)",
    )
    p.add_argument("--port", type=int, default=9417)
    p.add_argument("--bind", default=None, help="address to listen on (default: all)")
    p.add_argument("--socket", type=Path, help="listen on a unix socket instead")
    p.add_argument("--certfile", type=Path)
    p.add_argument("--privatekeyfile", type=Path)
    p.add_argument("--chainfile", type=Path, action="append", default=[])
    p.add_argument("--authenv", action="store_true", help="users from the environment, HTTPS")
    p.add_argument("--authenv-http", action="store_true", help="users also over plain HTTP")
    p.add_argument("--unauth-readonly", action="store_true")
    p.add_argument("--unauth-appendonly", action="store_true")
    p.add_argument("--unauth-nolocking", action="store_true")
    p.add_argument("--wideopen", action="store_true")
    p.add_argument(
        "-J",
        "--jobs",
        default=None,
        help="accepted for compatibility; concurrency is not limited by a pool",
    )
    p.add_argument(
        "--max-transfers",
        type=int,
        default=512,
        help="concurrent requests before answering 503 (default 512)",
    )
    p.add_argument("--no-access-log", action="store_true")
    p.add_argument(
        "--annex-url",
        default=None,
        help="annex+http(s) URL advertised in each repository's config for discovery "
        "(default: built from the request's Host header; set it behind a reverse proxy)",
    )
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    policy = AuthPolicy(
        users=users_from_environment(os.environ),
        authenv=args.authenv,
        authenv_http=args.authenv_http,
        unauth_readonly=args.unauth_readonly,
        unauth_appendonly=args.unauth_appendonly,
        unauth_nolocking=args.unauth_nolocking,
        wideopen=args.wideopen,
    )
    if args.max_transfers < 1:
        raise ConfigError("--max-transfers must be at least 1")
    config = ServeConfig(
        repositories=() if args.directory else (Path.cwd(),),
        directories=tuple(args.directory),
        port=args.port,
        bind=args.bind,
        socket=args.socket,
        certfile=args.certfile,
        privatekeyfile=args.privatekeyfile,
        chainfiles=tuple(args.chainfile),
        policy=policy,
        max_transfers=args.max_transfers,
        access_log=not args.no_access_log,
        annex_url=None if args.annex_url is None else validate_annex_url(args.annex_url),
    )
    limit_malloc_arenas()
    return asyncio.run(_serve(config))


async def _serve(config: ServeConfig) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    def ready(message: str) -> None:
        print(f"annexproxy: {message}", file=sys.stderr, flush=True)

    await run_server(config, stop, ready)
    return 0
