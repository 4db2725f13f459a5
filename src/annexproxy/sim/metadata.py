"""``metadata FILE MODIFICATION`` in the simulation: git annex metadata --set syntax.

Owns parsing of ``field=value``, ``field+=value``, ``field-=value``, ``field?=value``
(``parseModMeta``) and applying them to a key's current metadata (``modMeta`` then
``unionMetaData``: new values win, so ``=`` replaces). Field names are case-insensitive
and stored folded. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from annexproxy.errors import AnnexProxyError


class MetaDataError(AnnexProxyError):
    """A metadata modification does not parse (git-annex's message)."""


@dataclass(frozen=True, slots=True)
class Modification:
    """One modification: ``op`` is ``set``, ``add``, ``del`` or ``maybeset``."""

    op: Literal["set", "add", "del", "maybeset"]
    field: str
    value: str


def _legal_field(name: str) -> bool:
    # Types.MetaData.legalField
    if not name or not name[0].isalnum():
        return False
    return all(c.isalnum() or c in "_-." for c in name[1:])


def parse_modification(text: str) -> Modification:
    """Parse ``field[+-?]=value`` (``parseModMeta``; no ``=`` sets an empty value).

    Raises:
        MetaDataError: the field name is not legal.
    """
    field, _, value = text.partition("=")
    op: Literal["set", "add", "del", "maybeset"] = "set"
    if field.endswith("+"):
        op, field = "add", field[:-1]
    elif field.endswith("-"):
        op, field = "del", field[:-1]
    elif field.endswith("?"):
        op, field = "maybeset", field[:-1]
    if not _legal_field(field):
        raise MetaDataError(f'Illegal metadata field name, "{field}"')
    return Modification(op, field.casefold(), value)


def apply_modification(current: dict[str, set[str]], change: Modification) -> None:
    """Apply a modification to a key's currently set values, in place."""
    values = current.get(change.field, set())
    if change.op == "set":
        values = {change.value}
    elif change.op == "add":
        values = values | {change.value}
    elif change.op == "del":
        values = values - {change.value}
    elif not values:
        values = {change.value}
    if values:
        current[change.field] = values
    else:
        current.pop(change.field, None)
