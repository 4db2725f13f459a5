"""`annexproxy post-receive`: git-annex's post-receive hook for a gateway, as a command.

Reads the hook's ``old new ref`` lines on stdin and exports the pushed tracking branches
of proxied ``exporttree=yes`` remotes (`annexproxy.server.export_hook`), printing
git-annex's ``export REMOTE FILE ok`` lines. Our servers do this by themselves after a
push; the command is for pushes that reach the repository another way (``hooks/
post-receive`` containing ``exec annexproxy post-receive``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from contextlib import AsyncExitStack
from pathlib import Path

from annexproxy.cluster.gateway import GatewayTargets
from annexproxy.server.export_hook import export_pushed, parse_hook_input
from annexproxy.server.repository import open_repository


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``post-receive``."""
    p = sub.add_parser(
        "post-receive",
        help="run by git's post-receive hook: export pushed tracking branches",
        description="Reads the hook's stdin; run in (or with GIT_DIR set to) the repository.",
    )
    p.set_defaults(run=run_post_receive)


def _repository() -> Path:
    """The repository the hook runs for (git sets GIT_DIR, often to ``.``)."""
    path = Path(os.environ.get("GIT_DIR", ".")).resolve()
    return path.parent if path.name == ".git" else path


def _line(text: str) -> None:
    print(text, flush=True)


async def _export(path: Path, pushed: set[str]) -> int:
    async with AsyncExitStack() as stack:
        local = await stack.enter_async_context(open_repository(path))
        targets = GatewayTargets(local, stack)
        return await export_pushed(local, targets, pushed, _line)


def run_post_receive(args: argparse.Namespace) -> int:
    """Export what the push moved; status 1 when a step failed.

    Raises:
        AnnexProxyError: the repository cannot be opened or its branch written.
    """
    pushed = parse_hook_input(sys.stdin.buffer.read())
    failed = asyncio.run(_export(_repository(), pushed)) if pushed else 0
    if failed:
        print(f"post-receive: {failed} failed", file=sys.stderr)
        return 1
    return 0
