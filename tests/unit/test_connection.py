"""The P2P state machine against the behaviour recorded from git-annex (traces 01-03)."""

from __future__ import annotations

import pytest

from annexproxy.errors import LocalProtocolError, RemoteProtocolError
from annexproxy.keys import Key
from annexproxy.p2p import messages as m
from annexproxy.p2p.buffer import MAX_LINE
from annexproxy.p2p.connection import (
    NEED_DATA,
    ConnectionClosed,
    Event,
    NeedData,
    P2PConnection,
    PayloadChunk,
    PayloadEnd,
)
from annexproxy.p2p.states import Role, State
from annexproxy.uuids import RepoUUID

KEY = Key.parse("SHA256E-s6--5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03.txt")
KEYB = str(KEY).encode()
U = RepoUUID("b9ea2830-9f27-4383-8602-ecfef4699f7e")


def server(version: int = 4) -> P2PConnection:
    conn = P2PConnection(Role.SERVER)
    conn.send(m.AuthSuccess(uuid=U))
    if version:
        conn.receive_data(f"VERSION {version}\n".encode())
        assert conn.next_event() == m.Version(version=version)
        conn.send(m.Version(version=version))
    return conn


def events(conn: P2PConnection) -> list[Event]:
    out: list[Event] = []
    while not isinstance(ev := conn.next_event(), NeedData):
        out.append(ev)
        if isinstance(ev, ConnectionClosed):
            break
    return out


def reply_to(conn: P2PConnection, data: bytes) -> str:
    conn.receive_data(data)
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_event()
    return info.value.reply


def test_put_with_payload_and_validity() -> None:
    conn = server()
    conn.receive_data(b"PUT  " + KEYB + b"\n")
    assert conn.next_event() == m.Put(associated_file=None, key=KEY)
    assert conn.send(m.PutFrom(offset=2)) == b"PUT-FROM 2\n"
    conn.receive_data(b"DATA 4\nll")
    assert events(conn) == [m.Data(length=4), PayloadChunk(b"ll")]
    conn.receive_data(b"o\nVALID\n")
    assert events(conn) == [PayloadChunk(b"o\n"), PayloadEnd(), m.Valid()]
    assert conn.send(m.Success()) == b"SUCCESS\n"
    assert conn.state is State.IDLE


def test_v0_get_has_no_validity() -> None:
    # trace 03: a v0 client gets DATA and no VALID, then answers SUCCESS.
    conn = server(version=0)
    conn.receive_data(b"GET 0 hello.txt " + KEYB + b"\n")
    assert isinstance(conn.next_event(), m.Get)
    conn.send(m.Data(length=6))
    conn.send_payload(b"hello\n")
    with pytest.raises(LocalProtocolError):
        conn.send(m.Valid())
    conn.receive_data(b"SUCCESS\n")
    assert conn.next_event() == m.Success()
    assert conn.state is State.IDLE


def test_unlockcontent_with_key_is_expected_unlockcontent() -> None:
    # trace 01
    conn = server()
    conn.receive_data(b"LOCKCONTENT " + KEYB + b"\n")
    assert isinstance(conn.next_event(), m.LockContent)
    conn.send(m.Success())
    assert reply_to(conn, b"UNLOCKCONTENT " + KEYB + b"\n") == "expected UNLOCKCONTENT"
    assert conn.state is State.IDLE


def test_idle_errors() -> None:
    conn = server()
    assert reply_to(conn, b"CHECKPRESENT not-a-key\n") == "unknown command"
    conn.send(m.Error(text="unknown command"))
    assert reply_to(conn, b"SUCCESS\n") == "unexpected command"
    conn.send(m.Error(text="unexpected command"))
    assert reply_to(conn, b"FROBNICATE\n") == "unknown command"
    assert conn.state is State.IDLE


def test_data_present_needs_v4() -> None:
    # trace 02 connection E
    conn = server(version=3)
    conn.receive_data(b"PUT n7.txt " + KEYB + b"\n")
    conn.next_event()
    conn.send(m.PutFrom(offset=0))
    assert reply_to(conn, b"DATA-PRESENT\n") == "expected DATA"
    assert conn.state is State.IDLE


def test_get_ack_reply_depends_on_version() -> None:
    for version, reply in [
        (1, "expected SUCCESS or FAILURE"),
        (2, "expected SUCCESS or SUCCESS-PLUS or FAILURE or FAILURE-PLUS"),
    ]:
        conn = server(version=version)
        conn.receive_data(b"GET 0  " + KEYB + b"\n")
        conn.next_event()
        conn.send(m.Data(length=0))
        conn.send(m.Invalid())
        assert reply_to(conn, b"VALID\n") == reply


def test_plus_replies_need_v2() -> None:
    conn = server(version=1)
    conn.receive_data(b"REMOVE " + KEYB + b"\n")
    conn.next_event()
    with pytest.raises(LocalProtocolError):
        conn.send(m.SuccessPlus(uuids=(U,)))


def test_overlong_line_is_fatal() -> None:
    conn = server()
    conn.receive_data(b"CHECKPRESENT " + b"A" * (MAX_LINE + 10))
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_event()
    assert info.value.fatal


def test_eof_mid_payload_is_fatal() -> None:
    conn = server()
    conn.receive_data(b"PUT  " + KEYB + b"\n")
    conn.next_event()
    conn.send(m.PutFrom(offset=0))
    conn.receive_data(b"DATA 6\nhel")
    conn.receive_data(b"")
    with pytest.raises(RemoteProtocolError) as info:
        events(conn)
    assert info.value.fatal


def test_crlf_and_clean_eof() -> None:
    conn = server()
    conn.receive_data(b"CHECKPRESENT " + KEYB + b"\r\n")
    assert conn.next_event() == m.CheckPresent(key=KEY)
    conn.send(m.Failure())
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"")
    assert isinstance(conn.next_event(), ConnectionClosed)


def test_payload_overrun_is_a_local_error() -> None:
    conn = server()
    conn.receive_data(b"GET 0  " + KEYB + b"\n")
    conn.next_event()
    conn.send(m.Data(length=2))
    with pytest.raises(LocalProtocolError):
        conn.send_payload(b"abc")


def test_client_side_tracks_version_and_get() -> None:
    conn = P2PConnection(Role.CLIENT)
    conn.receive_data(b"AUTH-SUCCESS " + U.encode() + b"\n")
    assert conn.next_event() == m.AuthSuccess(uuid=U)
    conn.send(m.Version(version=4))
    conn.receive_data(b"VERSION 3\n")
    conn.next_event()
    assert conn.version == 3
    conn.send(m.Get(offset=0, associated_file=None, key=KEY))
    conn.receive_data(b"DATA 6\nhello\nVALID\n")
    assert events(conn) == [m.Data(length=6), PayloadChunk(b"hello\n"), PayloadEnd(), m.Valid()]
    conn.send(m.Success())
    assert conn.state is State.IDLE


def test_auth_before_anything_on_network_transports() -> None:
    # trace 07: AUTH-FAILURE keeps waiting; other messages are unexpected.
    conn = P2PConnection(Role.SERVER)
    conn.receive_data(b"AUTH " + U.encode() + b" wrongtoken\n")
    assert isinstance(conn.next_event(), m.Auth)
    conn.send(m.AuthFailure())
    assert reply_to(conn, b"VERSION 4\n") == "unexpected command"
    conn.send(m.Error(text="unexpected command"))
    conn.receive_data(b"AUTH " + U.encode() + b" token\n")
    assert isinstance(conn.next_event(), m.Auth)
    conn.send(m.AuthSuccess(uuid=U))
    assert conn.state is State.IDLE


def test_bad_validity_line_is_a_remark_and_the_put_goes_on() -> None:
    # Observed with git-annex 10.20261026: after DATA, "SUCCESS" instead of VALID/INVALID
    # gets "ERROR expected VALID or INVALID" and the upload is still verified and answered.
    conn = server()
    conn.receive_data(b"PUT  " + KEYB + b"\n")
    conn.next_event()
    conn.send(m.PutFrom(offset=0))
    conn.receive_data(b"DATA 0\n")
    assert events(conn) == [m.Data(length=0), PayloadEnd()]
    assert reply_to(conn, b"SUCCESS\n") == "expected VALID or INVALID"
    conn.send(m.Error(text="expected VALID or INVALID"))
    assert conn.state is State.AWAIT_PUT_RESULT
    conn.send(m.Failure())
    assert conn.state in {State.IDLE}  # a set: mypy narrowed the state above


def _idle_client() -> P2PConnection:
    conn = P2PConnection(Role.CLIENT)
    conn.receive_data(b"AUTH-SUCCESS " + U.encode() + b"\n")
    conn.next_event()
    return conn


def test_notifychange_changed() -> None:
    # trace 07 (a): CHANGED carries object ids, not ref names.
    conn = _idle_client()
    conn.send(m.NotifyChange())
    conn.receive_data(b"CHANGED 1fd46ab2d86e7ed7c9b6fbbe22703a6314d3c425\n")
    assert conn.next_event() == m.Changed(shas=("1fd46ab2d86e7ed7c9b6fbbe22703a6314d3c425",))
    assert conn.state is State.IDLE


def test_connect_relays_data_both_ways_and_tolerates_double_connectdone() -> None:
    # trace 07 (b): DATA in both directions without VALID, CONNECTDONE sent twice.
    conn = _idle_client()
    conn.send(m.Connect(service="git-upload-pack"))
    conn.receive_data(b"DATA 4\nabcd")
    assert events(conn) == [m.Data(length=4), PayloadChunk(b"abcd"), PayloadEnd()]
    assert conn.send(m.Data(length=4)) == b"DATA 4\n"
    conn.send_payload(b"0000")
    conn.receive_data(b"CONNECTDONE 1\nCONNECTDONE 1\n")
    assert events(conn) == [m.ConnectDone(exit_code=1), m.ConnectDone(exit_code=1)]
    assert conn.state is State.CLOSED
