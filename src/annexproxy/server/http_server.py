"""Run the HTTP server: served repositories, the API application, TCP/unix/TLS listeners.

`ServeConfig` holds what ``annexproxy serve`` was asked for; `run_server` serves until
`stop` is set, then closes listeners, releases locks and closes the repositories.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from annexproxy.errors import ConfigError
from annexproxy.p2phttp.auth import AuthPolicy
from annexproxy.server.access_log import JsonAccessLogger
from annexproxy.server.git_http import add_git_routes
from annexproxy.server.http_api import HttpApi, make_app
from annexproxy.server.served import ServedRepositories


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeConfig:
    """What to serve and how (the options of ``git annex p2phttp``)."""

    repositories: Sequence[Path] = ()
    directories: Sequence[Path] = ()
    port: int = 9417
    bind: str | None = None
    socket: Path | None = None
    certfile: Path | None = None
    privatekeyfile: Path | None = None
    chainfiles: Sequence[Path] = field(default_factory=tuple)
    policy: AuthPolicy = field(default_factory=AuthPolicy)
    max_transfers: int = 512
    access_log: bool = True
    annex_url: str | None = None  # advertised in <repo>/config; default: from Host


def _ssl_context(config: ServeConfig) -> ssl.SSLContext | None:
    if config.certfile is None and config.privatekeyfile is None:
        return None
    if config.certfile is None or config.privatekeyfile is None:
        raise ConfigError("HTTPS needs both --certfile and --privatekeyfile")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.certfile, config.privatekeyfile)
        for chain in config.chainfiles:
            context.load_verify_locations(chain)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the TLS certificate or key: {exc}") from exc
    return context


async def run_server(
    config: ServeConfig, stop: asyncio.Event, ready: Callable[[str], None]
) -> None:
    """Serve until ``stop`` is set; ``ready`` gets the URL once listening.

    Raises:
        ConfigError: nothing to serve, bad TLS files, or the address is in use.
    """
    context = _ssl_context(config)
    async with ServedRepositories(
        repositories=config.repositories, directories=config.directories
    ) as repositories:
        handlers = HttpApi(repositories, config.policy, max_transfers=config.max_transfers)
        app = make_app(handlers)
        git = add_git_routes(
            app,
            repositories,
            config.policy,
            singles=config.repositories,
            directories=config.directories,
            annex_url=config.annex_url,
        )
        runner = web.AppRunner(
            app,
            access_log_class=JsonAccessLogger,
            access_log=logging.getLogger("annexproxy.access") if config.access_log else None,
            handle_signals=False,
        )
        await runner.setup()
        try:
            site: web.BaseSite
            if config.socket is not None:
                site = web.UnixSite(runner, str(config.socket), ssl_context=context)
            else:
                site = web.TCPSite(runner, config.bind, config.port, ssl_context=context)
            try:
                await site.start()
            except OSError as exc:
                raise ConfigError(f"cannot listen: {exc}") from exc
            ready(_describe(site, context is not None, len(repositories.all())))
            base = _base_url(site, context is not None)
            if base is not None:
                for url in git.clone_urls(base):
                    ready(f"git clone {url}")
            await stop.wait()
        finally:
            await runner.cleanup()


def _describe(site: web.BaseSite, tls: bool, count: int) -> str:
    server = site._server  # the listening asyncio server, to learn the port of --port 0
    scheme = "annex+https" if tls else "annex+http"
    sockets = getattr(server, "sockets", None) or []
    if sockets and isinstance(sockets[0].getsockname(), tuple):
        host, port = sockets[0].getsockname()[:2]
        where = f"{scheme}://{host}:{port}/git-annex/"
    else:
        where = site.name
    return f"serving {count} repositor{'y' if count == 1 else 'ies'} at {where}"


def _base_url(site: web.BaseSite, tls: bool) -> str | None:
    """``http(s)://host:port`` of a TCP site, None for a unix socket."""
    sockets = getattr(site._server, "sockets", None) or []
    if not sockets or not isinstance(sockets[0].getsockname(), tuple):
        return None
    host, port = sockets[0].getsockname()[:2]
    return f"{'https' if tls else 'http'}://{host}:{port}"
