"""Repository sizes, maxsize decisions and size parsing (maxsize.md). Pure core: no I/O."""

from annexproxy.space.maxsize import (
    DEFAULT_FULLY_BALANCED_THRESHOLD,
    has_space,
    proportion_free,
    too_full,
)
from annexproxy.space.sizes import (
    RepoSizeTracker,
    Reservation,
    SizeSnapshot,
    SizeSource,
    key_size,
)
from annexproxy.space.units import parse_size

__all__ = [
    "DEFAULT_FULLY_BALANCED_THRESHOLD",
    "RepoSizeTracker",
    "Reservation",
    "SizeSnapshot",
    "SizeSource",
    "has_space",
    "key_size",
    "parse_size",
    "proportion_free",
    "too_full",
]
