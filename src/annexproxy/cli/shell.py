"""`annexproxy-shell`: a drop-in for `git-annex-shell`, argv- and environment-compatible.

Accepts what ssh hands git-annex-shell (wire.md section 3): ``COMMAND ARGS...``,
``-c "COMMAND LINE"`` (login shell), or nothing with ``SSH_ORIGINAL_COMMAND`` set (forced
command). Serves ``p2pstdio`` and ``configlist`` itself and hands git's own
``git-upload-pack`` / ``git-receive-pack`` / ``git-upload-archive`` to ``git-shell -c``.
Honours GIT_ANNEX_SHELL_READONLY, _APPENDONLY, _DIRECTORY and _LIMITED. Messages go to
stderr prefixed ``git-annex-shell:`` as git-annex's do, since clients show them to users.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from annexproxy.cluster.gateway import GatewayTargets
from annexproxy.errors import AnnexProxyError, ConfigError
from annexproxy.server.export_hook import export_pushed, moved, watch
from annexproxy.server.p2p_session import AccessMode, P2PSession, SessionOptions
from annexproxy.server.repository import open_repository, read_repository_uuid
from annexproxy.transports.streams import FdStream
from annexproxy.uuids import is_cluster_uuid

PROG = "git-annex-shell"
GIT_COMMANDS = ("git-upload-pack", "git-receive-pack", "git-upload-archive")
USAGE = "Usage: git-annex-shell [-c] command [parameters ...] [option ...]"


@dataclass(frozen=True, slots=True, kw_only=True)
class ShellRequest:
    """A parsed git-annex-shell command line."""

    command: str
    params: tuple[str, ...]
    expected_uuid: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)


def _env_set(env: Mapping[str, str], name: str) -> bool:
    return bool(env.get(name))


def command_words(argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """Turn what ssh gave us into the words of one git-annex-shell command.

    Raises:
        ConfigError: nothing to run.
    """
    args = list(argv)
    if not args and env.get("SSH_ORIGINAL_COMMAND"):
        args = ["-c", env["SSH_ORIGINAL_COMMAND"]]
    if args[:1] == ["-c"]:
        args = args[1:]
        if len(args) == 1:
            args = shlex.split(args[0])
    if args and Path(args[0]).name in (PROG, "annexproxy-shell"):
        args = args[1:]
    if not args:
        raise ConfigError(f"bad parameters\n\n{USAGE}")
    return args


def parse_request(words: Sequence[str]) -> ShellRequest:
    """Split a command's words into parameters, ``--uuid`` and ``-- field=value --`` fields.

    Raises:
        ConfigError: an option lacks its value.
    """
    command, rest = words[0], list(words[1:])
    params: list[str] = []
    fields: dict[str, str] = {}
    expected: str | None = None
    i = 0
    while i < len(rest):
        word = rest[i]
        if word == "--uuid":
            if i + 1 >= len(rest):
                raise ConfigError("--uuid needs a value")
            expected = rest[i + 1]
            i += 2
            continue
        if word == "--":
            end = rest.index("--", i + 1) if "--" in rest[i + 1 :] else len(rest)
            for item in rest[i + 1 : end]:
                name, _, value = item.partition("=")
                fields[name] = value
            i = end + 1
            continue
        if not word.startswith("--"):
            params.append(word)
        i += 1
    return ShellRequest(
        command=command, params=tuple(params), expected_uuid=expected, fields=fields
    )


def resolve_directory(text: str, env: Mapping[str, str]) -> Path:
    """Resolve a repository path as git-annex-shell does.

    ``/~/`` and ``/~user/`` expand to home directories; relative paths are relative to
    the home directory.
    """
    home = Path(env.get("HOME", str(Path.home())))
    if text.startswith("/~/"):
        return home / text[3:]
    if text.startswith("/~"):
        return Path(os.path.expanduser(text[1:]))
    if text.startswith("~"):
        return Path(os.path.expanduser(text))
    path = Path(text)
    return path if path.is_absolute() else home / path


def _check_directory(directory: Path, env: Mapping[str, str]) -> None:
    allowed = env.get("GIT_ANNEX_SHELL_DIRECTORY")
    if not allowed:
        return
    if os.path.realpath(allowed) != os.path.realpath(directory):
        raise ConfigError(f"Only allowed to access {allowed} not {directory}")


def access_mode(env: Mapping[str, str]) -> AccessMode:
    """The access mode the environment asks for (read-only wins over append-only)."""
    if _env_set(env, "GIT_ANNEX_SHELL_READONLY"):
        return AccessMode.READ_ONLY
    if _env_set(env, "GIT_ANNEX_SHELL_APPENDONLY"):
        return AccessMode.APPEND_ONLY
    return AccessMode.READ_WRITE


def _configlist(request: ShellRequest, env: Mapping[str, str]) -> int:
    if not request.params:
        raise ConfigError(f"bad parameters\n\n{USAGE}")
    directory = resolve_directory(request.params[0], env)
    _check_directory(directory, env)
    uuid = read_repository_uuid(directory) or ""
    if request.expected_uuid is not None and request.expected_uuid != uuid:
        raise ConfigError(f"expected repository UUID {request.expected_uuid} but found UUID {uuid}")
    sys.stdout.write(f"annex.uuid={uuid}\ncore.gcrypt-id=\n")
    sys.stdout.flush()
    return 0


def _p2pstdio(request: ShellRequest, env: Mapping[str, str]) -> int:
    if not request.params:
        raise ConfigError(f"bad parameters\n\n{USAGE}")
    if len(request.params) < 2:
        raise ConfigError("missing UUID parameter")
    directory = resolve_directory(request.params[0], env)
    _check_directory(directory, env)
    return asyncio.run(_serve(directory, request, access_mode(env)))


async def _serve(directory: Path, request: ShellRequest, mode: AccessMode) -> int:
    async with AsyncExitStack() as stack:
        local = await stack.enter_async_context(open_repository(directory))
        targets = GatewayTargets(local, stack)
        wanted = request.expected_uuid or local.storage.uuid
        storage = await targets.target(wanted)
        if storage is None:
            raise ConfigError(await targets.refusal(wanted))
        proxied: Literal["node", "cluster"] | None = None
        if storage.uuid != local.storage.uuid:
            proxied = "cluster" if is_cluster_uuid(storage.uuid) else "node"
        session = P2PSession(
            storage,
            FdStream(sys.stdin.fileno(), sys.stdout.fileno()),
            options=SessionOptions(mode=mode, proxied=proxied),
            report=_report,
            retarget=lambda bypass: targets.target(wanted, bypass),
        )
        return await session.run()


def _report(message: str) -> None:
    sys.stderr.write(f"git-annex: {message}\n")
    sys.stderr.flush()


def _git_shell(words: Sequence[str], env: Mapping[str, str]) -> int:
    if _env_set(env, "GIT_ANNEX_SHELL_LIMITED"):
        raise ConfigError(f"Not allowed to run {words[0]} in limited mode")
    if _env_set(env, "GIT_ANNEX_SHELL_READONLY") and words[0] == "git-receive-pack":
        raise ConfigError("this repository is read-only; write access denied")
    if len(words) > 1:
        _check_directory(resolve_directory(words[1], env), env)
    # git-shell's sq_dequote() insists on single-quoted arguments, which shlex.join omits.
    line = " ".join([words[0], *("'" + w.replace("'", "'\\''") + "'" for w in words[1:])])
    if words[0] == "git-receive-pack" and len(words) > 1:
        directory = resolve_directory(words[1], env)
        if read_repository_uuid(directory) is not None:
            return asyncio.run(_receive_pack(directory, line))
    result = subprocess.run(["git-shell", "-c", line], check=False)
    if result.returncode != 0:
        raise ConfigError("git-shell failed")
    return 0


async def _receive_pack(directory: Path, line: str) -> int:
    """Run receive-pack, then export pushed tracking branches (git-annex's post-receive)."""
    async with AsyncExitStack() as stack:
        local = await stack.enter_async_context(open_repository(directory))
        targets = GatewayTargets(local, stack)
        try:
            before = await watch(local, targets)
        except AnnexProxyError as exc:
            _hook_report(f"post-receive: cannot read the tracking branches: {exc}")
            before = {}
        proc = await asyncio.create_subprocess_exec("git-shell", "-c", line)
        if await proc.wait() != 0:
            raise ConfigError("git-shell failed")
        pushed = moved(local, before)
        if pushed:
            failed = await export_pushed(local, targets, pushed, _hook_report)
            if failed:
                _hook_report(f"post-receive: {failed} failed")
    return 0


def _hook_report(message: str) -> None:
    sys.stderr.write(f"{message}\n")
    sys.stderr.flush()


def run_shell(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """Run one git-annex-shell command and return the exit status.

    Raises:
        AnnexProxyError: anything that should end with a message and status 1.
    """
    words = command_words(argv, env)
    if words[0] in GIT_COMMANDS:
        return _git_shell(words, env)
    request = parse_request(words)
    if request.command == "p2pstdio":
        return _p2pstdio(request, env)
    if request.command == "configlist":
        return _configlist(request, env)
    raise ConfigError(
        f"unsupported command {request.command!r} (annexproxy-shell serves "
        f"p2pstdio, configlist and git's own commands)\n\n{USAGE}"
    )


def main() -> None:
    """Entry point of ``annexproxy-shell``."""
    try:
        status = run_shell(sys.argv[1:], os.environ)
    except AnnexProxyError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        status = 1
    except KeyboardInterrupt:
        status = 130
    sys.exit(status)
