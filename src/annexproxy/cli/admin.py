"""`annexproxy` admin subcommands: argument parsing and printing only.

``updateproxy``, ``initcluster NAME [DESC]``, ``updatecluster``,
``extendcluster REMOTE NAME``, ``maxsize REPO [SIZE]`` and ``info [--json]``, run inside
the gateway repository with git-annex's arguments (clusters.md 4). The work is done by
``annexproxy.server.admin``; errors derived from `AnnexProxyError` reach ``cli/main.py``,
which prints them on one line and exits non-zero.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from annexproxy.server.admin import AdminResult, Gateway, InfoReport, format_size


def _print_result(result: AdminResult) -> int:
    for warning in result.warnings:
        print(f"  {warning}", file=sys.stderr)
    for line in result.messages:
        print(line)
    return 0


def _updateproxy(args: argparse.Namespace) -> int:
    with Gateway.open(Path.cwd()) as gateway:
        return _print_result(gateway.update_proxy())


def _initcluster(args: argparse.Namespace) -> int:
    with Gateway.open(Path.cwd()) as gateway:
        return _print_result(gateway.init_cluster(args.name, args.description))


def _updatecluster(args: argparse.Namespace) -> int:
    with Gateway.open(Path.cwd()) as gateway:
        return _print_result(gateway.update_cluster())


def _extendcluster(args: argparse.Namespace) -> int:
    with Gateway.open(Path.cwd()) as gateway:
        return _print_result(gateway.extend_cluster(args.remote, args.name))


def _maxsize(args: argparse.Namespace) -> int:
    with Gateway.open(Path.cwd()) as gateway:
        if args.repository is None:
            return _print_result(gateway.maxsize_overview(in_bytes=args.bytes))
        return _print_result(gateway.maxsize(args.repository, args.size))


def _table(report: InfoReport) -> list[str]:
    lines = [f"{'size':>8} {'maxsize':>8} {'%full':>6}  trust        repository"]
    for repo in report.repositories:
        size = "" if repo.size is None else format_size(repo.size)
        limit = "" if repo.maxsize is None else format_size(repo.maxsize)
        full = ""
        if repo.size is not None and repo.maxsize:
            full = f"{100 * repo.size // repo.maxsize}%"
        here = " [here]" if repo.uuid == report.here else ""
        lines.append(
            f"{size:>8} {limit:>8} {full:>6}  {repo.trust:<12} "
            f"{repo.uuid} -- {repo.description}{here}"
        )
        details = [f"groups: {' '.join(repo.groups)}"] if repo.groups else []
        details += [f"wanted: {repo.wanted}"] if repo.wanted is not None else []
        details += [f"required: {repo.required}"] if repo.required is not None else []
        lines += [" " * 38 + detail for detail in details]
    for group in report.clusters:
        lines.append(f"cluster {group.name or '?'} ({group.uuid})")
        lines.append(f"    nodes: {' '.join(group.nodes) or '(none)'}")
        lines.append(f"    gateways: {' '.join(group.gateways) or '(none)'}")
    for entry in report.proxies:
        names = " ".join(remote.name for remote in entry.remotes) or "(nothing)"
        lines.append(f"proxy {entry.gateway} proxying: {names}")
    lines.append(f"numcopies: {report.numcopies if report.numcopies is not None else 'unset'}")
    lines.append(f"mincopies: {report.mincopies if report.mincopies is not None else 'unset'}")
    return lines


def _info(args: argparse.Namespace) -> int:
    with Gateway.open(Path.cwd()) as gateway:
        report = gateway.info()
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        print("\n".join(_table(report)))
    return 0


def add_admin_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the admin subcommands on ``annexproxy``'s subparsers."""
    cmd = sub.add_parser("updateproxy", help="record which remotes this gateway proxies")
    cmd.set_defaults(run=_updateproxy)
    cmd = sub.add_parser("initcluster", help="create a cluster served by this gateway")
    cmd.add_argument("name")
    cmd.add_argument("description", nargs="?")
    cmd.set_defaults(run=_initcluster)
    cmd = sub.add_parser("updatecluster", help="record cluster nodes from git config")
    cmd.set_defaults(run=_updatecluster)
    cmd = sub.add_parser("extendcluster", help="become another gateway of a cluster")
    cmd.add_argument("remote")
    cmd.add_argument("name")
    cmd.set_defaults(run=_extendcluster)
    cmd = sub.add_parser("maxsize", help="show or set a repository's maximum size")
    cmd.add_argument("repository", nargs="?", help="without it: every repository's sizes")
    cmd.add_argument("size", nargs="?")
    cmd.add_argument("--bytes", action="store_true", help="display sizes in bytes")
    cmd.set_defaults(run=_maxsize)
    cmd = sub.add_parser("info", help="repositories, clusters and proxies of this gateway")
    cmd.add_argument("--json", action="store_true", help="print one JSON object")
    cmd.set_defaults(run=_info)
