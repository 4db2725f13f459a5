"""Hash verification proven against real git-annex: vectors come from `git annex calckey`."""

from __future__ import annotations

import hashlib
import random
import re
from pathlib import Path

import pytest

from annexproxy.errors import StorageError
from annexproxy.keys import Key
from annexproxy.storage.hashing import (
    UNVERIFIABLE_HASH_BACKENDS,
    VERIFIABLE_BACKENDS,
    compute_key,
    verifier_for,
)
from annexproxy.testing.realannex import run

# Sizes chosen around the block sizes of the hashes (64, 128 bytes) and of the parallel
# BLAKE2 trees (8 x 64 = 512, 4 x 128 = 512 bytes), plus something big enough to stream.
SIZES = (0, 1, 12, 63, 64, 65, 511, 512, 513, 1025, 4096 + 7, 200_003)
NOT_HASHES = {"WORM", "URL", "VURL", "GITBUNDLE", "GITMANIFEST", "X*"}  # pairs: SHA256 SHA256E


def _content(size: int) -> bytes:
    return random.Random(size).randbytes(size)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hashcorpus")
    run(["git", "init", "-q", str(root)], root)
    for size in SIZES:
        (root / f"f{size}").write_bytes(_content(size))
    (root / "named.tar.gz").write_bytes(b"hello world\n")
    return root


@pytest.fixture(scope="module")
def annex_backends(corpus: Path) -> list[str]:
    out = run(["git", "annex", "version"], corpus).stdout
    match = re.search(r"^key/value backends: (.*)$", out, re.MULTILINE)
    assert match is not None
    return match.group(1).split()


def _feed_in_odd_pieces(key: Key, data: bytes) -> bool:
    verifier = verifier_for(key)
    assert verifier is not None
    pos, step = 0, 1
    while pos < len(data):
        verifier.update(data[pos : pos + step])
        pos += step
        step = step * 3 + 1
    assert verifier.bytes_seen == len(data)
    return verifier.matches()


@pytest.mark.interop
def test_every_git_annex_hash_backend_is_classified(annex_backends: list[str]) -> None:
    listed = set(annex_backends)
    hashes = {b[:-1] if b[:-1] in listed else b for b in listed} - NOT_HASHES
    assert hashes == VERIFIABLE_BACKENDS | UNVERIFIABLE_HASH_BACKENDS


@pytest.mark.interop
def test_verifiers_agree_with_git_annex_calckey(corpus: Path, annex_backends: list[str]) -> None:
    names = [f"f{size}" for size in SIZES] + ["named.tar.gz"]
    checked = 0
    for backend in annex_backends:
        base = backend[:-1] if backend.endswith("E") else backend
        if base not in VERIFIABLE_BACKENDS:
            continue
        keys = run(["git", "annex", "calckey", f"--backend={backend}", *names], corpus)
        lines = keys.stdout.split()
        assert len(lines) == len(names), keys
        for name, line in zip(names, lines, strict=True):
            key = Key.parse(line)
            data = (corpus / name).read_bytes()
            assert _feed_in_odd_pieces(key, data), (backend, name)
            ext = ".tar.gz" if name == "named.tar.gz" else ""
            assert compute_key(backend, data, extension=ext) == key
            checked += 1
    assert checked >= 30 * len(names)


@pytest.mark.interop
def test_unverifiable_backends_give_no_verifier(corpus: Path) -> None:
    for backend in sorted(UNVERIFIABLE_HASH_BACKENDS):
        for variety in (backend, backend + "E"):
            line = run(["git", "annex", "calckey", f"--backend={variety}", "f12"], corpus)
            key = Key.parse(line.stdout.strip())
            assert verifier_for(key) is None
            with pytest.raises(StorageError):
                compute_key(variety, b"")


@pytest.mark.interop
def test_blake2sp224_cannot_be_built_from_hashlib(corpus: Path) -> None:
    """Documents why BLAKE2SP224 is unverifiable: hashlib leaves of 28 bytes disagree."""
    data = (corpus / "f1025").read_bytes()
    line = run(["git", "annex", "calckey", "--backend=BLAKE2SP224", "f1025"], corpus).stdout
    leaves = []
    for i in range(8):
        part = b"".join(data[j : j + 64] for j in range(i * 64, len(data), 8 * 64))
        leaf = hashlib.blake2s(
            part,
            digest_size=28,
            fanout=8,
            depth=2,
            leaf_size=0,
            inner_size=32,
            node_offset=i,
            node_depth=0,
            last_node=i == 7,
        )
        leaves.append(leaf.digest())
    root = hashlib.blake2s(
        b"".join(leaves),
        digest_size=28,
        fanout=8,
        depth=2,
        leaf_size=0,
        inner_size=32,
        node_offset=0,
        node_depth=1,
        last_node=True,
    )
    assert Key.parse(line.strip()).digest != root.hexdigest()


def test_non_hash_keys_have_no_verifier() -> None:
    for text in ("WORM-s5-m1700000000--a_b", "URL--http&c%%example.com%x", "XFOO-s3--abc"):
        assert verifier_for(Key.parse(text)) is None


def test_verifier_rejects_wrong_content() -> None:
    key = compute_key("SHA256E", b"hello", extension=".txt")
    verifier = verifier_for(key)
    assert verifier is not None
    verifier.update(b"hellO")
    assert not verifier.matches()
    assert verifier.expected == key.digest
