"""`annexproxy`: the command-line entry point. The only place that prints for the CLI.

Subcommands so far: ``demo``. Errors derived from `AnnexProxyError` end with a message
and exit status 1; nothing else is caught here.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from annexproxy import __version__
from annexproxy.cli import serve
from annexproxy.cli.admin import add_admin_commands
from annexproxy.cli.wants import add_wants_commands
from annexproxy.errors import AnnexProxyError
from annexproxy.server.demo import DemoStep, run_demo, try_it_yourself


def _print_step(step: DemoStep) -> None:
    print(f"[{step.where}] $ {step.command}")
    for line in step.output.rstrip().splitlines():
        print(f"    {line}")


def _demo(args: argparse.Namespace) -> int:
    print("annexproxy demo: a git-annex repository served by annexproxy-shell, used by the")
    print("real git-annex client over a local stand-in for ssh.\n")
    if args.keep:
        workdir = Path(tempfile.mkdtemp(prefix="annexproxy-demo-"))
        _server, client = run_demo(workdir, _print_step)
        print(f"\nThe demo repositories are kept in {workdir}. To go on by hand:")
        print(f"    {try_it_yourself(client)}")
        return 0
    with tempfile.TemporaryDirectory(prefix="annexproxy-demo-") as tmp:
        run_demo(Path(tmp), _print_step)
    print("\nAll steps worked. Run `annexproxy demo --keep` to keep the repositories.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``annexproxy``."""
    parser = argparse.ArgumentParser(
        prog="annexproxy", description="A gateway serving git-annex repositories."
    )
    parser.add_argument("--version", action="version", version=f"annexproxy {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="serve a temporary repository to git-annex and use it")
    demo.add_argument("--keep", action="store_true", help="keep the demo repositories")
    demo.set_defaults(run=_demo)
    serve.add_parser(sub)
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
