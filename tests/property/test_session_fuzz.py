"""Any bytes from a client give replies or a clean close: never a traceback or a hang.

The real server session runs over an in-memory stream against MemoryStorage, fed both as
one chunk and one byte at a time (STYLE.md habit 9: h11's fuzz invariant).
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from annexproxy.keys import Key
from annexproxy.server.p2p_session import P2PSession
from annexproxy.storage.memory import MemoryStorage
from annexproxy.testing.streams import ScriptedStream

pytestmark = pytest.mark.property

HELLO = Key.parse(
    "SHA256E-s6--5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03.txt"
)
K = str(HELLO)

WORDS = [
    "VERSION 4",
    "VERSION 0",
    "VERSION 2",
    f"CHECKPRESENT {K}",
    f"LOCKCONTENT {K}",
    "UNLOCKCONTENT",
    f"REMOVE {K}",
    f"REMOVE-BEFORE 99999999 {K}",
    "GETTIMESTAMP",
    f"GET 0 hello.txt {K}",
    f"GET 3  {K}",
    f"PUT  {K}",
    "PUT x SHA256E-s3--abc",
    "DATA 3",
    "DATA 0",
    "DATA-PRESENT",
    "VALID",
    "INVALID",
    "SUCCESS",
    "FAILURE",
    "SUCCESS-PLUS a b",
    "BYPASS a",
    "ERROR oops",
    "CONNECT git-upload-pack",
    "NOTIFYCHANGE",
    "AUTH a b",
    "PUT-FROM 0",
    "ALREADY-HAVE",
    "hello",
    "",
]

lines = st.lists(
    st.one_of(
        st.sampled_from(WORDS).map(lambda w: w.encode() + b"\n"),
        st.binary(max_size=40),
    ),
    max_size=25,
).map(b"".join)


def run_session(pieces: list[bytes]) -> tuple[int, bytes]:
    async def go() -> tuple[int, bytes]:
        storage = MemoryStorage()
        storage.store_nowait(HELLO, b"hello\n")
        stream = ScriptedStream(pieces)
        status = await asyncio.wait_for(P2PSession(storage, stream).run(), timeout=30)
        return status, bytes(stream.output)

    return asyncio.run(go())


@given(lines)
def test_any_input_whole(data: bytes) -> None:
    status, output = run_session([data])
    assert status in (0, 1)
    assert output.startswith(b"AUTH-SUCCESS ")


@given(lines)
def test_any_input_byte_by_byte(data: bytes) -> None:
    whole = run_session([data])
    split = run_session([data[i : i + 1] for i in range(len(data))])
    assert split == whole


@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    status, _ = run_session([data])
    assert status in (0, 1)
