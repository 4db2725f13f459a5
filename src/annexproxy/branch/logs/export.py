"""``export.log``: which tree each repository exported to a special remote (branch.md 5).

Family 4.3 (git-annex ``Logs/Export.hs``, ``Logs/Export/Pure.hs``)::

    field := exporterUUID ":" remoteUUID
    value := treesha *( SP treesha )    ; the exported tree, then trees still in progress

An export is recorded twice (Command/Export): before the remote is touched the
exporter's value becomes ``<old tree or the empty tree> <new tree> [older incomplete
trees]`` (`record_beginning`); once old files were removed or renamed it becomes
``<new tree>`` (`record_underway`), and every *other* exporter's entry for the same
remote that named one of the old trees is moved to the new tree too, so that several
repositories exporting in lock-step do not look like a conflict. Several distinct trees
for one remote are an export conflict. Pure: no clock, no git.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from annexproxy.branch.logs.keyed import KeyedLog
from annexproxy.branch.logs.timestamps import Timestamp
from annexproxy.errors import LogFormatError

PATH = "export.log"
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


@dataclass(frozen=True, slots=True, order=True)
class ExportParticipants:
    """Who exported (``exporter``) to which special remote (``remote``)."""

    exporter: str
    remote: str

    @classmethod
    def parse(cls, field: bytes) -> ExportParticipants:
        """Parse ``exporter:remote`` (the exporter has no ``:``; the remote is the rest).

        Raises:
            LogFormatError: no ``:`` or an empty side.
        """
        exporter, sep, remote = field.partition(b":")
        if not sep or not exporter or not remote:
            raise LogFormatError(f"not an export.log field: {field!r}")
        return cls(
            exporter.decode("utf-8", "surrogateescape"), remote.decode("utf-8", "surrogateescape")
        )

    def format(self) -> bytes:
        """The field as stored."""
        return f"{self.exporter}:{self.remote}".encode("utf-8", "surrogateescape")


@dataclass(frozen=True, slots=True, kw_only=True)
class Exported:
    """One exporter's export: the tree exported and the trees still in progress."""

    tree: str
    incomplete: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: bytes) -> Exported:
        """Parse ``treesha *( SP treesha )``.

        Raises:
            LogFormatError: no tree, or an empty word (two spaces in a row).
        """
        words = value.split(b" ")
        if value.endswith(b" "):
            words.pop()  # git-annex's parser takes a final separator as the end
        if not words or not all(words):
            raise LogFormatError(f"not an export.log value: {value!r}")
        trees = [w.decode("ascii", "replace") for w in words]
        return cls(tree=trees[0], incomplete=tuple(trees[1:]))

    def format(self) -> bytes:
        """The value as stored."""
        return " ".join((self.tree, *self.incomplete)).encode("ascii")


def _valid_field(field: bytes) -> bool:
    try:
        ExportParticipants.parse(field)
    except LogFormatError:
        return False
    return True


def _valid_value(value: bytes) -> bool:
    try:
        Exported.parse(value)
    except LogFormatError:
        return False
    return True


def _parse(content: bytes) -> KeyedLog:
    log = KeyedLog.parse(content, valid=_valid_value)
    bad = tuple(line.format() for line in log.lines if not _valid_field(line.field))
    if not bad:
        return log
    good = tuple(line for line in log.lines if _valid_field(line.field))
    return KeyedLog(lines=good, unknown=(*log.unknown, *bad))


def parse_export_log(content: bytes) -> dict[ExportParticipants, Exported]:
    """The export in effect per (exporter, remote). Never raises: bad lines are skipped."""
    return {
        ExportParticipants.parse(field): Exported.parse(value)
        for field, value in _parse(content).values().items()
    }


def exported_trees(content: bytes, remote: str) -> list[str]:
    """The distinct trees exported to ``remote`` by anyone (more than one: a conflict)."""
    trees: list[str] = []
    for participants, exported in parse_export_log(content).items():
        if participants.remote == remote and exported.tree not in trees:
            trees.append(exported.tree)
    return trees


def current_tree(content: bytes, exporter: str, remote: str) -> str | None:
    """The tree ``remote`` holds as far as ``exporter`` knows, or None.

    The exporter's own entry wins; without one, the one tree everybody agrees on. None
    when nothing was exported or the exports conflict.
    """
    exports = parse_export_log(content)
    own = exports.get(ExportParticipants(exporter, remote))
    if own is not None:
        return own.tree
    trees = exported_trees(content, remote)
    return trees[0] if len(trees) == 1 else None


def record_beginning(
    content: bytes, exporter: str, remote: str, new_tree: str, now: Timestamp
) -> bytes:
    """The log after ``exporter`` began exporting ``new_tree`` (git-annex's first write).

    Raises:
        LogFormatError: the UUIDs or the tree cannot be stored.
    """
    key = ExportParticipants(exporter, remote)
    old = parse_export_log(content).get(key, Exported(tree=EMPTY_TREE))
    incomplete = tuple(dict.fromkeys((new_tree, *old.incomplete)))
    value = Exported(tree=old.tree, incomplete=incomplete)
    return _parse(content).with_value(key.format(), value.format(), now).format()


def record_underway(
    content: bytes,
    exporter: str,
    remote: str,
    old_trees: Sequence[str],
    new_tree: str,
    now: Timestamp,
) -> bytes:
    """The log once old files are gone: ``new_tree`` for ``exporter`` and lock-step peers.

    Args:
        content: the current log.
        exporter: the exporting repository.
        remote: the special remote.
        old_trees: the trees exported to ``remote`` before this export began.
        new_tree: the tree being exported.
        now: the clock.

    Raises:
        LogFormatError: the UUIDs or the tree cannot be stored.
    """
    log = _parse(content)
    for participants, exported in parse_export_log(content).items():
        if (
            participants.exporter != exporter
            and participants.remote == remote
            and exported.tree in old_trees
        ):
            moved = Exported(tree=new_tree, incomplete=exported.incomplete)
            log = log.with_value(participants.format(), moved.format(), now)
    key = ExportParticipants(exporter, remote)
    return log.with_value(key.format(), Exported(tree=new_tree).format(), now).format()
