"""Per-key metadata logs (``<hashdir>/<keyfile>.log.met``): parsing and current values.

Line form, as git-annex writes it: ``TIMESTAMP FIELD +VALUE -VALUE ... FIELD +VALUE ...``:
a word without a ``+``/``-`` sign names a field, the signed words after it set (``+``) or
unset (``-``) one of its values. A value starting with ``!`` is base64 (used for values
holding spaces and the like). For each (field, value) the newest line wins; among lines
with the same timestamp the later one. Unparseable lines are skipped. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from annexproxy.branch.logs.presence import split_lines
from annexproxy.branch.logs.timestamps import Timestamp
from annexproxy.errors import LogFormatError


def _value(word: bytes) -> str | None:
    if word.startswith(b"!"):
        try:
            return base64.b64decode(word[1:], validate=True).decode("utf-8", "surrogateescape")
        except (binascii.Error, ValueError):
            return None
    return word.decode("utf-8", "surrogateescape")


def current_metadata(content: bytes) -> Mapping[str, frozenset[str]]:
    """The metadata in force: field -> values (fields with no values left are omitted)."""
    latest: dict[tuple[str, str], tuple[Timestamp, int, bool]] = {}
    for index, line in enumerate(split_lines(content)):
        words = line.split(b" ")
        try:
            stamp = Timestamp.parse(words[0])
        except (LogFormatError, IndexError, ValueError):
            continue
        field: str | None = None
        for word in words[1:]:
            if not word:
                continue
            if word[:1] in (b"+", b"-"):
                value = _value(word[1:])
                if field is None or value is None:
                    continue
                seen = latest.get((field, value))
                if seen is None or (stamp, index) >= seen[:2]:
                    latest[(field, value)] = (stamp, index, word[:1] == b"+")
            else:
                field = word.decode("utf-8", "surrogateescape").lower()
    values: dict[str, set[str]] = {}
    for (field, value), (_stamp, _index, present) in latest.items():
        if present:
            values.setdefault(field, set()).add(value)
    return {field: frozenset(found) for field, found in values.items()}
