"""A local stand-in for ssh: ``fakessh [ssh options] HOST COMMAND...`` runs COMMAND here.

Used as ``GIT_SSH_COMMAND`` (with ``GIT_ANNEX_USE_GIT_SSH=1``) so that git and git-annex
reach "remote" repositories over what they believe is ssh, and the remote end runs
``annexproxy-shell`` (or ``git-annex-shell``) exactly as sshd would, through ``sh -c``.
When ``FAKESSH_LOG`` names a file, each invocation's command line is appended to it.
With ``FAKESSH_CUT_AFTER=N`` (and optionally ``FAKESSH_CUT_MATCH=TEXT``, a substring of
the remote command), the connection dies after N bytes from the client, as a host that
crashes mid-transfer would: the remote command is killed and ssh exits with 255.
"""

from __future__ import annotations

import os
import subprocess
import sys

# ssh options that take a value (from ssh(1)).
_WITH_VALUE = set("BbcDEeFIiJLlmOoPpQRSWw")


def remote_command(argv: list[str]) -> str:
    """Return the command an ``ssh`` invocation would run on the remote host."""
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "--":
        opt = argv[i]
        i += 1
        # "-p 22" takes the next word; "-p22" and flag groups like "-nT" do not.
        if len(opt) == 2 and opt[1] in _WITH_VALUE:
            i += 1
    if i < len(argv) and argv[i] == "--":
        i += 1
    words = argv[i + 1 :]  # skip the host
    if not words:
        raise SystemExit("fakessh: no command given (interactive logins are not supported)")
    return " ".join(words)


def _relay_with_cut(command: str, budget: int) -> int:
    """Run ``command`` with our stdio, but kill it after ``budget`` bytes of input."""
    proc = subprocess.Popen(["sh", "-c", command], stdin=subprocess.PIPE)
    assert proc.stdin is not None
    while budget > 0:
        chunk = os.read(0, min(65536, budget))
        if not chunk:
            break
        budget -= len(chunk)
        try:
            proc.stdin.write(chunk)
            proc.stdin.flush()
        except BrokenPipeError:
            break
    if budget > 0:  # the client finished first: end normally
        proc.stdin.close()
        return proc.wait()
    proc.kill()
    proc.wait()
    return 255


def main() -> None:
    """Run the remote command locally, replacing this process."""
    command = remote_command(sys.argv[1:])
    log = os.environ.get("FAKESSH_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as out:
            out.write(command + "\n")
    cut = os.environ.get("FAKESSH_CUT_AFTER")
    if cut and os.environ.get("FAKESSH_CUT_MATCH", "") in command:
        sys.exit(_relay_with_cut(command, int(cut)))
    os.execvp("sh", ["sh", "-c", command])


if __name__ == "__main__":
    main()
