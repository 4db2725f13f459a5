"""Streaming content verification for git-annex hash backends (branch.md 7.1).

Owns the mapping from a key's backend to a hash function computed exactly as git-annex
computes it, and the `Verifier` that hashes bytes as they arrive and compares the result
with the key's digest. It must not read files or know about repositories: callers feed
bytes. Size is checked by the caller against ``Key.size``.

Backends verified (each proven against ``git annex calckey`` in ``tests/unit/test_hashing.py``),
in plain and ``E`` varieties:

* ``MD5 SHA1 SHA224 SHA256 SHA384 SHA512 SHA3_224 SHA3_256 SHA3_384 SHA3_512`` (hashlib);
* ``BLAKE2B160/224/256/384/512`` and ``BLAKE2S160/224/256``: hashlib's blake2b/blake2s with
  that digest size;
* ``BLAKE2BP512`` and ``BLAKE2SP256``: the parallel BLAKE2 tree (4 blake2b or 8 blake2s
  leaves, fanout P, depth 2, inner size 64/32, leaf i hashing blocks i, i+P, ... of the
  input, the last leaf and the root flagged ``last_node``), built from hashlib's tree
  parameters;
* ``BLAKE3_256`` (the ``blake3`` package) and ``XXH3`` (the ``xxhash`` package: git-annex
  uses the 64-bit XXH3, ``xxh3_64``, as 16 lower-case hex digits, zero-padded).

Backends that cannot be verified here (`verifier_for` returns None, so content is accepted
on the sender's word, as for ``WORM``/``URL`` keys):

* ``SKEIN256`` and ``SKEIN512``: no maintained Python package implements Skein (``pyskein``
  was last released in 2013, ``geesefly`` in 2016).
* ``BLAKE2SP224``: git-annex (the BLAKE2 reference code) gives each leaf a parameter block
  saying 28 bytes of output but uses all 32 bytes of the leaf state as the root's input.
  hashlib ties the parameter block to the output length, so it cannot produce those leaves;
  the obvious hashlib construction disagrees with git-annex (checked in the tests).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import blake3
import xxhash

from annexproxy.errors import StorageError
from annexproxy.keys import Key


class Hasher(Protocol):
    """The part of a hashlib-like object that verification needs."""

    def update(self, data: bytes | memoryview, /) -> None:
        """Feed more bytes."""
        ...

    def hexdigest(self) -> str:
        """Return the digest of everything fed so far, as lower-case hex."""
        ...


class _ParallelBlake2:
    """BLAKE2bp / BLAKE2sp: P leaves over interleaved blocks, one root over the leaves.

    Bytes are dealt out in blocks of ``block`` bytes: block n goes to leaf ``n % P``. Each
    leaf is an ordinary streaming hashlib object, so memory stays bounded.
    """

    def __init__(
        self,
        ctor: Callable[..., Hasher],
        *,
        leaves: int,
        block: int,
        digest_size: int,
        inner_size: int,
    ) -> None:
        self._ctor = ctor
        self._block = block
        self._digest_size = digest_size
        self._inner_size = inner_size
        self._leaves = [
            ctor(
                digest_size=digest_size,
                fanout=leaves,
                depth=2,
                leaf_size=0,
                node_offset=i,
                node_depth=0,
                inner_size=inner_size,
                last_node=i == leaves - 1,
            )
            for i in range(leaves)
        ]
        self._pos = 0

    def update(self, data: bytes | memoryview, /) -> None:
        view = memoryview(data)
        count = len(self._leaves)
        while view:
            within = self._pos % self._block
            take = min(self._block - within, len(view))
            self._leaves[(self._pos // self._block) % count].update(view[:take])
            view = view[take:]
            self._pos += take

    def hexdigest(self) -> str:
        root = self._ctor(
            b"".join(bytes.fromhex(leaf.hexdigest()) for leaf in self._leaves),
            digest_size=self._digest_size,
            fanout=len(self._leaves),
            depth=2,
            leaf_size=0,
            node_offset=0,
            node_depth=1,
            inner_size=self._inner_size,
            last_node=True,
        )
        return root.hexdigest()


class _Xxh3:
    """XXH3 as git-annex names it: the 64-bit variant, 16 hex digits."""

    def __init__(self) -> None:
        self._h = xxhash.xxh3_64()

    def update(self, data: bytes | memoryview, /) -> None:
        self._h.update(data)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


class _Blake3:
    """BLAKE3 with its default 256-bit output."""

    def __init__(self) -> None:
        self._h = blake3.blake3()

    def update(self, data: bytes | memoryview, /) -> None:
        self._h.update(data)

    def hexdigest(self) -> str:
        return str(self._h.hexdigest())


def _hashlib(name: str) -> Callable[[], Hasher]:
    return lambda: hashlib.new(name)


def _blake2(ctor: Callable[..., Hasher], bits: int) -> Callable[[], Hasher]:
    return lambda: ctor(digest_size=bits // 8)


_FACTORIES: dict[str, Callable[[], Hasher]] = {
    "MD5": _hashlib("md5"),
    "SHA1": _hashlib("sha1"),
    "SHA224": _hashlib("sha224"),
    "SHA256": _hashlib("sha256"),
    "SHA384": _hashlib("sha384"),
    "SHA512": _hashlib("sha512"),
    "SHA3_224": _hashlib("sha3_224"),
    "SHA3_256": _hashlib("sha3_256"),
    "SHA3_384": _hashlib("sha3_384"),
    "SHA3_512": _hashlib("sha3_512"),
    **{f"BLAKE2B{bits}": _blake2(hashlib.blake2b, bits) for bits in (160, 224, 256, 384, 512)},
    **{f"BLAKE2S{bits}": _blake2(hashlib.blake2s, bits) for bits in (160, 224, 256)},
    "BLAKE2BP512": lambda: _ParallelBlake2(
        hashlib.blake2b, leaves=4, block=128, digest_size=64, inner_size=64
    ),
    "BLAKE2SP256": lambda: _ParallelBlake2(
        hashlib.blake2s, leaves=8, block=64, digest_size=32, inner_size=32
    ),
    "BLAKE3_256": _Blake3,
    "XXH3": _Xxh3,
}

#: Hash backends (without the ``E`` suffix) whose content we verify.
VERIFIABLE_BACKENDS: frozenset[str] = frozenset(_FACTORIES)

#: Hash backends git-annex knows that we cannot verify (see the module docstring).
UNVERIFIABLE_HASH_BACKENDS: frozenset[str] = frozenset({"SKEIN256", "SKEIN512", "BLAKE2SP224"})


def new_hasher(backend: str) -> Hasher | None:
    """Make a fresh hasher for a backend name without the ``E`` suffix (``SHA256``).

    Returns:
        The hasher, or None when the backend cannot be verified by hash here.
    """
    factory = _FACTORIES.get(backend)
    return None if factory is None else factory()


def _is_hash_variety(variety: str) -> bool:
    base = variety[:-1] if variety.endswith("E") else variety
    return base in _FACTORIES


@dataclass(slots=True, kw_only=True, eq=False)
class Verifier:
    """Hashes content as it streams in and tells whether it matches a key's digest."""

    key: Key
    hasher: Hasher
    bytes_seen: int = 0

    @property
    def expected(self) -> str:
        """The digest the content must have (the key name without extension)."""
        return self.key.digest

    def update(self, data: bytes) -> None:
        """Feed the next bytes of the content."""
        self.hasher.update(data)
        self.bytes_seen += len(data)

    def hexdigest(self) -> str:
        """The digest of the bytes fed so far (lower-case hex)."""
        return self.hasher.hexdigest()

    def matches(self) -> bool:
        """True if the bytes fed so far hash to the key's digest."""
        return self.hexdigest() == self.expected


def verifier_for(key: Key) -> Verifier | None:
    """Make a verifier for the content of ``key``.

    ``E`` varieties hash the same way as the plain ones; their extension is not hashed.

    Returns:
        A fresh verifier, or None when the key's backend cannot be verified by hash
        (``WORM``, ``URL``, ``SKEIN256``, ``BLAKE2SP224``, external backends, ...).
    """
    if not key.variety or not _is_hash_variety(key.variety):
        return None
    base = key.variety[:-1] if key.variety.endswith("E") else key.variety
    hasher = new_hasher(base)
    return None if hasher is None else Verifier(key=key, hasher=hasher)


def compute_key(variety: str, data: bytes, *, extension: str = "") -> Key:
    """Compute the key git-annex would give ``data`` with a hash backend.

    Args:
        variety: backend name, e.g. ``SHA256E`` or ``XXH3``.
        data: the whole content (meant for tests and small objects).
        extension: for ``E`` varieties, the extension including its dot (``.txt``).

    Returns:
        The key, with ``-s`` set to the size.

    Raises:
        StorageError: the backend cannot be computed here.
    """
    base = variety[:-1] if variety.endswith("E") else variety
    hasher = new_hasher(base) if _is_hash_variety(variety) else None
    if hasher is None:
        raise StorageError(f"cannot compute {variety} keys: the backend is not verifiable here")
    hasher.update(data)
    suffix = extension if variety.endswith("E") and base != variety else ""
    return Key.parse(f"{variety}-s{len(data)}--{hasher.hexdigest()}{suffix}")
