"""The new objects of one git-annex branch commit, built in memory.

Owns turning "this base tree, these files replaced, these parents" into the blobs, the
trees on the changed paths and the commit, each as (type, body) by id, so that they can
be written as one pack (`annexproxy.branch.packstore`). Only subtrees on the changed
paths are read (through the ``read_tree`` callback) and rebuilt, so a million-key
branch is never loaded whole.

Pure: the caller supplies the reader and writes the result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from annexproxy.branch.packfile import (
    BLOB,
    COMMIT,
    MODE_BLOB,
    MODE_TREE,
    TREE,
    Person,
    TreeEntries,
    commit_body,
    object_id,
    parse_tree,
    tree_body,
)

ReadTree = Callable[[bytes], bytes]
"""Returns the raw body of the tree with the given 20-byte id."""


@dataclass(slots=True)
class NewObjects:
    """Objects to write, by 20-byte id: (type, body)."""

    objects: dict[bytes, tuple[int, bytes]] = field(default_factory=dict)

    def add(self, kind: int, body: bytes) -> bytes:
        """Add an object and return its id."""
        oid = object_id(kind, body)
        self.objects[oid] = (kind, body)
        return oid


def tree_with_files(
    read_tree: ReadTree, base: bytes | None, files: Mapping[str, bytes], new: NewObjects
) -> bytes:
    """The id of ``base`` tree with ``files`` (``/``-separated paths) added or replaced.

    Blobs and rebuilt trees are added to ``new``; a path whose directory is a file in
    ``base`` replaces that file.
    """
    blobs = {
        path.encode("utf-8", "surrogateescape"): new.add(BLOB, data) for path, data in files.items()
    }
    return _rebuild(read_tree, base, blobs, new)


def _rebuild(
    read_tree: ReadTree, base: bytes | None, blobs: Mapping[bytes, bytes], new: NewObjects
) -> bytes:
    entries: TreeEntries = {} if base is None else parse_tree(read_tree(base))
    below: dict[bytes, dict[bytes, bytes]] = {}
    for path, oid in blobs.items():
        head, sep, rest = path.partition(b"/")
        if sep:
            below.setdefault(head, {})[rest] = oid
        else:
            entries[head] = (MODE_BLOB, oid)
    for head, inner in below.items():
        current = entries.get(head)
        sub = current[1] if current is not None and current[0] == MODE_TREE else None
        entries[head] = (MODE_TREE, _rebuild(read_tree, sub, inner, new))
    return new.add(TREE, tree_body(entries))


def add_commit(
    new: NewObjects, tree: bytes, parents: list[bytes], person: Person, message: str
) -> bytes:
    """Add the commit of ``tree`` with ``parents`` to ``new`` and return its id."""
    return new.add(COMMIT, commit_body(tree, parents, person, message))
