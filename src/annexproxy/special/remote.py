"""A special remote's configuration as git-annex resolves it.

git-annex keeps a special remote's shared settings in the branch's ``remote.log``
(``type=``, ``chunk=``, ``encryption=``, ``bucket=`` ...) and per-repository settings
in git config (``remote.NAME.annex-directory``, ``remote.NAME.annex-uuid`` ...).
`SpecialRemote` holds both; `find_special_remotes` lists the ones a git config names.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from annexproxy.uuids import RepoUUID


@dataclass(frozen=True, slots=True, kw_only=True)
class SpecialRemote:
    """One special remote: its UUID, git remote name, type and settings."""

    uuid: RepoUUID
    name: str
    type: str
    params: Mapping[str, str] = field(default_factory=dict)
    """The remote.log fields (``type`` and ``name`` included)."""
    git: Mapping[str, str] = field(default_factory=dict)
    """``remote.NAME.*`` git config entries, by the part after ``remote.NAME.``."""

    def setting(self, name: str) -> str | None:
        """A git config ``annex-NAME`` setting, else the remote.log field ``NAME``."""
        value = self.git.get(f"annex-{name}")
        return value if value is not None else self.params.get(name)

    @property
    def exporttree(self) -> bool:
        """Configured with ``exporttree=yes``: files are kept under their tree names."""
        return self.params.get("exporttree") == "yes"

    @property
    def annexobjects(self) -> bool:
        """An export remote with ``annexobjects=yes``: other keys go to its object area."""
        return self.exporttree and self.params.get("annexobjects") == "yes"

    @property
    def proxiable(self) -> bool:
        """Whether a gateway may proxy it.

        git-annex's updateproxy refuses an export remote without annexobjects=yes: it
        could not store keys outside the export.
        """
        return not self.exporttree or self.annexobjects


def remote_git_config(entries: Mapping[str, str], name: str) -> dict[str, str]:
    """The ``remote.NAME.*`` entries of a git config, keyed by what follows the name."""
    prefix = f"remote.{name}."
    return {k[len(prefix) :]: v for k, v in entries.items() if k.startswith(prefix)}


def find_special_remote(
    entries: Mapping[str, str], remotes: Mapping[str, Mapping[str, str]], name: str
) -> SpecialRemote | None:
    """The special remote configured under git remote ``name``, or None.

    A git remote is a special remote when it has no ``url`` and its ``annex-uuid`` has
    a ``remote.log`` configuration with a ``type``.

    Args:
        entries: the repository's git config.
        remotes: the branch's remote.log, by UUID.
        name: the git remote name.
    """
    git = remote_git_config(entries, name)
    uuid = git.get("annex-uuid")
    if not uuid or git.get("url"):
        return None
    params = remotes.get(uuid)
    if not params or not params.get("type"):
        return None
    return SpecialRemote(
        uuid=RepoUUID(uuid), name=name, type=params["type"], params=dict(params), git=git
    )
