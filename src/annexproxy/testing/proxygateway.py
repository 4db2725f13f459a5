"""A gateway repository proxying special remotes, and git-annex clients of it, for tests.

The gateway is set up with git-annex's own commands (shared/spec/examples/10):
``initremote``, ``remote.NAME.annex-proxy=true``, then ``updateproxy``. A client reaches
it over the ssh stand-in (annexproxy-shell) or over HTTP (``annexproxy serve``). Runs
subprocesses; never imported by the library itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from annexproxy.testing.httpserver import annexproxy_serve
from annexproxy.testing.realannex import (
    AnnexRepo,
    make_annex_repo,
    make_http_client,
    make_ssh_client,
    run,
)

GIT_ANNEX_UPDATEPROXY = ("git", "annex", "updateproxy")
"""git-annex's own updateproxy (``annexproxy updateproxy`` is the other choice)."""


def make_proxy_gateway(
    path: Path,
    remotes: Mapping[str, Sequence[str]],
    *,
    config: Mapping[str, str] | None = None,
    remote_config: Mapping[str, str] | None = None,
    env: dict[str, str] | None = None,
    updateproxy: Sequence[str] = GIT_ANNEX_UPDATEPROXY,
) -> AnnexRepo:
    """Make a bare gateway repository at ``path`` that proxies special remotes.

    Args:
        path: where the gateway goes (described as "gateway").
        remotes: each remote's name and its ``initremote`` parameters, in order.
        config: git config set first (before any remote is initialised).
        remote_config: ``remote.NAME.<setting>`` values set on each remote once it is
            proxied, before updateproxy.
        env: extra environment of ``initremote`` (S3 credentials).
        updateproxy: the command run last, in the gateway.

    Returns:
        The gateway.

    Raises:
        AssertionError: a command failed.
    """
    gateway = make_annex_repo(path, "gateway", bare=True)
    for name, value in (config or {}).items():
        gateway.git("config", name, value)
    for remote, params in remotes.items():
        gateway.annex("initremote", "-q", remote, *params, env=env)
        gateway.git("config", f"remote.{remote}.annex-proxy", "true")
        for name, value in (remote_config or {}).items():
            gateway.git("config", f"remote.{remote}.{name}", value)
    run(list(updateproxy), gateway.path)
    return gateway


@contextlib.contextmanager
def gateway_client(
    gateway: AnnexRepo, path: Path, transport: str, *, sync: bool = False
) -> Iterator[AnnexRepo]:
    """A git-annex client of ``gateway`` (a clone at ``path``), for the block.

    Args:
        gateway: the gateway repository.
        path: where the client is cloned.
        transport: ``"ssh"``: remote ``origin`` over the ssh stand-in, served by
            annexproxy-shell; ``"http"``: ``annexproxy serve --wideopen`` runs in the
            gateway for the block and ``origin`` is its annex+http URL.
        sync: an ssh client syncs once, as an HTTP client always does.

    Raises:
        AssertionError: a command failed.
        RuntimeError: the HTTP server did not start.
        ValueError: ``transport`` is neither.
    """
    if transport == "ssh":
        yield make_ssh_client(gateway, path, "client", sync=sync)
        return
    if transport != "http":
        raise ValueError(f"unknown transport {transport!r}; use 'ssh' or 'http'")
    with annexproxy_serve(gateway.path, "--wideopen") as server:
        yield make_http_client(gateway, path, server.url)
