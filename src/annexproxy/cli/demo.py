"""`annexproxy demo`: a gateway with a three-node cluster on loopback, to try or to watch."""

from __future__ import annotations

import argparse
import shutil
import signal
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from annexproxy.server.demo import DemoStep


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``demo``."""
    demo = sub.add_parser(
        "demo", help="a gateway with a 3-node cluster on loopback (try it, or --run it)"
    )
    demo.add_argument(
        "--run",
        dest="run_client",
        action="store_true",
        help="run the client commands with git-annex and show where files went",
    )
    demo.add_argument("--keep", action="store_true", help="keep the demo repositories")
    demo.set_defaults(run=_demo)


def _print_step(step: DemoStep) -> None:
    print(f"[{step.where}] $ {step.command}")
    for line in step.output.rstrip().splitlines():
        print(f"    {line}")


def _demo(args: argparse.Namespace) -> int:
    # Imported here: the demo's set-up code is of no use to the other commands.
    from annexproxy.server.demo import demo_gateway, run_client, user_commands

    print("annexproxy demo: a gateway with the cluster 'demo' (node1, node2, node3, balanced),")
    print("served over HTTP on loopback by annexproxy serve.\n")
    workdir = Path(tempfile.mkdtemp(prefix="annexproxy-demo-"))
    try:
        with demo_gateway(workdir) as (setup, server):
            print(f"gateway: {setup.gateway.path}  ({server.url})")
            for i, node in enumerate(setup.nodes, 1):
                print(f"node{i}:   {node.path}")
            print()
            if not args.run_client:
                print("Try it from another terminal:")
                for line in user_commands(server):
                    print(f"    {line}")
                print("\nServing until Ctrl-C.", flush=True)
                stop = {signal.SIGINT, signal.SIGTERM}
                signal.pthread_sigmask(signal.SIG_BLOCK, stop)
                signal.sigwait(stop)
                return 0
            placement = run_client(setup, server, workdir, _print_step)
            print("\nWhere each file went (balanced=pool puts each on one node):")
            for name, nodes in placement.items():
                print(f"    {name:30} -> {', '.join(nodes) or '(nowhere)'}")
            print("\nAll steps worked.")
            return 0
    finally:
        if args.keep:
            print(f"\nThe demo repositories are kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
