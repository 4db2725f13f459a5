"""The embedded demo: a repository served by annexproxy-shell to the real git-annex client.

It makes a temporary bare repository, clones it over a local stand-in for ssh with
``remote.origin.annex-shell`` pointing at annexproxy-shell, and runs the everyday
git-annex commands against it, reporting each command and what it printed. It needs
git and git-annex installed (``pip install 'annexproxy[demo]'`` brings git-annex).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from annexproxy.errors import AnnexProxyError, ConfigError
from annexproxy.testing.realannex import AnnexRepo, fakessh_env, make_annex_repo, make_ssh_client

_PROGRESS = re.compile(r"^\s*\d+%\s")

DEMO_FILES = {
    "README.txt": b"Served by annexproxy-shell.\n",
    "data/measurements.csv": b"t,value\n"
    + b"".join(f"{i},{i * i}\n".encode() for i in range(50000)),
    "data/empty.dat": b"",
    "images/ünïcødé name.bin": bytes(range(256)) * 1024,
}


class DemoError(AnnexProxyError):
    """A step of the demo failed; the message holds the command and its output."""


def _without_progress(output: str) -> str:
    lines = output.replace("\r", "\n").splitlines()
    return "\n".join(line for line in lines if line.strip() and not _PROGRESS.match(line))


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoStep:
    """One command the demo ran, where, and what it printed."""

    where: str
    command: str
    output: str


def check_tools() -> None:
    """Make sure git and git-annex are installed.

    Raises:
        ConfigError: one of them is missing, with what to install.
    """
    for tool, hint in (("git", "install git"), ("git-annex", "pip install git-annex")):
        if shutil.which(tool) is None:
            raise ConfigError(f"the demo needs {tool}, which is not on PATH: {hint}")


def run_demo(workdir: Path, report: Callable[[DemoStep], None]) -> tuple[AnnexRepo, AnnexRepo]:
    """Run the demo in ``workdir``; ``report`` receives each step as it finishes.

    Returns:
        The served repository and the client repository.

    Raises:
        ConfigError: git or git-annex is missing.
        DemoError: a git-annex command failed (its output is in the message).
    """
    check_tools()
    server = make_annex_repo(workdir / "server.git", "annexproxy demo server", bare=True)
    client = make_ssh_client(server, workdir / "client", "demo client")
    for name, content in DEMO_FILES.items():
        target = client.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)

    def step(repo: AnnexRepo, where: str, *args: str, check: bool = True) -> None:
        is_git = args[0] == "git"
        command = " ".join(("git", *args[1:]) if is_git else ("git", "annex", *args))
        try:
            result = repo.git(*args[1:]) if is_git else repo.annex(*args, check=check)
        except AssertionError as exc:
            raise DemoError(f"demo step failed: {command}\n{exc}") from exc
        report(DemoStep(where=where, command=command, output=_without_progress(result.stdout)))

    step(client, "client", "add", ".")
    step(client, "client", "git", "commit", "-q", "-m", "demo files")
    step(client, "client", "copy", "--to", "origin", ".")
    step(client, "client", "drop", ".")
    step(client, "client", "whereis", "data/measurements.csv")
    step(client, "client", "get", "--from", "origin", ".")
    step(client, "client", "fsck", "--from", "origin", "--fast", ".")
    step(client, "client", "drop", "--from", "origin", "data/empty.dat")
    step(server, "server", "whereis", "--all", check=False)
    return server, client


def try_it_yourself(client: AnnexRepo) -> str:
    """What a user types to go on using the demo client by hand."""
    env = fakessh_env()
    exports = " ".join(f"{name}='{value}'" for name, value in env.items())
    return f"cd '{client.path}' && export {exports} && git annex whereis"
