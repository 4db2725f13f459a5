"""The receive buffer against a plain byte string: lines and payload takes agree."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from annexproxy.errors import RemoteProtocolError
from annexproxy.p2p.buffer import MAX_LINE, ReceiveBuffer

_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("feed"), st.binary(max_size=40).map(lambda b: b.replace(b"x", b"\n"))),
        st.tuples(st.just("line"), st.none()),
        st.tuples(st.just("take"), st.integers(min_value=0, max_value=50)),
        st.tuples(st.just("feed_mutable"), st.binary(max_size=20)),
    ),
    max_size=60,
)


@given(_OPS)
def test_matches_a_plain_byte_string(ops: list[tuple[str, object]]) -> None:
    buf, model = ReceiveBuffer(), b""
    for op, arg in ops:
        if op == "feed":
            assert isinstance(arg, bytes)
            buf.feed(arg)
            model += arg
        elif op == "feed_mutable":
            assert isinstance(arg, bytes)
            mutable = bytearray(arg)
            buf.feed(mutable)  # type: ignore[arg-type]  # callers may hand a reused buffer
            mutable[:] = b"?" * len(mutable)  # reused: the buffer must have copied it
            model += arg
        elif op == "line":
            index = model.find(b"\n")
            expected = None if index < 0 else model[:index]
            assert buf.next_line() == (expected.removesuffix(b"\r") if expected else expected)
            if index >= 0:
                model = model[index + 1 :]
        else:
            assert isinstance(arg, int)
            assert buf.take(arg) == model[:arg]
            model = model[arg:]
        assert len(buf) == len(model)


def test_a_whole_block_is_handed_on_without_a_copy() -> None:
    buf = ReceiveBuffer()
    block = bytes(range(256)) * 16
    buf.feed(block)
    assert buf.take(len(block) + 10) is block
    assert len(buf) == 0


def test_a_long_line_without_newline_is_fatal_even_from_a_kept_block() -> None:
    buf = ReceiveBuffer()
    buf.feed(b"a" * (MAX_LINE + 1))
    with pytest.raises(RemoteProtocolError):
        buf.next_line()
