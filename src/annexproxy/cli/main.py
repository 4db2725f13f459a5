"""`annexproxy`: the command-line entry point. The only place that prints for the CLI.

Subcommands: demo, serve, sim, post-receive, the gateway admin commands, wants and
matchexpression.
Errors derived from `AnnexProxyError` end with a message and exit status 1; nothing else
is caught here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from annexproxy import __version__
from annexproxy.cli import demo, postreceive, serve, sim
from annexproxy.cli.admin import add_admin_commands
from annexproxy.cli.wants import add_wants_commands
from annexproxy.errors import AnnexProxyError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``annexproxy``."""
    parser = argparse.ArgumentParser(
        prog="annexproxy", description="A gateway serving git-annex repositories."
    )
    parser.add_argument("--version", action="version", version=f"annexproxy {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo.add_parser(sub)
    serve.add_parser(sub)
    sim.add_parser(sub)
    postreceive.add_parser(sub)
    add_admin_commands(sub)
    add_wants_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``annexproxy``."""
    args = build_parser().parse_args(argv)
    try:
        status = args.run(args)
    except AnnexProxyError as exc:
        print(f"annexproxy: {exc}", file=sys.stderr)
        status = 1
    sys.exit(status)
