"""The sim language: lines to typed commands, and commands back to history lines (sim.md 2).

Owns the grammar of a sim file line (the words after the command name, exact argument
counts, git-annex's error messages) and the history form `format_command` prints for
``sim show``. A line is split into words like Haskell's ``words``; comments (``#`` or
``--``) and blank lines are kept verbatim. Parsing never looks at the simulation state
(unknown repositories are the engine's business). Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from annexproxy.errors import AnnexProxyError
from annexproxy.space.numbers import is_haskell_space
from annexproxy.space.units import parse_size


class SimParseError(AnnexProxyError):
    """A sim line does not parse; the message is git-annex's, word for word.

    Attributes:
        line: the offending line (or words joined by spaces).
    """

    def __init__(self, message: str, *, line: str) -> None:
        super().__init__(message)
        self.line = line


# --- value objects --------------------------------------------------------------------

ActionKind = Literal[
    "pull",
    "push",
    "sync",
    "getwanted",
    "sendwanted",
    "dropunwantedfrom",
    "dropunwanted",
    "gitpush",
    "gitpull",
]
ACTION_KINDS: tuple[ActionKind, ...] = (
    "pull",
    "push",
    "sync",
    "getwanted",
    "sendwanted",
    "dropunwantedfrom",
    "dropunwanted",
    "gitpush",
    "gitpull",
)


@dataclass(frozen=True, slots=True)
class Action:
    """One action of a repository (``remote`` is None only for ``dropunwanted``)."""

    kind: ActionKind
    repo: str
    remote: str | None = None


@dataclass(frozen=True, slots=True)
class While:
    """``A while B``: the two operation lists interleaved by coin flips (sim.md 6.5)."""

    first: Action
    second: Action | While


SimAction = Action | While


@dataclass(frozen=True, slots=True)
class Command:
    """A parsed sim line. ``name`` is the command word; the other fields depend on it.

    Attributes:
        name: ``init``, ``connect``, ..., or ``#comment`` / ``#blank`` for kept lines.
        args: the string arguments in their history order (names, files, expressions).
        numbers: the integer arguments (``step``, ``seed``, sizes, ...).
        repos: the trailing repository list of ``add``/``addmulti``.
        action: the action of ``action``.
        text: the verbatim line of a comment.
        flag: the value of ``rebalance``.
    """

    name: str
    args: tuple[str, ...] = ()
    numbers: tuple[int, ...] = ()
    repos: tuple[str, ...] = ()
    action: SimAction | None = None
    text: str = ""
    flag: bool = False


# --- words and numbers ------------------------------------------------------------------


def haskell_words(line: str) -> list[str]:
    """Haskell ``words``: split on Unicode white space (``isSpace``), drop empties."""
    words: list[str] = []
    current: list[str] = []
    for char in line:
        if is_haskell_space(char):
            if current:
                words.append("".join(current))
                current = []
        else:
            current.append(char)
    if current:
        words.append("".join(current))
    return words


_INT = re.compile(r"(-?)(?:0[xX]([0-9a-fA-F]+)|0[oO]([0-7]+)|([0-9]+))\Z")
_INT_BITS = 1 << 64


def read_int(word: str) -> int | None:
    """``readMaybe word :: Maybe Int`` (decimal, ``0x``/``0o`` literals, wraps at 64 bits)."""
    inner = word
    while inner.startswith("(") and inner.endswith(")") and len(inner) >= 2:
        inner = inner[1:-1]
    match = _INT.match(inner)
    if match is None:
        return None
    sign, hexa, octal, decimal = match.groups()
    value = int(hexa, 16) if hexa else int(octal, 8) if octal else int(decimal)
    value = (-value if sign else value) % _INT_BITS
    return value - _INT_BITS if value >= _INT_BITS // 2 else value


def read_bool(word: str) -> bool | None:
    """Git's boolean config values (``Git.Config.isTrueFalse``), case-insensitive."""
    low = "".join(c.lower() if c.isascii() else c for c in word)
    if low in ("yes", "on", "true", "1"):
        return True
    if low in ("no", "off", "false", "0", ""):
        return False
    if all((c.isdigit() and c.isascii()) or c == "-" for c in low):
        return True
    return None


def show_double(value: float) -> str:
    """Haskell ``show`` of a ``Double`` (shortest digits; scientific outside [0.1, 10^7))."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    if value < 0 or (value == 0 and str(value).startswith("-")):
        return "-" + show_double(-value)
    if value == 0:
        return "0.0"
    digits, exponent = _float_digits(value)
    if 0.1 <= value < 10**7:
        if exponent <= 0:
            return "0." + "0" * (-exponent) + digits
        whole = digits[:exponent].ljust(exponent, "0")
        frac = digits[exponent:] or "0"
        return f"{whole}.{frac}"
    frac = digits[1:] or "0"
    return f"{digits[0]}.{frac}e{exponent - 1}"


def _float_digits(value: float) -> tuple[str, int]:
    """Shortest round-trip digits and exponent e with value = 0.DIGITS * 10^e."""
    mantissa, _, exp = f"{value!r}".partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    whole, frac = mantissa.split(".")
    digits = (whole + frac).lstrip("0")
    shift = len(whole) + (int(exp) if exp else 0)
    shift -= len(whole + frac) - len((whole + frac).lstrip("0"))
    return digits.rstrip("0") or "0", shift


_STORAGE_UNITS = (
    (10**30, "QB"),
    (10**27, "RB"),
    (10**24, "YB"),
    (10**21, "ZB"),
    (10**18, "EB"),
    (10**15, "PB"),
    (10**12, "TB"),
    (10**9, "GB"),
    (10**6, "MB"),
    (10**3, "kB"),
    (1, "B"),
)


def format_size(size: int) -> str:
    """``preciseSize storageUnits True`` without spaces: ``100.0kB``, ``1.024kB``, ``0.0B``."""
    if size < 0:
        return "-" + format_size(-size)
    for unit, abbrev in _STORAGE_UNITS:
        if size >= unit:
            return show_double(float(size) / float(unit)) + abbrev
    return show_double(float(size)) + "B"


# --- parsing ----------------------------------------------------------------------------


def _unparsable(words: list[str]) -> SimParseError:
    text = " ".join(words)
    return SimParseError(f'Unable to parse sim command: "{text}"', line=text)


def _size(word: str, what: str) -> int:
    size = parse_size(word)
    if size is None:
        raise SimParseError(f'Unable to parse {what} "{word}"', line=word)
    return size


def _int(word: str, what: str) -> int:
    value = read_int(word)
    if value is None:
        raise SimParseError(f'Unable to parse {what} "{word}"', line=word)
    return value


_ARROWS = ("->", "<-", "<->")


def _check_connections(words: list[str]) -> tuple[str, ...]:
    """``parseConnections``: NAME ARROW NAME [ARROW NAME ...], read from the right."""
    rest = list(reversed(words))
    if len(rest) < 3 or rest[1] not in _ARROWS:
        raise SimParseError(f'Bad connect syntax near "{" ".join(rest)}"', line=" ".join(words))
    rest = rest[3:]
    while rest:
        if len(rest) < 2 or rest[0] not in _ARROWS:
            raise SimParseError(f'Bad connect syntax near "{" ".join(rest)}"', line=" ".join(words))
        rest = rest[2:]
    return tuple(words)


def connection_pairs(words: tuple[str, ...]) -> list[tuple[str, str]]:
    """The ordered (repository, remote name) pairs of a chain (sim.md 2.5, ``getConnection``).

    A ``<->`` that is not the last link connects one way only (twice), like git-annex.
    """
    pairs: list[tuple[str, str]] = []
    links = (len(words) - 1) // 2
    for index in range(links):
        left, arrow, right = words[2 * index], words[2 * index + 1], words[2 * index + 2]
        last = index == links - 1
        if arrow == "->":
            pairs.append((left, right))
        elif arrow == "<-":
            pairs.append((right, left))
        elif last:
            pairs.extend(((left, right), (right, left)))
        else:
            pairs.extend(((left, right), (left, right)))
    return pairs


def _parse_action(words: list[str]) -> SimAction:
    """``action REPO KIND [REMOTE] [while action ...]`` (grammar of ``parseSimAction``)."""
    if len(words) >= 3 and words[0] == "action":
        repo, kind = words[1], words[2]
        if kind == "dropunwanted":
            return _more_actions(words[3:], Action("dropunwanted", repo))
        if kind in ACTION_KINDS and len(words) >= 4:
            return _more_actions(words[4:], Action(action_kind(kind), repo, words[3]))
    raise _unparsable(words)


def action_kind(word: str) -> ActionKind:
    """The `ActionKind` spelled ``word`` (callers check membership first)."""
    for kind in ACTION_KINDS:
        if kind == word:
            return kind
    raise AssertionError(word)


def _more_actions(rest: list[str], first: Action) -> SimAction:
    if not rest:
        return first
    if rest[0] == "while":
        return While(first, _parse_action(rest[1:]))
    raise _unparsable(rest)


_FIXED_ARITY = {
    "init": 1,
    "initremote": 1,
    "present": 2,
    "notpresent": 2,
    "group": 2,
    "ungroup": 2,
    "metadata": 2,
    "clusternode": 2,
}
_REST_EXPRESSION = ("wanted", "required", "groupwanted", "addtree", "use")
_RANDOM = ("randomwanted", "randomrequired", "randomgroupwanted")
_INT_COMMANDS = {
    "step": "step value",
    "stepstable": "step value",
    "seed": "seed value",
    "numcopies": "numcopies value",
    "mincopies": "mincopies value",
}
TRUST_LEVELS = ("trusted", "semitrusted", "untrusted", "dead")


def parse_words(words: list[str]) -> Command:
    """Parse the words of one sim command (``parseSimCommand``).

    Raises:
        SimParseError: wrong argument count, bad number/size/trust level/boolean/chain.
    """
    head, args = (words[0], words[1:]) if words else ("", [])
    if head in _FIXED_ARITY and len(args) == _FIXED_ARITY[head]:
        return Command(head, tuple(args))
    if head in _REST_EXPRESSION and args:
        return Command(head, (args[0], " ".join(args[1:])))
    if head in _RANDOM and args:
        return Command(head, tuple(args))
    if head in ("connect", "disconnect"):
        return Command(head, _check_connections(args))
    if head == "add" and len(args) >= 2:
        size = _size(args[1], "file size")
        return Command(head, (args[0],), (size,), tuple(args[2:]))
    if head == "addmulti" and len(args) >= 4:
        low = _size(args[2], "file size")
        high = _size(args[3], "file size")
        count = _int(args[0], "number")
        return Command(head, (args[1],), (count, low, high), tuple(args[4:]))
    if head in _INT_COMMANDS and len(args) == 1:
        return Command(head, (), (_int(args[0], _INT_COMMANDS[head]),))
    if head == "action":
        return Command(head, action=_parse_action(words))
    if head == "trustlevel" and len(args) == 2:
        if args[1] not in TRUST_LEVELS:
            raise SimParseError(f'Unknown trust level "{args[1]}".', line=" ".join(words))
        return Command(head, tuple(args))
    if head == "maxsize" and len(args) == 2:
        return Command(head, (args[0],), (_size(args[1], "maxsize"),))
    if head == "rebalance" and len(args) == 1:
        flag = read_bool(args[0])
        if flag is None:
            raise SimParseError(f'Unable to parse rebalance value "{args[0]}"', line=args[0])
        return Command(head, flag=flag)
    if head == "visit" and args:
        return Command(head, tuple(args))
    raise _unparsable(words)


def parse_line(line: str) -> Command:
    """Parse one line of a sim file (``parseSimFileLine``).

    Raises:
        SimParseError: the line is not a comment, blank, or valid command.
    """
    if line.startswith(("#", "--")):
        return Command("#comment", text=line)
    if all(is_haskell_space(c) for c in line):
        return Command("#blank")
    return parse_words(haskell_words(line))


def parse_sim_file(text: str) -> list[Command]:
    """Parse a whole sim file; the first bad line stops it (``parseSimFile``).

    Raises:
        SimParseError: a line does not parse.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # Haskell's ``lines`` ignores one trailing newline
    return [parse_line(line) for line in lines]


# --- formatting -------------------------------------------------------------------------


def format_action(action: SimAction) -> list[str]:
    """The words of an action (``formatAction``)."""
    if isinstance(action, While):
        return [*format_action(action.first), "while", *format_action(action.second)]
    words = ["action", action.repo, action.kind]
    if action.remote is not None:
        words.append(action.remote)
    return words


def format_command(command: Command) -> str:
    """The history line of a command (``generateSimFile``: words joined by spaces)."""
    name = command.name
    if name == "#comment":
        return command.text
    if name == "#blank":
        return ""
    if name == "action":
        assert command.action is not None
        return " ".join(format_action(command.action))
    if name == "add":
        return " ".join(["add", command.args[0], format_size(command.numbers[0]), *command.repos])
    if name == "addmulti":
        count, low, high = command.numbers
        sizes = [format_size(low), format_size(high)]
        return " ".join(["addmulti", str(count), command.args[0], *sizes, *command.repos])
    if name == "maxsize":
        return f"maxsize {command.args[0]} {format_size(command.numbers[0])}"
    if name == "rebalance":
        return "rebalance on" if command.flag else "rebalance off"
    if name in _INT_COMMANDS:
        return f"{name} {command.numbers[0]}"
    return " ".join([name, *command.args])


def seed_command(seed: int) -> Command:
    """``seed N`` (the line git-annex records when a sim file does not start with one)."""
    return Command("seed", (), (seed,))
