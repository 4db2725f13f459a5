"""Paths inside the git-annex branch and the names of their journal files.

Owns where a key's logs live in the branch (``<hashdir_lower><keyfile><suffix>``,
branch.md sections 5 and 8, with ``annex.tune.branchhash1`` selecting one hash level)
and the journal file naming of branch.md section 11, both ways. Pure: computes names,
never touches the file system.
"""

from __future__ import annotations

from annexproxy.errors import LogFormatError
from annexproxy.keys import Key, hashdir_lower, keyfile

LOCATION_LOG = ".log"
URL_LOG = ".log.web"


def key_log_path(key: Key, suffix: str = LOCATION_LOG, *, branchhash1: bool = False) -> str:
    """Branch path of one of a key's logs, e.g. ``e7d/d01/<keyfile>.log``.

    Args:
        key: the key; chunk keys hash like their parent key (branch.md 7.4).
        suffix: which log: ``.log`` (location), ``.log.web``, ``.log.met``, ...
        branchhash1: the repository was initialised with ``annex.tune.branchhash1``,
            so the branch uses one hash directory level (``b66/<keyfile>.log``).

    Returns:
        The path relative to the top of the branch, ``/``-separated.
    """
    text = str(key)  # serialised once: this runs per key looked up
    hashed = str(key.parent()) if key.is_chunk else text
    return hashdir_lower(hashed, 1 if branchhash1 else 2) + keyfile(text) + suffix


def location_log_path(key: Key, *, branchhash1: bool = False) -> str:
    """Branch path of a key's location log; see `key_log_path`."""
    return key_log_path(key, LOCATION_LOG, branchhash1=branchhash1)


def journal_name(branch_path: str) -> str:
    """The journal file name of a branch path: ``_`` doubled, then ``/`` becomes ``_``.

    Example (branch.md section 11): ``341/9e7/WORM-s1-m1--a_b&sc&cd.log`` becomes
    ``341_9e7_WORM-s1-m1--a__b&sc&cd.log``.

    Raises:
        LogFormatError: the path is empty, absolute, holds NUL, or has an empty,
            ``.`` or ``..`` component (it could not be a branch file).
    """
    parts = branch_path.split("/")
    if "\0" in branch_path or any(part in ("", ".", "..") for part in parts):
        raise LogFormatError(f"not a git-annex branch file path: {branch_path!r}")
    return "_".join(part.replace("_", "__") for part in parts)


def branch_path(journal_file: str) -> str:
    """The branch path a journal file name stands for (git-annex ``fileJournal``).

    Scanning left to right, ``__`` becomes ``_`` and any other ``_`` becomes ``/``;
    a lone ``_`` at the very end is dropped, as git-annex drops it.
    """
    out: list[str] = []
    i, end = 0, len(journal_file)
    while i < end:
        char = journal_file[i]
        if char != "_":
            out.append(char)
            i += 1
        elif i + 1 == end:
            i += 1
        elif journal_file[i + 1] == "_":
            out.append("_")
            i += 2
        else:
            out.append("/")
            i += 1
    return "".join(out)
