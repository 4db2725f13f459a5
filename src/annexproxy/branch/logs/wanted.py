"""Preferred and required content expressions as stored in the branch (branch.md 5).

``preferred-content.log`` and ``required-content.log`` are family 4.2 (per UUID);
``group-preferred-content.log`` is family 4.3 (per group). The expressions are stored
and returned verbatim; interpreting them is ``annexproxy.preferred``'s job. Pure.
"""

from __future__ import annotations

from annexproxy.branch.logs.keyed import KeyedLog
from annexproxy.branch.logs.timestamps import Timestamp
from annexproxy.branch.logs.uuidbased import UUIDLog

PREFERRED_PATH = "preferred-content.log"
REQUIRED_PATH = "required-content.log"
GROUP_PREFERRED_PATH = "group-preferred-content.log"


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _raw(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def parse_expressions(content: bytes) -> dict[str, str]:
    """Expression in effect per UUID (preferred or required log). Never raises."""
    return {_text(u): _text(v) for u, v in UUIDLog.parse(content).values().items()}


def set_expression(content: bytes, uuid: str, expression: str, now: Timestamp) -> bytes:
    """New preferred/required log content after setting ``uuid``'s expression.

    Raises:
        LogFormatError: a bad UUID token, or a line break in the expression.
    """
    return UUIDLog.parse(content).with_value(_raw(uuid), _raw(expression), now).format()


def parse_group_expressions(content: bytes) -> dict[str, str]:
    """Expression in effect per group (``groupwanted``). Never raises."""
    return {_text(g): _text(v) for g, v in KeyedLog.parse(content).values().items()}


def set_group_expression(content: bytes, group: str, expression: str, now: Timestamp) -> bytes:
    """New ``group-preferred-content.log`` content after setting a group's expression.

    Raises:
        LogFormatError: a bad group name, or a line break in the expression.
    """
    return KeyedLog.parse(content).with_value(_raw(group), _raw(expression), now).format()
