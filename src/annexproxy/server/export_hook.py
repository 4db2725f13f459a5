"""Export on push: what git-annex's ``post-receive`` hook does for proxied export remotes.

When a push updates the branch a proxied ``exporttree=yes`` remote tracks
(``remote.<name>.annex-tracking-branch``, optionally ``branch:subdir``), or its
``synced/`` twin, that tree is exported to the remote (``Command/PostReceive.hs``,
clusters.md 8). Our servers need no hook installed: they note the tracked refs before
``git-receive-pack`` runs (`watch`) and export what moved once it ended
(`export_pushed`); ``annexproxy post-receive`` does the same from a hook's stdin lines.

Unlike git-annex, which exports to the first pushed remote only, every pushed tracking
branch is exported.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass

from annexproxy.cluster.export import Exporter, filter_export
from annexproxy.cluster.gateway import GatewayTargets
from annexproxy.cluster.topology import Topology
from annexproxy.errors import AnnexProxyError
from annexproxy.keys import Key
from annexproxy.server.repository import LocalRepository
from annexproxy.special.registry import open_export_actions
from annexproxy.special.remote import SpecialRemote

HEADS = "refs/heads/"


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackedExport:
    """A proxied export remote and the branch (and subdirectory) it tracks."""

    remote: SpecialRemote
    branch: str  # without refs/heads/
    subdir: str | None = None

    @property
    def refs(self) -> tuple[str, str]:
        """The refs whose push exports: the branch, then its ``synced/`` twin."""
        return HEADS + self.branch, HEADS + "synced/" + self.branch


def tracked_exports(entries: Mapping[str, str], topology: Topology) -> list[TrackedExport]:
    """The proxied export remotes with a tracking branch, by remote name."""
    found = []
    for node in topology.nodes.values():
        special = node.special
        if special is None or not special.exporttree or not special.proxiable:
            continue
        setting = entries.get(f"remote.{special.name}.annex-tracking-branch")
        if not setting:
            continue
        branch, _, subdir = setting.partition(":")
        branch = branch.removeprefix(HEADS)
        found.append(TrackedExport(remote=special, branch=branch, subdir=subdir.strip("/") or None))
    return sorted(found, key=lambda t: t.remote.name)


def parse_hook_input(text: bytes) -> set[str]:
    """The refs a post-receive hook's stdin names (``old new ref`` lines)."""
    refs = set()
    for line in text.splitlines():
        words = line.split()
        if len(words) == 3:
            refs.add(words[2].decode("utf-8", "surrogateescape"))
    return refs


async def _tracked(local: LocalRepository, targets: GatewayTargets) -> list[TrackedExport]:
    topology = await targets.topology(refresh=True)
    entries = await asyncio.to_thread(local.plumbing.config_entries)
    return tracked_exports(entries, topology)


async def watch(local: LocalRepository, targets: GatewayTargets) -> dict[str, str | None]:
    """The tracked refs and their commits, before a push.

    Raises:
        RepositoryError: the config, branch or refs cannot be read.
    """
    refs = [ref for t in await _tracked(local, targets) for ref in t.refs]
    return {ref: await asyncio.to_thread(local.plumbing.resolve_ref, ref) for ref in refs}


def moved(local: LocalRepository, before: Mapping[str, str | None]) -> set[str]:
    """The refs of ``before`` that point elsewhere now.

    Raises:
        RepositoryError: the refs cannot be read.
    """
    return {ref for ref, old in before.items() if local.plumbing.resolve_ref(ref) != old}


async def _wanted(
    local: LocalRepository, targets: GatewayTargets, remote: SpecialRemote
) -> Callable[[Key, str], Awaitable[bool]] | None:
    """The remote's preferred content as a filter, or None when it has none."""
    config = await asyncio.to_thread(lambda: local.view().config())
    if not (config.preferred.get(remote.uuid) or "").strip():
        return None

    async def wanted(key: Key, path: str) -> bool:
        return await targets.wants(remote.uuid, key, path)

    return wanted


def _set_tracking_ref(local: LocalRepository, remote: str, pushed: str) -> None:
    """Point ``refs/remotes/<remote>/<branch>`` at the exported commit (``fillExport``).

    git-annex makes a merge commit instead when the ref holds import history; there are
    no imports here, so the ref is set to the commit.
    """
    plumbing = local.plumbing
    commit = plumbing.resolve_ref(pushed)
    if commit is None:
        return
    name = f"refs/remotes/{remote}/{pushed.removeprefix(HEADS)}"
    plumbing.update_ref(name, commit, plumbing.resolve_ref(name))


async def export_pushed(
    local: LocalRepository,
    targets: GatewayTargets,
    pushed: Iterable[str],
    report: Callable[[str], None],
) -> int:
    """Export the tracking branches among ``pushed`` refs; return how many steps failed.

    ``report`` gets git-annex's lines (``export exportsr c.dat ok``). Once every file
    reached a remote, ``refs/remotes/<remote>/<branch>`` names the pushed commit. The
    gateway's journal is committed at the end.

    Raises:
        RepositoryError: the gateway's branch cannot be read or written.
    """
    pushed = set(pushed)
    failed = 0
    for tracked in await _tracked(local, targets):
        ref = next((r for r in tracked.refs if r in pushed), None)
        if ref is None:
            continue
        spec = ref if tracked.subdir is None else f"{ref}:{tracked.subdir}"
        tree = await asyncio.to_thread(local.plumbing.rev_tree, spec)
        if tree is None:
            continue
        remote = tracked.remote
        tree = await filter_export(local.plumbing, tree, await _wanted(local, targets, remote))
        async with AsyncExitStack() as stack:
            try:
                actions = open_export_actions(remote, stack, base=local.path)
            except AnnexProxyError as exc:
                report(f"export {remote.name}: {exc}")
                failed += 1
                continue
            exporter = Exporter(
                targets.exports, remote.uuid, actions, annexobjects=remote.annexobjects
            )
            async with targets.exports.exclusive(remote.uuid):
                outcomes = await exporter.run(tree)
            for outcome in outcomes:
                report(outcome.line(remote.name))
        failed += exporter.failed
        if exporter.all_filled:
            await asyncio.to_thread(_set_tracking_ref, local, remote.name, ref)
    await local.committer.commit()
    return failed
