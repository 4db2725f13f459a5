"""Golden (line, message) pairs taken from real git-annex traces (shared/spec/traces)."""

from __future__ import annotations

import pytest

from annexproxy.errors import RemoteProtocolError
from annexproxy.keys import Key
from annexproxy.p2p import messages as m
from annexproxy.p2p.wire import (
    decode_associated_file,
    encode_associated_file,
    format_message,
    parse_message,
)
from annexproxy.uuids import RepoUUID

HELLO = Key.parse(
    "SHA256E-s6--5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03.txt"
)
S1 = Key.parse("SHA256E-s8--630b4a2967e35ea82deaf2b554089e5e3071da26d7403c94fb728d123367ec0f.txt")
N1 = RepoUUID("802d7c33-342e-40c8-adb1-72d3aeac1c12")
N2 = RepoUUID("a98476d3-0bb1-45cb-be03-df1ebde49786")

SIMPLE_CASES: list[tuple[bytes, m.Message]] = [
    (
        b"AUTH-SUCCESS b9ea2830-9f27-4383-8602-ecfef4699f7e",
        m.AuthSuccess(uuid=RepoUUID("b9ea2830-9f27-4383-8602-ecfef4699f7e")),
    ),
    (
        b"AUTH 506f13e8-32ba-4e70-a3c2-46fb079139b1 wrongtoken",
        m.Auth(uuid=RepoUUID("506f13e8-32ba-4e70-a3c2-46fb079139b1"), token="wrongtoken"),
    ),
    (b"AUTH-FAILURE", m.AuthFailure()),
    (b"VERSION 4", m.Version(version=4)),
    (b"CHECKPRESENT " + str(HELLO).encode(), m.CheckPresent(key=HELLO)),
    (
        b"GET 0 hello.txt " + str(HELLO).encode(),
        m.Get(offset=0, associated_file="hello.txt", key=HELLO),
    ),
    (b"GET 3  " + str(HELLO).encode(), m.Get(offset=3, associated_file=None, key=HELLO)),
    (b"PUT s1.txt " + str(S1).encode(), m.Put(associated_file="s1.txt", key=S1)),
    (b"PUT-FROM 8000", m.PutFrom(offset=8000)),
    (b"DATA 20000", m.Data(length=20000)),
    (b"DATA-PRESENT", m.DataPresent()),
    (b"VALID", m.Valid()),
    (b"INVALID", m.Invalid()),
    (b"SUCCESS", m.Success()),
    (b"FAILURE", m.Failure()),
    (b"ALREADY-HAVE", m.AlreadyHave()),
    (b"ALREADY-HAVE-PLUS " + N1.encode(), m.AlreadyHavePlus(uuids=(N1,))),
    (b"SUCCESS-PLUS " + N1.encode() + b" " + N2.encode(), m.SuccessPlus(uuids=(N1, N2))),
    (b"FAILURE-PLUS " + N2.encode(), m.FailurePlus(uuids=(N2,))),
    (b"LOCKCONTENT " + str(S1).encode(), m.LockContent(key=S1)),
    (b"UNLOCKCONTENT", m.UnlockContent()),
    (b"REMOVE " + str(S1).encode(), m.Remove(key=S1)),
    (b"GETTIMESTAMP", m.GetTimestamp()),
    (b"TIMESTAMP 831", m.Timestamp(timestamp=831)),
    (b"REMOVE-BEFORE 1430 " + str(S1).encode(), m.RemoveBefore(timestamp=1430, key=S1)),
    (b"BYPASS " + N1.encode(), m.Bypass(uuids=(N1,))),
    (b"NOTIFYCHANGE", m.NotifyChange()),
    (
        b"CHANGED 1fd46ab2d86e7ed7c9b6fbbe22703a6314d3c425",
        m.Changed(shas=("1fd46ab2d86e7ed7c9b6fbbe22703a6314d3c425",)),
    ),
    (b"CONNECT git-upload-pack", m.Connect(service="git-upload-pack")),
    (b"CONNECTDONE 1", m.ConnectDone(exit_code=1)),
    (b"ERROR expected UNLOCKCONTENT", m.Error(text="expected UNLOCKCONTENT")),
    (
        b"ERROR this repository is read-only; write access denied",
        m.Error(text="this repository is read-only; write access denied"),
    ),
]


@pytest.mark.parametrize(("line", "message"), SIMPLE_CASES)
def test_parse_golden(line: bytes, message: m.Message) -> None:
    assert parse_message(line) == message


@pytest.mark.parametrize(("line", "message"), SIMPLE_CASES)
def test_format_golden(line: bytes, message: m.Message) -> None:
    assert format_message(message) == line + b"\n"


@pytest.mark.parametrize(
    "line",
    [
        b"UNLOCKCONTENT " + str(HELLO).encode(),  # trace 01: parameters on a bare message
        b"CHECKPRESENT not-a-key",  # trace 01
        b"FROBNICATE",
        b"version 4",  # case-sensitive
        b"VERSION -1",
        b"VERSION +4",
        b"VERSION 0x4",
        b"VERSION 4 ",
        b"DATA 1_000",
        b"GET 0 x",
        b"GET x y " + str(HELLO).encode(),
        b"PUT /etc/passwd " + str(HELLO).encode(),  # absolute associated file
        b"CHECKPRESENT SHA256E-s1--../../etc/passwd",
        b"CHECKPRESENT SHA256E-s1--a/b",
        b"CHECKPRESENT SHA256E-s1--a\x00b",
        b"CHECKPRESENT SHA256E-s1--" + b"a" * 300,
        b"CHECKPRESENT SHA256E-m1-s1--abc",  # fields out of order
        b"CONNECT git-frobnicate",
        b"CHANGED notasha",
        b"",
    ],
)
def test_unparsable_lines_say_unknown_command(line: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(line)
    assert info.value.reply == "unknown command"
    assert not info.value.fatal


def test_associated_file_encoding() -> None:
    # wire.md 1: whitespace -> %, % -> %%; decoding turns a lone % into _.
    assert encode_associated_file("a b%c.txt") == "a%b%%c.txt"
    assert decode_associated_file("a%b%%c.txt") == "a_b%c.txt"
    assert decode_associated_file("") is None
    assert encode_associated_file(None) == ""
