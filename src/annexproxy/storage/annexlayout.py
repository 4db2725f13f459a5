"""Where things live in a local git-annex repository, and what its git config says.

Owns finding the gitdir and annexdir of a bare or non-bare repository (or a linked
worktree), reading ``annex.uuid``, ``annex.version``, ``annex.pidlock``,
``annex.diskreserve`` and the ``annex.tune.*`` settings once when the repository is
opened, and turning keys into object, temp and transfer-lock paths (branch.md sections
8 and 9). It must not read or write object content or take locks;
`annexproxy.storage.annexrepo` does that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pygit2

from annexproxy.errors import RepositoryError
from annexproxy.keys import Key
from annexproxy.space.reserve import DEFAULT_DISK_RESERVE, disk_reserve
from annexproxy.uuids import RepoUUID, UUIDFormatError, parse_uuid

#: The lowest repository version whose content-lock convention we implement (branch.md 10).
MIN_WRITABLE_VERSION = 10

_DIGITS = re.compile(r"[0-9]+\Z")


@dataclass(frozen=True, slots=True, kw_only=True)
class RepoConfig:
    """The git config settings of a git-annex repository that the object store depends on."""

    uuid: RepoUUID
    version: int | None
    bare: bool
    pidlock: bool = False
    crippled: bool = False
    objecthashlower: bool = False
    objecthash1: bool = False
    fsync: bool = True
    """``annexproxy.fsync`` (default true): objects and their directories are synced to
    disk before an upload is reported stored. git-annex does not sync; false matches it
    (faster on slow disks, but a crash may lose content clients were told is stored)."""
    disk_reserve: int = DEFAULT_DISK_RESERVE
    """``annex.diskreserve`` in bytes (git-annex's default 100 MB): free space that spooling
    transfers for special remotes must leave on the repository's disk."""

    def write_refusal(self) -> str | None:
        """Why we must not write (add, lock, remove) in this repository, or None if we may."""
        if self.version is None or self.version < MIN_WRITABLE_VERSION:
            return (
                f"repository version {self.version if self.version is not None else 'unset'}"
                f" uses the old content-lock convention; run `git annex upgrade` to reach"
                f" version {MIN_WRITABLE_VERSION}"
            )
        if self.pidlock:
            return (
                "annex.pidlock=true: git-annex replaces record locks with a pid lock, which a"
                " second program cannot share safely"
            )
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class AnnexLayout:
    """Paths inside one git-annex repository."""

    path: Path
    gitdir: Path
    annexdir: Path
    config: RepoConfig

    @property
    def objects(self) -> Path:
        """The object store root, ``<annexdir>/objects``."""
        return self.annexdir / "objects"

    def _hashdirs(self, key: Key) -> list[str]:
        """Hash directories to look in, in git-annex's order (branch.md 8 table)."""
        levels = 1 if self.config.objecthash1 else 2
        lower = key.hashdir_lower(levels)
        if self.config.objecthashlower:
            return [lower]
        mixed = key.hashdir_mixed(levels)
        if self.config.bare or self.config.crippled:
            return [lower, mixed]
        return [mixed, lower]

    def object_names(self, key: Key) -> list[str]:
        """Every place the object file of ``key`` may be, in lookup order.

        Strings, not Paths: lookups run several times per request, and a Path costs more
        to make than the ``stat`` it is made for.
        """
        kf = key.keyfile()
        root = f"{self.annexdir}/objects/"
        return [f"{root}{hashdir.rstrip('/')}/{kf}/{kf}" for hashdir in self._hashdirs(key)]

    def new_object_path(self, key: Key) -> Path:
        """Where new content of ``key`` goes (the first lookup place)."""
        return Path(self.object_names(key)[0])

    def tmp_path(self, key: Key) -> Path:
        """The partial-content file, ``<annexdir>/tmp/<kf>``."""
        return Path(f"{self.annexdir}/tmp/{key.keyfile()}")

    def othertmp(self) -> Path:
        """The directory for small temporary files (``<annexdir>/othertmp``)."""
        return self.annexdir / "othertmp"

    def download_lock_path(self, key: Key) -> Path:
        """The transfer lock any download of ``key`` takes (branch.md 9)."""
        return Path(f"{self.annexdir}/transfer/download/lck/lck.{key.keyfile()}")


def _config_bool(config: pygit2.Config, name: str) -> bool:
    try:
        return bool(config.get_bool(name))
    except KeyError:
        return False
    except (pygit2.GitError, ValueError) as exc:
        raise RepositoryError(f"git config {name} is not a boolean: {exc}") from exc


def _config_str(config: pygit2.Config, name: str) -> str | None:
    try:
        return str(config[name])
    except KeyError:
        return None


def _parse_version(text: str | None) -> int | None:
    if text is None:
        return None
    if not _DIGITS.match(text.strip()):
        raise RepositoryError(f"annex.version is not a number: {text!r}")
    return int(text.strip())


def _common_dir(gitdir: Path) -> Path:
    """The main gitdir of a linked worktree (``<gitdir>/commondir``), else ``gitdir``."""
    marker = gitdir / "commondir"
    if not marker.is_file():
        return gitdir
    target = Path(marker.read_text(encoding="utf-8").strip())
    return (gitdir / target).resolve() if not target.is_absolute() else target


def open_layout(path: Path) -> AnnexLayout:
    """Find a git-annex repository at ``path`` and read its configuration once.

    Args:
        path: the top of a non-bare repository, or a bare repository directory.

    Raises:
        RepositoryError: ``path`` is not a git repository, has no ``annex.uuid`` (not
            initialised with ``git annex init``), or its configuration is malformed.
    """
    path = Path(path).resolve()
    if not path.is_dir():
        raise RepositoryError(f"{path} is not a directory")
    try:
        repo = pygit2.Repository(str(path), flags=pygit2.enums.RepositoryOpenFlag.NO_SEARCH)
    except pygit2.GitError as exc:
        raise RepositoryError(f"{path} is not a git repository: {exc}") from exc
    gitdir = Path(repo.path).resolve()
    config = repo.config
    uuid_text = _config_str(config, "annex.uuid")
    if not uuid_text:
        raise RepositoryError(
            f"{path} is not a git-annex repository (no annex.uuid); run `git annex init`"
        )
    try:
        uuid = parse_uuid(uuid_text)
    except UUIDFormatError as exc:
        raise RepositoryError(f"{path}: annex.uuid is malformed: {uuid_text!r}") from exc
    repo_config = RepoConfig(
        uuid=uuid,
        version=_parse_version(_config_str(config, "annex.version")),
        bare=bool(repo.is_bare),
        pidlock=_config_bool(config, "annex.pidlock"),
        crippled=_config_bool(config, "annex.crippledfilesystem"),
        objecthashlower=_config_bool(config, "annex.tune.objecthashlower"),
        objecthash1=_config_bool(config, "annex.tune.objecthash1"),
        fsync=_config_str(config, "annexproxy.fsync") is None
        or _config_bool(config, "annexproxy.fsync"),
        disk_reserve=disk_reserve(_config_str(config, "annex.diskreserve")),
    )
    return AnnexLayout(
        path=path, gitdir=gitdir, annexdir=_common_dir(gitdir) / "annex", config=repo_config
    )
