"""Exported trees: file names on an ``exporttree=yes`` remote, and how to change them.

Owns the pure side of git-annex's export (``Command/Export.hs``, ``Annex/Export.hs``,
``Annex/Locations.hs``):

* which key a tree entry exports: an annexed file (a symlink to ``.../annex/objects/``
  or a pointer file ``/annex/objects/KEY``) exports its key; any other regular file a
  "git sha key" ``GIT--<blob sha>`` whose content is the blob; submodules and other
  symlinks are not exported;
* the remote's ``annexobjects=yes`` area ``.git/annex/objects/<hashdirlower><kf>/<kf>``
  and the temporary name ``.git-annex-tmp-content-<key>`` renames go through;
* `plan_export`: from the trees exported before to the new one, which files are moved
  to a temporary name and back (renames, so swaps work), which are disposed of (moved to
  the annexobjects area, or deleted), and which file names the new tree must have.

It never touches a remote, a repository or a clock; the exporter executes the plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from annexproxy.errors import KeyFormatError
from annexproxy.keys import Key, unkeyfile

GIT_VARIETY = "GIT"
TEMP_PREFIX = ".git-annex-tmp-content-"
MODE_SYMLINK = 0o120000
MODE_SUBMODULE = 0o160000
MAX_POINTER = 32 * 1024
"""Larger blobs are never pointer files (git-annex reads at most this much)."""
_OBJECTS = b"annex/objects/"

ExportTree = Mapping[str, Key]
"""An exported tree: file name (``/``-separated, from the top) to the key it holds."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TreeItem:
    """One file of a git tree, as ``git ls-tree -r`` lists it."""

    path: str
    mode: int
    sha: str


def git_sha_key(sha: str) -> Key:
    """The key git-annex exports a non-annexed file under (``Annex/GitShaKey``)."""
    return Key(variety=GIT_VARIETY, name=sha)


def is_git_sha_key(key: Key) -> bool:
    """Whether ``key`` stands for a git blob rather than annexed content."""
    return key.variety == GIT_VARIETY


def annexobject_location(key: Key) -> str:
    """Where an ``annexobjects=yes`` remote keeps a key outside the exported tree."""
    kf = key.keyfile()
    return f".git/annex/objects/{key.hashdir_lower()}{kf}/{kf}"


def temp_location(key: Key) -> str:
    """The name an exported file is renamed to while renames are under way."""
    return TEMP_PREFIX + key.keyfile()


def _key_at_end(path: bytes) -> Key | None:
    if _OBJECTS not in path:
        return None
    name = path.rstrip(b"/").rsplit(b"/", 1)[-1]
    try:
        return Key.parse(unkeyfile(name.decode("utf-8", "surrogateescape")))
    except KeyFormatError:
        return None


def key_from_link(target: bytes) -> Key | None:
    """The key an annex symlink target points at, or None when it is not one."""
    return _key_at_end(target)


def key_from_pointer(content: bytes) -> Key | None:
    """The key of a pointer file (``/annex/objects/KEY`` then line breaks), or None."""
    if len(content) > MAX_POINTER:
        return None
    first, _, rest = content.partition(b"\n")
    if rest.strip(b"\n") or not first.startswith(b"/" + _OBJECTS):
        return None
    return _key_at_end(first)


def export_key(item: TreeItem, content: bytes | None) -> Key | None:
    """The key ``item`` is exported as, or None when it is not exported.

    Args:
        item: the tree entry.
        content: the blob's bytes when it is at most `MAX_POINTER` long (a symlink's
            target), else None.
    """
    if item.mode == MODE_SUBMODULE:
        return None
    if item.mode == MODE_SYMLINK:
        return None if content is None else key_from_link(content)
    key = None if content is None else key_from_pointer(content)
    return key if key is not None else git_sha_key(item.sha)


def locations_of(tree: ExportTree) -> dict[Key, list[str]]:
    """Every file name of each key in ``tree``, in tree order."""
    found: dict[Key, list[str]] = {}
    for path, key in tree.items():
        found.setdefault(key, []).append(path)
    return found


@dataclass(frozen=True, slots=True, kw_only=True)
class Move:
    """Rename the file holding ``key`` from ``source`` to ``dest`` on the remote."""

    key: Key
    source: str
    dest: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Removal:
    """Delete ``path`` (it holds one of ``keys``; a conflict may leave either)."""

    path: str
    keys: tuple[Key, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportPlan:
    """The steps of one export, in the order they run."""

    recover: tuple[Key, ...] = ()
    """Temporary names an interrupted export may have left: deleted if there."""
    to_temp: tuple[Move, ...] = ()
    disposals: tuple[Move | Removal, ...] = ()
    """Old files no longer wanted: to the annexobjects area (Move) or deleted."""
    unexports: tuple[Removal, ...] = ()
    """Files of conflicting old exports: deleted (their content is unknown)."""
    from_temp: tuple[Move, ...] = ()
    fill: tuple[tuple[str, Key], ...] = ()
    """Every file of the new tree, in tree order: present, or to be sent."""


def _changed(old: ExportTree, new: ExportTree) -> list[str]:
    """Paths whose key differs between the trees (added, removed or changed)."""
    paths = set(old) | set(new)
    return sorted(p for p in paths if old.get(p) != new.get(p))


def _dispose(key: Key, path: str, annexobjects: bool) -> Move | Removal:
    if annexobjects and not is_git_sha_key(key):
        return Move(key=key, source=path, dest=annexobject_location(key))
    return Removal(path=path, keys=(key,))


def plan_export(
    old_trees: Sequence[ExportTree],
    new: ExportTree,
    *,
    annexobjects: bool,
    incomplete: Iterable[ExportTree] = (),
) -> ExportPlan:
    """Plan the export of ``new`` over what was exported before (``changeExport``).

    Args:
        old_trees: the trees exported to the remote so far (none: a first export; more
            than one: an export conflict, resolved by deleting every changed file).
        new: the tree to export.
        annexobjects: the remote has ``annexobjects=yes`` (disposed keys are kept).
        incomplete: trees whose export began but did not finish.
    """
    recover: dict[Key, None] = {}
    for tree in incomplete:
        for path in _changed(tree, new):
            if path in tree:
                recover[tree[path]] = None
    fill = tuple(new.items())
    if not old_trees:
        return ExportPlan(recover=tuple(recover), fill=fill)
    if len(old_trees) > 1:
        unexports = []
        for tree in old_trees:
            for path in _changed(tree, new):
                keys = tuple(dict.fromkeys(k for k in (tree.get(path), new.get(path)) if k))
                unexports.append(Removal(path=path, keys=keys))
        return ExportPlan(recover=tuple(recover), unexports=tuple(unexports), fill=fill)
    (old,) = old_trees
    olds: dict[Key, list[str]] = {}
    news: dict[Key, list[str]] = {}
    for path in _changed(old, new):
        if path in old:
            olds.setdefault(old[path], []).append(path)
        if path in new:
            news.setdefault(new[path], []).append(path)
    to_temp: list[Move] = []
    disposals: list[Move | Removal] = []
    from_temp: list[Move] = []
    for key in sorted(olds, key=str):
        first, *rest = olds[key]
        if key in news:
            to_temp.append(Move(key=key, source=first, dest=temp_location(key)))
            from_temp.append(Move(key=key, source=temp_location(key), dest=news[key][0]))
        else:
            rest = [first, *rest]
        disposals.extend(_dispose(key, path, annexobjects) for path in rest)
    return ExportPlan(
        recover=tuple(recover),
        to_temp=tuple(to_temp),
        disposals=tuple(disposals),
        from_temp=tuple(from_temp),
        fill=fill,
    )
