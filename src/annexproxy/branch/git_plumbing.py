"""The one place the branch layer touches git: reading ``refs/heads/git-annex`` and config.

Owns an open ``pygit2.Repository`` and a few typed operations on it: read one file of
the git-annex branch, and read the repository settings that change how the branch and
the journal must be written (``RepoSettings``). It must not parse logs or decide
anything about their content; it converts libgit2 failures to `RepositoryError` at this
boundary. No git subprocess is run per call (branch.md section 13, trap about filters).

Later operations of the branch layer (hashing blobs, building trees, compare-and-swap
ref updates for committing the journal or writing a sibling ref) belong here too.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pygit2

from annexproxy.errors import RepositoryError

BRANCH_REF = "refs/heads/git-annex"


class SharedRepository(enum.Enum):
    """How ``core.sharedRepository`` asks files to be shared (git-annex ``SharedRepository``)."""

    UNSHARED = "umask"
    GROUP = "group"
    ALL = "all"

    @classmethod
    def from_config(cls, value: str | None) -> SharedRepository:
        """Interpret a ``core.sharedRepository`` value as git-annex does.

        ``group``/``true``/``1`` share with the group, ``all``/``world``/``everybody``/``2``
        with everybody. Anything else (unset, ``umask``, ``false``, octal modes) keeps
        the umask: octal modes are not honoured yet.
        """
        word = (value or "").strip().lower()
        if word in ("group", "true", "yes", "on", "1"):
            return cls.GROUP
        if word in ("all", "world", "everybody", "2"):
            return cls.ALL
        return cls.UNSHARED


@dataclass(frozen=True, slots=True, kw_only=True)
class RepoSettings:
    """Git config of a repository that matters when writing its git-annex branch."""

    uuid: str | None
    shared: SharedRepository
    pidlock: bool  # annex.pidlock: git-annex then uses a pid lock, not fcntl locks
    branchhash1: bool  # annex.tune.branchhash1: one hash directory level in the branch
    private_uuids: frozenset[str]  # annex.private / remote.<name>.annex-private


def _git_bool(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "yes", "on", "1")


class GitPlumbing:
    """An open git repository, for the branch layer.

    Calls are serialised with a lock, because a libgit2 repository object must not be
    used by several threads at once (the journal runs in worker threads).
    """

    def __init__(self, path: Path | str) -> None:
        """Open the repository at ``path`` (work tree, ``.git`` or bare repository).

        Raises:
            RepositoryError: there is no git repository there.
        """
        try:
            self._repo = pygit2.Repository(str(path))
        except (pygit2.GitError, KeyError, OSError) as exc:
            raise RepositoryError(f"cannot open a git repository at {path}: {exc}") from exc
        self._lock = threading.Lock()

    @property
    def gitdir(self) -> Path:
        """The git directory (``.git`` of a work tree, or the bare repository)."""
        return Path(self._repo.path)

    @property
    def annexdir(self) -> Path:
        """``<gitdir>/annex`` (linked work trees are not handled yet)."""
        return self.gitdir / "annex"

    def read_branch_file(self, path: str) -> bytes | None:
        """Read one file of the git-annex branch as committed (journal not included).

        Args:
            path: ``/``-separated path from the top of the branch.

        Returns:
            The blob's bytes, or None when the branch or the path does not exist or
            the path is not a file.

        Raises:
            RepositoryError: git could not read the objects (corrupt repository, ...).
        """
        with self._using():
            ref = self._repo.references.get(BRANCH_REF)
            if ref is None:
                return None
            tree = ref.peel(pygit2.Commit).tree
            try:
                entry = tree[path]
            except KeyError:
                return None
            if not isinstance(entry, pygit2.Blob):
                return None
            return entry.data

    def read_settings(self) -> RepoSettings:
        """Read the config values in `RepoSettings` from the repository's git config.

        Raises:
            RepositoryError: the config cannot be read.
        """
        with self._using():
            config = self._repo.config.snapshot()
            # A key given without "= value" is a boolean true, as in git.
            values = {
                entry.name.lower(): "true" if entry.value is None else entry.value
                for entry in config
            }
        uuid = values.get("annex.uuid")
        private = set()
        if uuid and _git_bool(values.get("annex.private")):
            private.add(uuid)
        for name, value in values.items():
            if name.startswith("remote.") and name.endswith(".annex-private") and _git_bool(value):
                remote_uuid = values.get(name.removesuffix(".annex-private") + ".annex-uuid")
                if remote_uuid:
                    private.add(remote_uuid)
        return RepoSettings(
            uuid=uuid or None,
            shared=SharedRepository.from_config(values.get("core.sharedrepository")),
            pidlock=_git_bool(values.get("annex.pidlock")),
            branchhash1=_git_bool(values.get("annex.tune.branchhash1")),
            private_uuids=frozenset(private),
        )

    @contextmanager
    def _using(self) -> Iterator[None]:
        with self._lock:
            try:
                yield
            except pygit2.GitError as exc:
                raise RepositoryError(f"git failed in {self.gitdir}: {exc}") from exc

    def close(self) -> None:
        """Release the repository's files and caches."""
        with self._lock:
            self._repo.free()

    def __enter__(self) -> GitPlumbing:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
