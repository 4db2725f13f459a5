"""The one error hierarchy of annexproxy.

Every error raised on purpose by annexproxy derives from `AnnexProxyError`. Errors carry
the fields that explain them (key, UUID, expected and got values) and a message that says
what was wrong and what to do. Foreign exceptions (OSError, ...) are converted at the I/O
boundary with ``raise ... from exc``. This module must not import anything from annexproxy.
"""

from __future__ import annotations


class AnnexProxyError(Exception):
    """Root of every error annexproxy raises on purpose."""


# --- protocol -------------------------------------------------------------------------


class ProtocolError(AnnexProxyError):
    """A P2P protocol rule was broken.

    Attributes:
        reply: the text a server sends back after ``ERROR `` (git-annex's wording).
        fatal: the connection cannot go on (line too long, lost framing).
    """

    def __init__(self, message: str, *, reply: str = "protocol error", fatal: bool = False) -> None:
        super().__init__(message)
        self.reply = reply
        self.fatal = fatal


class LocalProtocolError(ProtocolError):
    """We tried to send something the protocol state does not allow (a bug on our side)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow."""


# --- values ---------------------------------------------------------------------------


class KeyFormatError(AnnexProxyError):
    """A string is not a valid, safe git-annex key."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


class LogFormatError(AnnexProxyError):
    """A git-annex branch log could not be parsed or written."""


class ExpressionSyntaxError(AnnexProxyError):
    """A preferred-content expression has a syntax error.

    Attributes:
        source: the whole expression.
        span: (start, end) character offsets of the bad word.
    """

    def __init__(self, message: str, *, source: str, span: tuple[int, int]) -> None:
        super().__init__(message)
        self.source = source
        self.span = span

    def __str__(self) -> str:
        start, end = self.span
        caret = " " * start + "^" * max(1, end - start)
        return f"{self.args[0]}\n    {self.source}\n    {caret}"


# --- storage --------------------------------------------------------------------------


class StorageError(AnnexProxyError):
    """A storage backend could not do what was asked."""


class KeyNotPresent(StorageError):
    """The content of a key is not present where it was asked for."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


class ContentLocked(StorageError):
    """The content is locked (by us, by git-annex, or by a retention time) and cannot go."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


class PartialRemoval(StorageError):
    """Removal failed somewhere, but these other repositories did lose the content.

    Attributes:
        others: UUIDs (not the addressed one) from which the content was removed.
    """

    def __init__(self, message: str, *, others: tuple[str, ...]) -> None:
        super().__init__(message)
        self.others = others


class NodeUnavailable(StorageError):
    """A node (repository or remote) cannot be reached."""


class VerificationFailed(StorageError):
    """Received content does not match its key (hash or size)."""

    def __init__(self, message: str, *, key: str, expected: str, got: str) -> None:
        super().__init__(message)
        self.key = key
        self.expected = expected
        self.got = got


class OutOfSpace(StorageError):
    """Storing would exceed the space a repository has or may use.

    Attributes:
        key: the key being stored or spooled, when known.
        needed: bytes more that would have to be free, when known.
    """

    def __init__(self, message: str, *, key: str | None = None, needed: int | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.needed = needed


class RepositoryError(StorageError):
    """A directory is not a usable git-annex repository (missing, not initialised, ...)."""


# --- access and configuration ---------------------------------------------------------


class AuthError(AnnexProxyError):
    """A client is not allowed to do what it asked."""


class ConfigError(AnnexProxyError):
    """Configuration or command-line arguments are wrong."""
