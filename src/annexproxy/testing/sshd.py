"""A private OpenSSH server on loopback for interop tests: ``sshd -D -e`` in a temp dir.

Owns one ``sshd`` process: its host key, its config, its ``authorized_keys`` (one line
per client key, each with a forced command), its log, and stopping it together with
every process it spawned. Hands clients what git and git-annex need (a
``GIT_SSH_COMMAND`` pinned to the server's host key, and ``ssh://`` URLs). It must not
touch the system's sshd, ``~/.ssh`` or any system configuration; the only system state it
may create is sshd's privilege-separation directory (``/run/sshd``) when running as root.

Readiness is the ``Server listening on`` line sshd writes to stderr with ``-e``, never a
sleep. Linux only for the descendant walk (``/proc``), which is where the tests run.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from annexproxy.testing.realannex import shell_program

# The directory sshd chroots its unprivileged child into when started as root
# (OpenSSH's _PATH_PRIVSEP_CHROOT_DIR on Debian); it must exist and not be writable.
PRIVSEP_DIR = Path("/run/sshd")
# Options on every authorized_keys line: a forced command and nothing else.
KEY_RESTRICTIONS = ("no-port-forwarding", "no-pty", "no-agent-forwarding", "no-X11-forwarding")
_LISTENING = re.compile(r"Server listening on (\S+) port ([0-9]+)")
_BIND_ATTEMPTS = 5


class SshdError(RuntimeError):
    """sshd could not be set up or did not come up; the message carries its log."""


def find_sshd() -> str | None:
    """Path of the OpenSSH server binary, or None when it is not installed."""
    found = shutil.which("sshd")
    if found is not None:
        return found
    for candidate in ("/usr/sbin/sshd", "/usr/local/sbin/sshd"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def server_path() -> str:
    """The PATH for forced commands: this Python's scripts first (git-annex lives there)."""
    dirs = [str(Path(sys.executable).parent)]
    for program in ("git", "git-annex", "git-shell"):
        found = shutil.which(program)
        if found is not None:
            # pyenv-style shim directories are left out: a shim needs pyenv's environment.
            dirs.append(str(Path(found).parent))
    dirs += ["/usr/local/bin", "/usr/bin", "/bin"]
    return ":".join(dict.fromkeys(d for d in dirs if "/shims" not in d))


def forced_command(
    *,
    env: Mapping[str, str] | None = None,
    program: str | None = None,
    dash_c: bool = False,
) -> str:
    """A forced command line running annexproxy-shell with a known PATH and environment.

    sshd runs it through the user's shell with a minimal environment, so the program is
    named by absolute path and PATH is set explicitly (assignments before the command,
    as git-annex-shell's own documentation does for ``GIT_ANNEX_SHELL_DIRECTORY``).

    Args:
        env: extra variables, e.g. ``{"GIT_ANNEX_SHELL_READONLY": "1"}``.
        program: absolute path of the shell program; annexproxy-shell by default.
        dash_c: pass ``-c "$SSH_ORIGINAL_COMMAND"`` instead of relying on the program
            reading SSH_ORIGINAL_COMMAND itself.

    Returns:
        A shell command line, not yet quoted for ``authorized_keys``.
    """
    settings = {"PATH": server_path(), **(env or {})}
    words = [f"{name}={shlex.quote(value)}" for name, value in settings.items()]
    words.append(shlex.quote(program or shell_program()))
    if dash_c:
        words += ["-c", '"$SSH_ORIGINAL_COMMAND"']
    return " ".join(words)


@dataclass(frozen=True, slots=True, kw_only=True)
class SshIdentity:
    """A client key authorized on a :class:`PrivateSshd`, and how to use it."""

    name: str
    key: Path
    known_hosts: Path
    host: str
    port: int
    user: str
    ssh: str

    @property
    def ssh_command(self) -> str:
        """A ``GIT_SSH_COMMAND`` value: this key, the pinned host key, no user config."""
        return shlex.join(self.ssh_command_words())

    def ssh_command_words(self) -> list[str]:
        """The ``ssh`` program and options of :attr:`ssh_command`, as a list."""
        return [
            self.ssh,
            "-F",
            "/dev/null",
            "-p",
            str(self.port),
            "-i",
            str(self.key),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
        ]

    def url(self, path: Path) -> str:
        """The ``ssh://user@host:port/abs/path`` URL of a repository on the server."""
        return f"ssh://{self.user}@{self.host}:{self.port}{path.resolve()}"

    def client_env(self) -> dict[str, str]:
        """Environment making git and git-annex connect with this identity."""
        return {"GIT_ANNEX_USE_GIT_SSH": "1", "GIT_SSH_COMMAND": self.ssh_command}


def _authorized_keys_line(command: str, public_key: str, options: Iterable[str]) -> str:
    # sshd(8) AUTHORIZED_KEYS FILE FORMAT: inside command="...", only \" is an escape.
    if "\n" in command or "\\" in command:
        raise SshdError(f"cannot put a newline or backslash in a forced command: {command!r}")
    quoted = command.replace('"', '\\"')
    return ",".join([f'command="{quoted}"', *options]) + " " + public_key.strip() + "\n"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=60,
    )


def _parent_pids() -> dict[int, int]:
    """Map pid -> parent pid for every process visible in /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we looked
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = stat.rpartition(")")[2].split()
        parents[int(entry.name)] = int(fields[1])
    return parents


def descendant_levels(pid: int) -> list[list[int]]:
    """Live descendants of ``pid``: children, then grandchildren, and so on.

    Empty where /proc is unavailable.
    """
    if not Path("/proc/self/stat").exists():
        return []
    children: dict[int, list[int]] = {}
    for child, parent in _parent_pids().items():
        children.setdefault(parent, []).append(child)
    levels: list[list[int]] = []
    level = children.get(pid, [])
    while level:
        levels.append(level)
        level = [grandchild for child in level for grandchild in children.get(child, [])]
    return levels


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (empty where /proc is unavailable)."""
    return [each for level in descendant_levels(pid) for each in level]


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait, on a pidfd, until a process that is not our child exits; False on timeout."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        return bool(ready)
    finally:
        os.close(fd)


def _terminate(pids: list[int], timeout: float) -> None:
    """SIGTERM processes that are not our children and wait until they exit."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for pid in pids:
        if not _wait_gone(pid, timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class PrivateSshd:
    """``sshd -D -e`` on 127.0.0.1 and a free port, configured entirely inside ``workdir``.

    Use as a context manager, then :meth:`authorize` a client key per forced command.
    sshd reads ``authorized_keys`` on every connection, so keys may be added while it runs.
    """

    def __init__(
        self, workdir: Path, *, sshd: str | None = None, startup_timeout: float = 15.0
    ) -> None:
        self.workdir = workdir.resolve()
        self.host = "127.0.0.1"
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self.startup_timeout = startup_timeout
        self._sshd = sshd or find_sshd()
        self._port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_lines: list[str] = []
        self._reader: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def port(self) -> int:
        """The port sshd listens on (0 before :meth:`start`)."""
        return self._port

    @property
    def pid(self) -> int:
        """Process id of the listening sshd.

        Raises:
            SshdError: not started.
        """
        if self._proc is None:
            raise SshdError("sshd is not running")
        return self._proc.pid

    @property
    def log(self) -> str:
        """Everything sshd has written to stderr so far."""
        return "".join(self._log_lines)

    @property
    def authorized_keys(self) -> Path:
        """The ``authorized_keys`` file sshd consults."""
        return self.workdir / "authorized_keys"

    @property
    def known_hosts(self) -> Path:
        """A ``known_hosts`` file holding this server's host key at its address and port."""
        return self.workdir / "known_hosts"

    def _write_config(self) -> Path:
        config = self.workdir / "sshd_config"
        lines = [
            f"ListenAddress {self.host}:{self._port}",
            f"HostKey {self.workdir / 'ssh_host_ed25519_key'}",
            f"PidFile {self.workdir / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            "AuthorizedKeysCommand none",
            "AuthorizedPrincipalsFile none",
            "UsePAM no",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "HostbasedAuthentication no",
            "PubkeyAuthentication yes",
            "PermitRootLogin prohibit-password",
            "StrictModes no",
            "PermitUserEnvironment no",
            # Debian's bash sources ~/.bashrc for ssh commands when it is a top-level
            # shell (and not when SHLVL says it is nested). That file is the host's
            # business, not the test's, and costs ~0.2 s a connection here (pyenv init).
            "SetEnv SHLVL=1",
            # What git sends for protocol v2, as a real git hosting sshd accepts it.
            "AcceptEnv GIT_PROTOCOL",
            "AllowTcpForwarding no",
            "AllowAgentForwarding no",
            "X11Forwarding no",
            "PrintMotd no",
            "PrintLastLog no",
            "UseDNS no",
            "LoginGraceTime 30",
            "LogLevel INFO",
        ]
        config.write_text("\n".join(lines) + "\n")
        return config

    def _prepare(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        host_key = self.workdir / "ssh_host_ed25519_key"
        if not host_key.exists():
            _keygen(host_key, "annexproxy test host")
        self.authorized_keys.touch()
        if os.geteuid() == 0 and not PRIVSEP_DIR.is_dir():
            PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)

    def _read_log(self, stream: IO[bytes]) -> None:
        # Drains sshd's stderr for its whole life (connection processes log there too),
        # so sshd never blocks on a full pipe; EOF means they have all exited.
        for raw in stream:
            line = raw.decode("utf-8", "replace")
            self._log_lines.append(line)
            if _LISTENING.search(line):
                self._ready.set()
        self._ready.set()

    def _launch(self) -> bool:
        """Start sshd once on a fresh port; True when it is listening."""
        assert self._sshd is not None
        self._port = _free_port(self.host)
        config = self._write_config()
        self._log_lines = []
        self._ready.clear()
        self._proc = subprocess.Popen(
            [self._sshd, "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert self._proc.stderr is not None
        self._reader = threading.Thread(
            target=self._read_log, args=(self._proc.stderr,), name="sshd-log", daemon=True
        )
        self._reader.start()
        if not self._ready.wait(self.startup_timeout):
            self.stop()
            raise SshdError(f"sshd did not listen within {self.startup_timeout} s:\n{self.log}")
        proc = self._proc
        if proc.poll() is None:
            return True
        self.stop()
        if "Address already in use" in self.log:
            return False  # lost the race for the port to another process: try another
        raise SshdError(f"sshd exited with status {proc.returncode}:\n{self.log}")

    def start(self) -> None:
        """Generate the host key and config, start sshd and wait until it listens.

        Raises:
            SshdError: no sshd binary, or sshd failed to start (its log is in the message).
        """
        if self._sshd is None:
            raise SshdError("no sshd binary found (install openssh-server)")
        self._prepare()
        for _ in range(_BIND_ATTEMPTS):
            if self._launch():
                self._write_known_hosts()
                return
        raise SshdError(f"no free port after {_BIND_ATTEMPTS} attempts:\n{self.log}")

    def _write_known_hosts(self) -> None:
        public = (self.workdir / "ssh_host_ed25519_key.pub").read_text().split()
        self.known_hosts.write_text(f"[{self.host}]:{self._port} {public[0]} {public[1]}\n")

    def authorize(
        self, name: str, command: str, *, options: Iterable[str] = KEY_RESTRICTIONS
    ) -> SshIdentity:
        """Make a client key pair and authorize it with a forced command.

        Args:
            name: a label, unique per server, naming the key files.
            command: the forced command (see :func:`forced_command`).
            options: further ``authorized_keys`` options.

        Returns:
            The identity a client connects with.

        Raises:
            SshdError: the command cannot be written into ``authorized_keys``.
        """
        key = self.workdir / f"client_{name}"
        _keygen(key, f"annexproxy test client {name}")
        public_key = key.with_suffix(".pub").read_text()
        line = _authorized_keys_line(command, public_key, options)
        with self.authorized_keys.open("a", encoding="utf-8") as out:
            out.write(line)
        return SshIdentity(
            name=name,
            key=key,
            known_hosts=self.known_hosts,
            host=self.host,
            port=self._port,
            user=self.user,
            ssh=shutil.which("ssh") or "ssh",
        )

    def descendants(self) -> list[int]:
        """Live processes sshd has spawned (connection handlers and forced commands)."""
        if self._proc is None or self._proc.poll() is not None:
            return []
        return descendants(self._proc.pid)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop sshd and every process it spawned; safe to call more than once."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        # Connection handlers call setsid(), so a process-group kill would miss them.
        # End the deepest processes first, each level before its parents, so that every
        # process is reaped by a live parent instead of being orphaned to init.
        levels = descendant_levels(proc.pid) if proc.poll() is None else []
        for level in reversed(levels):
            _terminate(level, timeout)
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._reader is not None:
            self._reader.join(timeout)
        if proc.stderr is not None:
            proc.stderr.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
