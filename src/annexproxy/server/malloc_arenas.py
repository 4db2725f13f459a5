"""The number of glibc malloc arenas a long-running server may use.

glibc gives each thread that allocates while others hold the main arena a heap of its
own, up to eight per CPU, and a freed block stays in the heap it came from. A server
whose worker threads parse git trees and write journals then keeps several heaps of
free space. Two arenas are enough for its few busy threads; `limit_malloc_arenas` sets
that unless ``MALLOC_ARENA_MAX`` already says otherwise. Elsewhere than glibc it does
nothing.
"""

from __future__ import annotations

import ctypes
import os

_M_ARENA_MAX = -8  # from glibc's malloc.h
SERVER_ARENAS = 2


def limit_malloc_arenas(arenas: int = SERVER_ARENAS) -> bool:
    """Cap glibc's malloc arenas at ``arenas``; call before starting threads.

    Returns:
        True when the cap was set; False when ``MALLOC_ARENA_MAX`` is set, or the C
        library is not glibc.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # the C library already loaded
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    if not hasattr(libc, "gnu_get_libc_version"):
        return False
    return bool(mallopt(_M_ARENA_MAX, arenas))
