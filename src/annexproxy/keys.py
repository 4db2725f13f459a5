"""git-annex keys: strict parsing, formatting, key file names and hash directories.

Owns the serialised key grammar (branch.md 7.1), the "keyfile" escaping (7.2), chunk-key
parents (7.4) and both hash-directory schemes (section 8). Pure: no file or network I/O.
A `Key` is parsed once at the edge; code further in never handles raw key strings.
Keys that could play tricks on a file system or a log (NUL, whitespace, control
characters, ``/`` outside URL keys, overlong names) are refused here.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
import struct
from dataclasses import dataclass

from annexproxy.errors import KeyFormatError

# Longest key file name we accept: object files and their ".lck"/".rtm"/".rtl" siblings
# must fit in a 255-byte directory entry.
MAX_KEYFILE_BYTES = 251

_VARIETY = re.compile(r"[A-Za-z0-9_]+\Z")
_DIGITS = re.compile(r"[0-9]+\Z")
_FIELD_ORDER = "smSC"
_URL_VARIETIES = frozenset({"URL", "VURL"})
# Whitespace (as str.isspace), control characters and DEL: never in a stored key name.
_UNSAFE_NAME_CHAR = re.compile(r"[\x00-\x20\x7f\s]")
_MIXED_ALPHABET = "0123456789zqjxkmvwgpfZQJXKMVWGPF"


@dataclass(frozen=True, slots=True, kw_only=True)
class Key:
    """A parsed git-annex key (``BACKEND[-sN][-mN][-SN-CN]--NAME``)."""

    variety: str
    name: str
    size: int | None = None
    mtime: int | None = None
    chunk_size: int | None = None
    chunk_num: int | None = None
    _text: str | None = dataclasses.field(default=None, init=False, repr=False, compare=False)
    """The serialised form, made on first use (keys are serialised many times each)."""

    @classmethod
    def parse(cls, text: str) -> Key:
        """Parse a serialised key strictly.

        Grammar (branch.md 7.1):
        ``key := variety ["-s" size] ["-m" mtime] ["-S" chunksize] ["-C" chunknum] "--" name``

        Raises:
            KeyFormatError: the text is not a key, or not one that is safe to store.
        """
        head, sep, name = text.partition("--")
        if not sep:
            raise KeyFormatError(f"not a git-annex key (no '--'): {text!r}", key=text)
        parts = head.split("-")
        variety, fields = parts[0], parts[1:]
        if not _VARIETY.match(variety):
            raise KeyFormatError(f"bad key backend name {variety!r} in {text!r}", key=text)
        values: dict[str, int] = {}
        last = -1
        for field in fields:
            letter, digits = field[:1], field[1:]
            order = _FIELD_ORDER.find(letter) if letter else -1
            if order <= last or not _DIGITS.match(digits):
                raise KeyFormatError(f"bad or misplaced key field {field!r} in {text!r}", key=text)
            last = order
            values[letter] = int(digits)
        key = cls(
            variety=variety,
            name=name,
            size=values.get("s"),
            mtime=values.get("m"),
            chunk_size=values.get("S"),
            chunk_num=values.get("C"),
        )
        key._check_safe(text)
        return key

    def _check_safe(self, text: str) -> None:
        if not self.name:
            raise KeyFormatError(f"key has an empty name: {text!r}", key=text)
        if _UNSAFE_NAME_CHAR.search(self.name):
            raise KeyFormatError(
                f"key name holds whitespace or control characters: {text!r}", key=text
            )
        if "/" in self.name and self.variety not in _URL_VARIETIES:
            raise KeyFormatError(f"key name holds '/': {text!r}", key=text)
        if self.name in (".", "..") or self.name.startswith("../"):
            raise KeyFormatError(f"key name is a path trick: {text!r}", key=text)
        if self.has_extension:
            ext = self.extension
            if len(ext.encode("utf-8", "surrogateescape")) > 64:
                raise KeyFormatError(f"key extension longer than 64 bytes: {text!r}", key=text)
        if len(self.keyfile().encode("utf-8", "surrogateescape")) > MAX_KEYFILE_BYTES:
            raise KeyFormatError(
                f"key too long ({len(text)} characters) to be stored as a file", key=text
            )

    def __str__(self) -> str:
        text = self._text
        if text is None:
            text = self._serialise()
            object.__setattr__(self, "_text", text)
        return text

    def _serialise(self) -> str:
        out = [self.variety]
        for letter, value in (
            ("s", self.size),
            ("m", self.mtime),
            ("S", self.chunk_size),
            ("C", self.chunk_num),
        ):
            if value is not None:
                out.append(f"-{letter}{value}")
        out.append("--")
        out.append(self.name)
        return "".join(out)

    @property
    def has_extension(self) -> bool:
        """True for ``...E`` varieties (SHA256E, MD5E, ...), whose name keeps the extension."""
        return self.variety.endswith("E") and self.variety not in ("WORM", "GITBUNDLE")

    @property
    def extension(self) -> str:
        """The extension part of the name (from the first ``.``), or ``""``."""
        if not self.has_extension:
            return ""
        dot = self.name.find(".")
        return "" if dot < 0 else self.name[dot:]

    @property
    def digest(self) -> str:
        """The name without its extension: the hex digest for hashing backends."""
        ext = self.extension
        return self.name[: len(self.name) - len(ext)] if ext else self.name

    @property
    def backend(self) -> str:
        """The hash backend name without the ``E`` suffix (``SHA256E`` -> ``SHA256``)."""
        if self.has_extension:
            return self.variety[:-1]
        return self.variety

    @property
    def is_chunk(self) -> bool:
        """True for chunk keys (``-S`` or ``-C`` present)."""
        return self.chunk_size is not None or self.chunk_num is not None

    def parent(self) -> Key:
        """The key without its chunk fields (itself when it is not a chunk key)."""
        if not self.is_chunk:
            return self
        return Key(variety=self.variety, name=self.name, size=self.size, mtime=self.mtime)

    def keyfile(self) -> str:
        """The file name git-annex uses for this key (branch.md 7.2)."""
        return keyfile(str(self))

    def hashdir_lower(self, levels: int = 2) -> str:
        """The lower-case hash directory, e.g. ``f87/4d5/`` (of the parent for chunk keys)."""
        return hashdir_lower(str(self.parent()), levels)

    def hashdir_mixed(self, levels: int = 2) -> str:
        """The mixed-case hash directory, e.g. ``pX/ZJ/`` (of the parent for chunk keys)."""
        return hashdir_mixed(str(self.parent()), levels)


_HASHDIR_CACHE = 512
"""Keys whose hash directories are remembered: one upload looks them up a dozen times."""


def keyfile(serialised: str) -> str:
    """Escape a serialised key into git-annex's file-name form (branch.md 7.2)."""
    if not any(c in serialised for c in "&%:/"):
        return serialised
    return serialised.replace("&", "&a").replace("%", "&s").replace(":", "&c").replace("/", "%")


def unkeyfile(name: str) -> str:
    """Reverse `keyfile`."""
    pieces = name.split("%")
    return "/".join(p.replace("&c", ":").replace("&s", "%").replace("&a", "&") for p in pieces)


@functools.lru_cache(maxsize=_HASHDIR_CACHE)
def hashdir_lower(serialised: str, levels: int = 2) -> str:
    """Lower-case hash directory of a serialised key (branch.md section 8)."""
    h = hashlib.md5(serialised.encode("utf-8", "surrogateescape")).hexdigest()
    return h[0:3] + "/" if levels == 1 else h[0:3] + "/" + h[3:6] + "/"


@functools.lru_cache(maxsize=_HASHDIR_CACHE)
def hashdir_mixed(serialised: str, levels: int = 2) -> str:
    """Mixed-case hash directory of a serialised key (branch.md section 8)."""
    digest = hashlib.md5(serialised.encode("utf-8", "surrogateescape")).digest()
    (word,) = struct.unpack("<I", digest[:4])
    chars = [_MIXED_ALPHABET[(word >> (6 * i)) & 31] for i in range(8)]
    swapped = "".join(chars[i ^ 1] for i in range(4))
    return swapped[0:2] + "/" if levels == 1 else swapped[0:2] + "/" + swapped[2:4] + "/"
