"""`annexproxy wants` and `annexproxy matchexpression`: argument parsing and printing only.

``wants [--drop] [--rebalance] --repo REPO --key KEY [--file PATH]`` prints ``true`` or
``false`` (``git annex find --want-get-by=REPO`` / ``--want-drop-by=REPO`` for one key);
``wants --batch [--drop] [--rebalance]`` reads ``REPO<TAB>KEY<TAB>FILE`` lines (FILE may be
empty) and prints one answer per line, flushed. ``matchexpression EXPR [--key KEY]
[--file PATH] [--size N]`` behaves like ``git annex matchexpression``: exit 0 on a match,
1 otherwise, 42 (with a message) for a bad expression or missing data. The work is done
by ``annexproxy.server.wants`` in the repository of the current directory.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from annexproxy.errors import ConfigError, ExpressionSyntaxError
from annexproxy.keys import Key
from annexproxy.server.matchexpression import match_expression
from annexproxy.server.wants import Wants
from annexproxy.space import parse_size

#: ``git annex matchexpression``'s exit status for a bad expression or missing data.
BAIL = 42
_MAX_LINE = 1 << 20


def _answer(wants: Wants, drop: bool, repo: str, key: str, file: str | None) -> str:
    uuid = wants.resolve(repo)
    parsed = Key.parse(key)
    if drop:
        return "true" if wants.want_drop(uuid, parsed, file) else "false"
    return "true" if wants.want_get(uuid, parsed, file) else "false"


def _wants(args: argparse.Namespace) -> int:
    if not args.batch and (args.repo is None or args.key is None):
        raise ConfigError("wants needs --repo and --key (or --batch)")
    with Wants.open(Path.cwd(), rebalance=args.rebalance) as wants:
        if not args.batch:
            print(_answer(wants, args.drop, args.repo, args.key, args.file))
            return 0
        for number, line in enumerate(iter(sys.stdin.readline, ""), 1):
            if len(line) > _MAX_LINE:
                raise ConfigError(f"line {number} of the batch input is too long")
            fields = line.rstrip("\n").split("\t")
            if len(fields) == 2:
                fields.append("")
            if len(fields) != 3:
                raise ConfigError(f"line {number}: expected REPO<TAB>KEY<TAB>FILE, got {line!r}")
            repo, key, file = fields
            print(_answer(wants, args.drop, repo, key, file or None), flush=True)
    return 0


def _matchexpression(args: argparse.Namespace) -> int:
    key = None if args.key is None else Key.parse(args.key)
    size = None
    if args.size is not None:
        size = parse_size(args.size)
        if size is None:
            raise ConfigError(f"--size {args.size!r}: not a size (like 100, 10MB or 2GiB)")
    with Wants.open(Path.cwd(), rebalance=args.rebalance) as wants:
        try:
            matched = match_expression(wants, args.expression, key=key, file=args.file, size=size)
        except ExpressionSyntaxError as exc:
            print(f"annexproxy: bad expression: {exc}", file=sys.stderr)
            return BAIL
        except ConfigError as exc:
            print(f"annexproxy: {exc}", file=sys.stderr)
            return BAIL
    return 0 if matched else 1


def add_wants_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``wants`` and ``matchexpression`` on ``annexproxy``'s subparsers."""
    cmd = sub.add_parser("wants", help="does a repository want (or may drop) a key?")
    cmd.add_argument("--drop", action="store_true", help="ask want-drop instead of want-get")
    cmd.add_argument("--rebalance", action="store_true", help="as with git annex --rebalance")
    cmd.add_argument("--batch", action="store_true", help="read REPO<TAB>KEY<TAB>FILE lines")
    cmd.add_argument("--repo", help="UUID, remote name, description or here")
    cmd.add_argument("--key", help="the key")
    cmd.add_argument("--file", help="the associated file, relative to the top of the work tree")
    cmd.set_defaults(run=_wants)
    cmd = sub.add_parser("matchexpression", help="does a preferred content expression match?")
    cmd.add_argument("expression")
    cmd.add_argument("--key", help="the key to match against")
    cmd.add_argument("--file", help="the file name to match against")
    cmd.add_argument("--size", help="the size to match against")
    cmd.add_argument("--rebalance", action="store_true", help="as with git annex --rebalance")
    cmd.set_defaults(run=_matchexpression)
