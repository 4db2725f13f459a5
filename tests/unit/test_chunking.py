"""git-annex's chunking rules and chunk log (special/chunking.py), no I/O."""

from __future__ import annotations

import pytest

from annexproxy.branch.logs.timestamps import Timestamp
from annexproxy.errors import ConfigError
from annexproxy.keys import Key
from annexproxy.special import chunking
from annexproxy.special.remote import SpecialRemote
from annexproxy.uuids import RepoUUID

U1 = RepoUUID("16e4c38d-ff44-4d84-8615-69ede6414762")
U2 = RepoUUID("7d927ce2-4dac-480e-87af-b1a4936e4e1d")
KEY = Key.parse("SHA256E-s2560--" + "ab" * 32 + ".bin")


def _remote(**params: str) -> SpecialRemote:
    return SpecialRemote(uuid=U1, name="d", type="directory", params=params)


@pytest.mark.parametrize(
    ("key", "stable"),
    [
        ("SHA256E-s3--" + "a" * 64 + ".txt", True),
        ("MD5-s3--" + "a" * 32, True),
        ("BLAKE2B256E-s3--" + "a" * 64, True),
        ("SKEIN512-s3--" + "a" * 128, True),  # a hash backend we cannot verify is stable
        ("WORM-s3-m1700000000--f.txt", True),  # git-annex Backend/WORM: isStableKey True
        ("URL-s3--http&c%%example.com%f", False),
        ("VURL-s3--http&c%%example.com%f", False),
        ("XFOO-s3--abc", False),  # external backends: git-annex asks the program
    ],
)
def test_chunkable_as_git_annex_is_stable(key: str, stable: bool) -> None:
    assert chunking.chunkable(Key.parse(key)) is stable


def test_chunk_keys_and_count() -> None:
    assert chunking.chunk_count(2560, 1000) == 3
    assert chunking.chunk_count(0, 1000) == 1  # an empty object is one empty chunk
    names = [str(k) for k in chunking.chunk_keys(KEY, 1000, 3)]
    assert names == [f"SHA256E-s2560-S1000-C{n}--{KEY.name}" for n in (1, 2, 3)]


def test_chunk_log_lines_as_git_annex_writes_them() -> None:
    content = chunking.record_chunks(b"", U1, 1048576, 3, Timestamp.parse(b"1796571567s"))
    assert content == f"1796571567s {U1}:1048576 3\n".encode()
    other = f"1796571560.5s {U2}:1000 2\n1796571561s {U1}:500 0\n".encode()
    assert chunking.recorded_chunks(content + other, U1) == [(1048576, 3)]
    assert chunking.recorded_chunks(content + other, U2) == [(1000, 2)]
    gone = chunking.record_chunks(content, U1, 1048576, 0, Timestamp.parse(b"1796571568s"))
    assert chunking.recorded_chunks(gone, U1) == []


def test_layouts_in_git_annex_order() -> None:
    plain, spec = [KEY], chunking.chunk_keys(KEY, 1000, 3)
    logged = chunking.chunk_keys(KEY, 500, 6)
    # Not chunking now: the unchunked key first, then what the log records.
    assert chunking.layouts(KEY, None, [(500, 6)]) == [plain, logged]
    # Chunking: the log's layouts, the unchunked key, then the current chunk size's.
    assert chunking.layouts(KEY, 1000, [(500, 6)]) == [logged, plain, spec]
    assert chunking.layouts(KEY, 1000, [(1000, 3)]) == [spec, plain]


def test_chunk_size_config() -> None:
    assert chunking.chunk_size_of(_remote(chunk="1MiB")) == 1 << 20
    assert chunking.chunk_size_of(_remote()) is None
    with pytest.raises(ConfigError, match="chunksize"):
        chunking.chunk_size_of(_remote(chunksize="1MiB"))
    with pytest.raises(ConfigError, match="chunk=lots"):
        chunking.chunk_size_of(_remote(chunk="lots"))
