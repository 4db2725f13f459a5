r"""Globs exactly as git-annex matches them (preferred-content.md section 6).

git-annex turns a glob into a POSIX regular expression string (``Utility.Glob``:
``*`` -> ``.*``, ``?`` -> ``.``, ``[`` ... ``]`` copied, ``/`` -> ``[/]+`` and ``\\`` ->
``[\\]+`` for file paths, every other non-alphanumeric character backslash-escaped) and
compiles that with regex-tdfa, using its default options (``multiline``: ``.`` and
negated brackets never match a newline, ``^``/``$`` match at line ends; ``newSyntax``:
the escapes ``\\``` ``\\'`` ``\\<`` ``\\>`` ``\\b`` ``\\B`` are *anchors*, so a glob
containing ``'``, ``<``, ``>`` or a backquote never matches those characters literally).

This module rebuilds the same regex string and then parses it with regex-tdfa's grammar
(so bracket expressions end where regex-tdfa ends them, POSIX classes are ASCII-only,
collating elements never match) and emits an equivalent Python pattern. A regex that
regex-tdfa cannot compile (unclosed ``[``, reversed range) gives a `Glob` whose
`Glob.error` is set. Pure: no I/O.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

_WORD = "0-9A-Za-z_"
_ANCHORS = {
    "`": r"\A",
    "'": r"\Z",
    "<": rf"(?<![{_WORD}])(?=[{_WORD}])",
    ">": rf"(?<=[{_WORD}])(?![{_WORD}])",
    "b": rf"(?:(?<![{_WORD}])(?=[{_WORD}])|(?<=[{_WORD}])(?![{_WORD}]))",
    "B": rf"(?:(?<=[{_WORD}])(?=[{_WORD}])|(?<![{_WORD}])(?![{_WORD}]))",
}
_SPECIALS = set("^.[$()|*+?{\\")


def _ascii_range(lo: str, hi: str) -> list[tuple[int, int]]:
    return [(ord(lo), ord(hi))]


# regex-tdfa's decodeCharacterClass: ASCII only, unknown names are empty.
_CLASSES: dict[str, list[tuple[int, int]]] = {
    "alnum": [(48, 57), (65, 90), (97, 122)],
    "digit": [(48, 57)],
    "punct": [(33, 47), (58, 64), (91, 96), (123, 126)],
    "alpha": [(65, 90), (97, 122)],
    "graph": [(33, 126)],
    "space": [(9, 13), (32, 32)],
    "blank": [(9, 9), (32, 32)],
    "lower": [(97, 122)],
    "upper": [(65, 90)],
    "cntrl": [(0, 31), (127, 127)],
    "print": [(32, 126)],
    "xdigit": [(48, 57), (65, 70), (97, 102)],
    "word": [(48, 57), (65, 90), (95, 95), (97, 122)],
}


def glob_to_regex(glob: str, *, file_path: bool) -> str:
    """The regex string git-annex builds for a glob (``wildToRegex``, POSIX build)."""
    out = ["^"]
    pos = 0
    in_bracket = False
    while pos < len(glob):
        char = glob[pos]
        pos += 1
        if in_bracket:
            if char == "]":
                out.append("]")
                in_bracket = False
            elif char == "\\":
                out.append("\\\\")
            else:
                out.append(char)
        elif char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[":
            if pos < len(glob) and glob[pos] == "!":
                pos += 1
                out.append("[^")
            else:
                out.append("[")
            in_bracket = True
        elif file_path and char == "/":
            out.append("[/]+")
        elif file_path and char == "\\":
            out.append("[\\]+")
        elif "0" <= char <= "9" or char.isalpha():
            out.append(char)
        else:
            out.append("\\" + char)
    out.append("$")
    return "".join(out)


class _RegexSyntaxError(Exception):
    pass


def _simple_upper(char: str) -> str:
    upper = char.upper()
    return upper if len(upper) == 1 else char


def _simple_lower(char: str) -> str:
    if char == "\u0130":
        return "i"
    lower = char.lower()
    return lower if len(lower) == 1 else char


def _class_text(intervals: list[tuple[int, int]], *, negate: bool) -> str:
    parts = []
    for lo, hi in sorted(intervals):
        parts.append(f"\\U{lo:08x}" if lo == hi else f"\\U{lo:08x}-\\U{hi:08x}")
    body = "".join(parts)
    if negate:
        return f"[^{body}]" if body else r"[\s\S]"
    return f"[{body}]" if body else "(?!)"


def _fold_intervals(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    # Case-insensitive regex-tdfa adds toUpper and toLower of every alphabetic member.
    extra: list[tuple[int, int]] = []
    for lo, hi in intervals:
        for code in range(lo, hi + 1):
            char = chr(code)
            if char.isalpha():
                for variant in (_simple_upper(char), _simple_lower(char)):
                    if variant != char:
                        extra.append((ord(variant), ord(variant)))
    return intervals + extra


class _TdfaParser:
    """regex-tdfa's ``ReadRegex`` grammar, emitting a Python pattern as it goes."""

    def __init__(self, regex: str, *, case_sensitive: bool) -> None:
        self.text = regex
        self.pos = 0
        self.case_sensitive = case_sensitive

    def peek(self, offset: int = 0) -> str:
        index = self.pos + offset
        return self.text[index] if index < len(self.text) else ""

    def parse(self) -> str:
        pattern = self.regex()
        if self.pos != len(self.text):
            raise _RegexSyntaxError(f"unexpected {self.peek()!r} at {self.pos}")
        return pattern

    def regex(self) -> str:
        # regex := branch ("|" branch)*
        branches = [self.branch()]
        while self.peek() == "|":
            self.pos += 1
            branches.append(self.branch())
        return "(?:" + "|".join(branches) + ")"

    def branch(self) -> str:
        # branch := piece+
        pieces = []
        while True:
            piece = self.piece()
            if piece is None:
                break
            pieces.append(piece)
        if not pieces:
            raise _RegexSyntaxError(f"empty branch at {self.pos}")
        return "".join(pieces)

    def piece(self) -> str | None:
        # piece := (anchor | atom) post_atom
        atom = self.anchor()
        if atom is None:
            atom = self.atom()
        if atom is None:
            return None
        return self.post_atom(atom)

    def anchor(self) -> str | None:
        char = self.peek()
        if char == "^":
            self.pos += 1
            return "^"
        if char == "$":
            self.pos += 1
            return "$"
        if char == "(" and self.peek(1) == ")":
            self.pos += 2
            return "(?:)"
        return None

    def atom(self) -> str | None:
        char = self.peek()
        if char == "(":
            self.pos += 1
            inner = self.regex()
            if self.peek() != ")":
                raise _RegexSyntaxError("unclosed group")
            self.pos += 1
            return inner
        if char == "[":
            self.pos += 1
            return self.bracket()
        return self.char()

    def char(self) -> str | None:
        char = self.peek()
        if char == ".":
            self.pos += 1
            return "[^\\n]"
        following = self.peek(1)
        if char == "{" and not (following and following in "0123456789"):
            self.pos += 1
            return self.literal("{")
        if char == "\\":
            if self.pos + 1 >= len(self.text):
                raise _RegexSyntaxError("trailing backslash")
            escaped = self.text[self.pos + 1]
            self.pos += 2
            return _ANCHORS.get(escaped) or self.literal(escaped)
        if char == "" or char in _SPECIALS:
            return None
        self.pos += 1
        return self.literal(char)

    def literal(self, char: str) -> str:
        if self.case_sensitive or not char.isalpha():
            return re.escape(char)
        return _class_text(_fold_intervals([(ord(char), ord(char))]), negate=False)

    def post_atom(self, atom: str) -> str:
        char = self.peek()
        if char in ("?", "+", "*") and char:
            self.pos += 1
            return f"(?:{atom}){char}"
        if char == "{":
            bound = self.bound()
            if bound is not None:
                return f"(?:{atom}){bound}"
        return atom

    def bound(self) -> str | None:
        match = re.compile(r"\{([0-9]+)(?:(,)([0-9]*))?\}").match(self.text, self.pos)
        if match is None:
            return None
        low = int(match.group(1))
        if match.group(2) is None:
            text = f"{{{low}}}"
        elif match.group(3):
            high = int(match.group(3))
            if low > high:
                return None
            text = f"{{{low},{high}}}"
        else:
            text = f"{{{low},}}"
        self.pos = match.end()
        return text

    def bracket(self) -> str:
        # bracket := "[" "^"? "]"? set_elem* "]"   (at least one element without "]")
        negate = False
        if self.peek() == "^":
            negate = True
            self.pos += 1
        intervals: list[tuple[int, int]] = []
        if self.peek() == "]":
            self.pos += 1
            intervals.append((93, 93))
        count = 0
        while self.peek() not in ("]", ""):
            intervals.extend(self.set_elem())
            count += 1
        if self.peek() != "]" or (count == 0 and not intervals):
            raise _RegexSyntaxError("unclosed bracket")
        self.pos += 1
        if not self.case_sensitive:
            intervals = _fold_intervals(intervals)
        if negate:
            intervals.append((10, 10))  # multiline: negated sets never match newline
        return _class_text(intervals, negate=negate)

    def set_elem(self) -> list[tuple[int, int]]:
        for opener, closer in (("[:", ":]"), ("[=", "=]"), ("[.", ".]")):
            if self.text.startswith(opener, self.pos):
                end = self.pos + 2
                while end < len(self.text) and self.text[end] not in (closer[0], "]"):
                    end += 1
                name = self.text[self.pos + 2 : end]
                if name and self.text.startswith(closer, end):
                    self.pos = end + 2
                    if opener == "[:":
                        return list(_CLASSES.get(name, []))
                    if opener == "[=":
                        return [(ord(c), ord(c)) for c in name]
                    return []  # collating elements never match in regex-tdfa
        start = self.peek()
        if self.peek(1) == "-" and self.peek(2) not in ("]", ""):
            last = self.peek(2)
            if start > last:
                raise _RegexSyntaxError("reversed range")
            self.pos += 3
            return [(ord(start), ord(last))]
        self.pos += 1
        return [(ord(start), ord(start))]


@dataclass(frozen=True, slots=True)
class Glob:
    """A compiled glob. ``error`` is set when git-annex could not compile it either."""

    source: str
    regex: str
    pattern: re.Pattern[str] | None
    error: str | None

    def matches(self, value: str) -> bool:
        """Whether the value matches (False for an uncompilable glob)."""
        return self.pattern is not None and self.pattern.search(value) is not None


@functools.lru_cache(maxsize=4096)
def compile_glob(glob: str, *, case_sensitive: bool, file_path: bool) -> Glob:
    """Compile a glob the way git-annex does (cached).

    Returns:
        The compiled `Glob`; never raises. An uncompilable glob carries git-annex's
        message (``failed to compile regex: ^[abc$``) in `Glob.error`.
    """
    regex = glob_to_regex(glob, file_path=file_path)
    try:
        python = _TdfaParser(regex, case_sensitive=case_sensitive).parse()
        pattern = re.compile(python, re.MULTILINE)
    except (_RegexSyntaxError, re.error):
        return Glob(glob, regex, None, f"failed to compile regex: {regex}")
    return Glob(glob, regex, pattern, None)
