"""Haskell ``Read`` number syntax, as git-annex's size and count parsers see it.

git-annex parses sizes with ``reads :: ReadS Double`` and counts with ``readish`` (``reads``
for ``Int``), so an implementation that wants its answers must accept exactly what GHC's
lexer accepts: leading white space, a ``-`` symbol before the number, parentheses,
``0x``/``0o`` integers, decimal fractions and exponents, ``NaN`` and ``Infinity``, and any
trailing text (``2abc`` is 2). preferred-content.md section 7 describes the subset that
matters. Pure: no I/O.
"""

from __future__ import annotations

import math
import unicodedata

_INT64 = 1 << 64
_INT64_MAX = (1 << 63) - 1
_INT64_MIN = -(1 << 63)

# GHC Text.Read.Lex: isPuncChar and the ASCII symbol characters.
_PUNC = set(",;()[]{}`")
_ASCII_SYMBOLS = set("!@#$%&*+./<=>?\\^|:-~")
_SYMBOL_CATEGORIES = {"Sm", "Sc", "Sk", "So", "Pd"}


def is_haskell_space(char: str) -> bool:
    """GHC's ``Data.Char.isSpace``: ASCII white space, NBSP, and Unicode category Zs."""
    code = ord(char)
    if code <= 0x377:
        return code == 0x20 or 0x09 <= code <= 0x0D or code == 0xA0
    return unicodedata.category(char) == "Zs"


def _is_symbol_char(char: str) -> bool:
    if char in _PUNC:
        return False
    if char in _ASCII_SYMBOLS:
        return True
    if ord(char) < 0x80:
        return False
    category = unicodedata.category(char)
    if category in _SYMBOL_CATEGORIES:
        return True
    if category == "Po":
        return char not in "'\""
    return category == "Pc" and char != "_"


def _skip_spaces(text: str, pos: int) -> int:
    while pos < len(text) and is_haskell_space(text[pos]):
        pos += 1
    return pos


def _munch(text: str, pos: int, accept: str) -> int:
    while pos < len(text) and text[pos] in accept:
        pos += 1
    return pos


_DIGITS = "0123456789"
_HEX = "0123456789abcdefABCDEF"
_OCT = "01234567"


def _lex_number(text: str, pos: int) -> tuple[int | float, bool, int]:
    """Lex a number at ``pos`` (a digit). Returns (value, is_integral, end)."""
    if text[pos] == "0" and pos + 2 < len(text):
        marker = text[pos + 1]
        for letters, alphabet, base in (("xX", _HEX, 16), ("oO", _OCT, 8)):
            if marker in letters and pos + 2 < len(text) and text[pos + 2] in alphabet:
                end = _munch(text, pos + 2, alphabet)
                return int(text[pos + 2 : end], base), True, end
    end = _munch(text, pos, _DIGITS)
    int_part = text[pos:end]
    frac = ""
    if end + 1 < len(text) and text[end] == "." and text[end + 1] in _DIGITS:
        frac_end = _munch(text, end + 1, _DIGITS)
        frac = text[end + 1 : frac_end]
        end = frac_end
    exponent: int | None = None
    if end < len(text) and text[end] in "eE":
        sign_pos = end + 1
        sign = 1
        if sign_pos < len(text) and text[sign_pos] in "+-":
            sign = -1 if text[sign_pos] == "-" else 1
            sign_pos += 1
        if sign_pos < len(text) and text[sign_pos] in _DIGITS:
            exp_end = _munch(text, sign_pos, _DIGITS)
            exponent = sign * int(text[sign_pos:exp_end])
            end = exp_end
    if not frac and exponent is None:
        return int(int_part), True, end
    return _decimal_to_float(int_part, frac, exponent), False, end


def _decimal_to_float(int_part: str, frac: str, exponent: int | None) -> float:
    # GHC's numberToRangedRational gives up (and Read Double answers Infinity) when the
    # exponent does not fit an Int, whatever the digits are.
    if exponent is not None and not _INT64_MIN <= exponent <= _INT64_MAX:
        return math.inf
    digits = (int_part + frac).lstrip("0")
    if not digits:
        return 0.0
    exp10 = (exponent or 0) - len(frac)
    # Clamp absurd exponents before handing the text to float() (same result, no huge text).
    magnitude = len(digits) + exp10
    if magnitude > 400:
        return math.inf
    if magnitude < -400:
        return 0.0
    return float(f"{digits}e{exp10}")


def _lex_ident(text: str, pos: int) -> int:
    end = pos + 1
    while end < len(text) and (text[end].isalnum() or text[end] in "_'"):
        end += 1
    return end


def _read_number(text: str, pos: int, *, integral: bool) -> tuple[int | float, int] | None:
    """GHC.Read ``readNumber`` wrapped in ``parens``; returns (value, end) or None."""
    pos = _skip_spaces(text, pos)
    if pos >= len(text):
        return None
    char = text[pos]
    if char == "(":
        inner = _read_number(text, pos + 1, integral=integral)
        if inner is None:
            return None
        value, end = inner
        end = _skip_spaces(text, end)
        if end < len(text) and text[end] == ")":
            return value, end + 1
        return None
    if _is_symbol_char(char):
        end = pos
        while end < len(text) and _is_symbol_char(text[end]):
            end += 1
        if text[pos:end] != "-":
            return None
        operand = _read_atom(text, _skip_spaces(text, end), integral=integral)
        if operand is None:
            return None
        return -operand[0], operand[1]
    return _read_atom(text, pos, integral=integral)


def _read_atom(text: str, pos: int, *, integral: bool) -> tuple[int | float, int] | None:
    if pos >= len(text):
        return None
    char = text[pos]
    if char in _DIGITS:
        value, is_integral, end = _lex_number(text, pos)
        if integral:
            if not is_integral:
                return None
            return _wrap_int64(int(value)), end
        return float(value), end
    if char.isalpha() or char == "_":
        end = _lex_ident(text, pos)
        word = text[pos:end]
        if integral:
            return None
        if word == "NaN":
            return math.nan, end
        if word == "Infinity":
            return math.inf, end
    return None


def _wrap_int64(value: int) -> int:
    # fromInteger into a 64-bit Int wraps around, as GHC does.
    value %= _INT64
    return value - _INT64 if value > _INT64_MAX else value


def read_double_prefix(text: str) -> tuple[float, str] | None:
    """The first result of Haskell ``reads text :: [(Double, String)]``.

    Returns:
        The number and the unparsed rest, or None when no number starts the text.
    """
    result = _read_number(text, 0, integral=False)
    if result is None:
        return None
    value, end = result
    return float(value), text[end:]


def read_double_exact(text: str) -> float | None:
    """Haskell ``readMaybe text :: Maybe Double`` (whole text, trailing spaces allowed)."""
    result = _read_number(text, 0, integral=False)
    if result is None or _skip_spaces(text, result[1]) != len(text):
        return None
    return float(result[0])


def readish_int(text: str) -> int | None:
    """git-annex's ``readish`` for ``Int``: a leading integer, trailing text ignored.

    ``"2abc"`` is 2, ``"0x10"`` is 16, ``"2.5"``, ``"2e1"`` and ``"+2"`` are None; values
    wrap around at 64 bits like GHC's ``Int``.
    """
    result = _read_number(text, 0, integral=True)
    return None if result is None else int(result[0])


def haskell_round(value: float) -> int:
    """GHC's ``round :: Double -> Integer`` (half to even; NaN and infinities included).

    GHC rounds the mantissa/exponent pair of ``decodeFloat``, so Infinity becomes 2^1024
    and NaN becomes -1.5 * 2^1024.
    """
    if math.isnan(value):
        return -3 * (1 << 1023)
    if math.isinf(value):
        return (1 << 1024) if value > 0 else -(1 << 1024)
    return round(value)
