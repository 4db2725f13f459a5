"""maxsize decisions: has space, too full, proportional free space (maxsize.md section 3).

Pure functions over numbers; the repository sizes come from `annexproxy.space.sizes` and
the maxsize values from ``maxsize.log``. A maxsize of 0 is a real limit of zero bytes for
`has_space` (contrary to git-annex-maxsize(1)); it is never "too full" and it is excluded
from proportional placement. Pure: no I/O.
"""

from __future__ import annotations

#: ``annex.fullybalancedthreshhold`` default, in percent.
DEFAULT_FULLY_BALANCED_THRESHOLD = 90.0


def has_space(*, size: int | None, maxsize: int | None, key_size: int, in_repo: bool) -> bool:
    """Whether a repository can take (or keep) a key under its maxsize (maxsize.md 3.1).

    Args:
        size: the repository's current (live) size, None when it has no size entry.
        maxsize: its maxsize, None when unset.
        key_size: the size field of the key (0 when absent).
        in_repo: the location log already lists the repository as having the key.

    Returns:
        True when there is no limit or the key fits.
    """
    if maxsize is None or size is None:
        return True
    if in_repo:
        return size <= maxsize
    return size + key_size <= maxsize


def too_full(*, size: int | None, maxsize: int | None, threshold_percent: float) -> bool:
    """Whether a repository counts as too full for ``--rebalance`` (maxsize.md 3.2).

    Returns:
        True when maxsize is set and non-zero and size >= maxsize * threshold / 100,
        compared as doubles.
    """
    if maxsize is None or maxsize == 0 or size is None:
        return False
    return float(size) >= float(maxsize) * (threshold_percent / 100.0)


def proportion_free(*, size: int, maxsize: int, key_size: int, in_repo: bool) -> float | None:
    """The score of proportional placement (maxsize.md 3.4), None when maxsize <= 0.

    Returns:
        (maxsize - size + (key_size if in_repo else 0)) / maxsize as a double.
    """
    if maxsize <= 0:
        return None
    free = maxsize - size + (key_size if in_repo else 0)
    return float(free) / float(maxsize)
