"""``annex.numcopies`` gitattributes of work-tree paths, through ``git check-attr``.

Owns one long-running ``git check-attr --stdin -z annex.numcopies`` coprocess (as
git-annex runs one), started lazily and stopped by `CheckAttr.close`, and a per-path
cache. Strict parsing of the attribute value (``[0-9]+``). Nothing else runs git here.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
from pathlib import Path
from typing import IO

from annexproxy.errors import RepositoryError

_COUNT = re.compile(r"[0-9]+")
#: Paths whose answers are cached before the cache is emptied (bounded memory).
CACHE_LIMIT = 200_000


class CheckAttr:
    """``annex.numcopies`` of work-tree paths, from one ``git check-attr --stdin -z``.

    The coprocess is started on the first question and answers path by path (git
    flushes after each), so batch mode can keep answering line by line. Answers are
    cached per path. Bare repositories have no work tree: every answer is None.
    """

    def __init__(self, worktree: Path | None) -> None:
        """Ask about paths relative to ``worktree`` (None: bare, never ask)."""
        self._worktree = worktree
        self._proc: subprocess.Popen[bytes] | None = None
        self._cache: dict[str, int | None] = {}

    def numcopies(self, path: str) -> int | None:
        """The ``annex.numcopies`` attribute of ``path`` as a number, None when unset.

        Raises:
            RepositoryError: git check-attr cannot be run or stops answering.
        """
        if path in self._cache:
            return self._cache[path]
        value = self._ask(path)
        number = int(value) if value is not None and _COUNT.fullmatch(value) else None
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[path] = number
        return number

    def _ask(self, path: str) -> str | None:
        if self._worktree is None or "\0" in path:
            return None
        proc = self._start()
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            proc.stdin.write(path.encode("utf-8", "surrogateescape") + b"\0")
            proc.stdin.flush()
            fields = [_read_field(proc.stdout) for _ in range(3)]
        except OSError as exc:
            raise RepositoryError(f"git check-attr failed: {exc}") from exc
        value = fields[2]
        return None if value in ("unspecified", "unset", "set") else value

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            try:
                self._proc = subprocess.Popen(
                    ["git", "check-attr", "--stdin", "-z", "annex.numcopies"],
                    cwd=self._worktree,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
            except OSError as exc:
                raise RepositoryError(f"cannot run git check-attr: {exc}") from exc
        return self._proc

    def close(self) -> None:
        """Stop the coprocess (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            assert proc.stdin is not None
            assert proc.stdout is not None
            with contextlib.suppress(OSError):
                proc.stdin.close()
            proc.wait()
            proc.stdout.close()


def _read_field(stream: IO[bytes]) -> str:
    """One NUL-terminated field of check-attr output (bounded: paths and values)."""
    out = bytearray()
    while len(out) < 65536:
        byte = stream.read(1)
        if not byte:
            raise RepositoryError("git check-attr ended unexpectedly")
        if byte == b"\0":
            return out.decode("utf-8", "surrogateescape")
        out += byte
    raise RepositoryError("git check-attr answered with an overlong field")
