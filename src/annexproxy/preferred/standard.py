"""The ten standard groups and their preferred-content expressions (section 9).

The strings are git-annex's own (``Types.StandardGroups``), including the
``(X) or approxlackingcopies=1`` "last resort" wrappers that the documentation leaves out.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable


def _last_resort(expression: str) -> str:
    return f"({expression}) or approxlackingcopies=1"


_NOT_ARCHIVED = "not (copies=archive:1 or copies=smallarchive:1)"
_CLIENT = _last_resort(
    f"include=* and ((exclude=*/archive/* and exclude=archive/*) or ({_NOT_ARCHIVED}))"
)
_ARCHIVE = _last_resort(_NOT_ARCHIVED)

#: Standard group name -> expression.
STANDARD_GROUPS: dict[str, str] = {
    "client": _CLIENT,
    "transfer": _last_resort(f"not (inallgroup=client and copies=client:2) and ({_CLIENT})"),
    "backup": "anything",
    "incrementalbackup": _last_resort("(not copies=backup:1) and (not copies=incrementalbackup:1)"),
    "smallarchive": _last_resort(f"(include=*/archive/* or include=archive/*) and ({_ARCHIVE})"),
    "archive": _ARCHIVE,
    "source": "not (copies=1)",
    "manual": f"present and ({_CLIENT})",
    "public": "inpreferreddir",
    "unwanted": "not anything",
}


def standard_group_of(groups: Iterable[str]) -> str | None:
    """The one standard group among ``groups`` (None if none or several, section 4.14)."""
    found = {g for g in groups if g in STANDARD_GROUPS}
    return next(iter(found)) if len(found) == 1 else None


def standard_expression(group: str) -> str | None:
    """The expression of a standard group, or None for other group names."""
    return STANDARD_GROUPS.get(group)
