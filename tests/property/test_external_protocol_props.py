"""The external special remote protocol core: golden lines from real git-annex, fuzzing.

The golden lines are what git-annex 10.20261026 said to a ``git-annex-remote-*`` program
that logged every line, during ``git annex initremote ... directory=/tmp/sx-exp/store
foo=bar`` then ``git annex copy --to ext`` of a 6-byte file (program cwd: the repository
top; GIT_DIR=.git and GIT_WORK_TREE=. in its environment).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from annexproxy.errors import LocalProtocolError, RemoteProtocolError
from annexproxy.keys import Key
from annexproxy.special import external_protocol as p

KEY = Key.parse("SHA256E-s6--5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03.txt")
UUID = "4eb92f29-6829-4ca4-ae60-3594f10de910"
CONFIG = {
    "directory": "/tmp/sx-exp/store",
    "encryption": "none",
    "externaltype": "logdir",
    "foo": "bar",
    "name": "ext",
    "type": "external",
}

# (line from the program, what git-annex answered) during PREPARE, from the trace.
GOLDEN_PREPARE = [
    (b"GETCONFIG directory\n", b"VALUE /tmp/sx-exp/store\n"),
    (b"GETCONFIG foo\n", b"VALUE bar\n"),
    (b"GETCONFIG name\n", b"VALUE ext\n"),
    (b"GETCONFIG type\n", b"VALUE external\n"),
    (b"GETCONFIG externaltype\n", b"VALUE logdir\n"),
    (b"GETCONFIG encryption\n", b"VALUE none\n"),
    (b"GETUUID\n", f"VALUE {UUID}\n".encode()),
    (b"GETGITDIR\n", b"VALUE .git\n"),
    (b"GETGITREMOTENAME\n", b"VALUE ext\n"),
    (b"GETCREDS mycreds\n", b"CREDS  \n"),
    (b"GETWANTED\n", b"VALUE \n"),
]


def context(**changes: object) -> p.ExternalContext:
    fields: dict[str, object] = {
        "uuid": UUID,
        "gitdir": ".git",
        "remote_name": "ext",
        "config": CONFIG,
        "wanted": "",
    }
    fields.update(changes)
    return p.ExternalContext(**fields)  # type: ignore[arg-type]


def started(ctx: p.ExternalContext | None = None) -> p.ExternalConversation:
    conv = p.ExternalConversation(ctx or context())
    out, events = conv.receive_line(b"VERSION 2\n")
    assert out == b"EXTENSIONS INFO GETGITREMOTENAME\n"
    assert events == []
    out, events = conv.receive_line(b"EXTENSIONS INFO\n")
    assert (out, events, conv.state) == (b"", [], p.State.IDLE)
    assert conv.extensions == ("INFO",)
    return conv


def test_golden_prepare_answers_as_git_annex_did() -> None:
    conv = started()
    assert conv.send(p.Prepare()) == b"PREPARE\n"
    for line, answer in GOLDEN_PREPARE:
        out, events = conv.receive_line(line)
        assert out == answer, line
        assert events == []
    out, events = conv.receive_line(b"PREPARE-SUCCESS\n")
    assert out == b""
    assert events == [p.Reply(response=p.PrepareSuccess())]
    assert conv.state is p.State.IDLE


def test_golden_store_and_checkpresent() -> None:
    conv = started()
    path = f".git/annex/objects/mK/4w/{KEY}/{KEY}"
    assert conv.send(p.Transfer(direction=p.Direction.STORE, key=KEY, file=path)) == (
        f"TRANSFER STORE {KEY} {path}\n".encode()
    )
    assert conv.receive_line(f"DIRHASH-LOWER {KEY}\n".encode()) == (b"VALUE d91/b11/\n", [])
    # The mixed-case hash is the object directory git-annex used for the same key.
    assert conv.receive_line(f"DIRHASH {KEY}\n".encode()) == (b"VALUE mK/4w/\n", [])
    assert conv.receive_line(b"PROGRESS 6\n") == (b"", [p.Progress(done=6)])
    _, events = conv.receive_line(f"TRANSFER-SUCCESS STORE {KEY}\n".encode())
    assert events == [p.Reply(response=p.TransferSuccess(direction=p.Direction.STORE, key=KEY))]
    assert conv.send(p.CheckPresent(key=KEY)) == f"CHECKPRESENT {KEY}\n".encode()
    _, events = conv.receive_line(f"CHECKPRESENT-FAILURE {KEY}\r\n".encode())
    assert events == [p.Reply(response=p.CheckPresentFailure(key=KEY))]


def test_file_names_and_messages_with_spaces() -> None:
    conv = started()
    line = conv.send(p.Transfer(direction=p.Direction.RETRIEVE, key=KEY, file="/tmp/a b/c d"))
    assert line == f"TRANSFER RETRIEVE {KEY} /tmp/a b/c d\n".encode()
    _, events = conv.receive_line(f"TRANSFER-FAILURE RETRIEVE {KEY} disk  full, sorry\n".encode())
    assert events == [
        p.Reply(
            response=p.TransferFailure(
                direction=p.Direction.RETRIEVE, key=KEY, error="disk  full, sorry"
            )
        )
    ]


def test_setconfig_lasts_for_the_conversation() -> None:
    conv = started()
    conv.send(p.Prepare())
    assert conv.receive_line(b"SETCONFIG foo new value\n") == (b"", [])
    assert conv.receive_line(b"GETCONFIG foo\n") == (b"VALUE new value\n", [])
    assert conv.receive_line(b"GETCONFIG unset\n") == (b"VALUE \n", [])


def test_creds_come_from_the_lookup() -> None:
    conv = started(context(creds=lambda s: ("me", "pass word") if s == "c" else None))
    conv.send(p.Prepare())
    assert conv.receive_line(b"GETCREDS c\n") == (b"CREDS me pass word\n", [])
    assert conv.receive_line(b"GETCREDS other\n") == (b"CREDS  \n", [])


def test_branch_requests_are_refused_or_noted() -> None:
    conv = started(context(wanted=None))
    conv.send(p.CheckPresent(key=KEY))
    out, events = conv.receive_line(f"GETSTATE {KEY}\n".encode())
    assert out == b"ERROR annexproxy cannot answer GETSTATE\n"
    assert len(events) == 1
    assert isinstance(events[0], p.Note)
    out, events = conv.receive_line(f"SETURLPRESENT {KEY} http://x/y\n".encode())
    assert out == b""
    assert len(events) == 1
    assert conv.receive_line(b"GETWANTED\n")[0] == b"ERROR annexproxy cannot answer GETWANTED\n"
    assert conv.receive_line(b"DEBUG hello there\n") == (
        b"",
        [p.Note(text="DEBUG: hello there")],
    )
    assert conv.receive_line(b"VERSION 2\n")[0] == b"ERROR too late to send VERSION\n"


@pytest.mark.parametrize(
    ("lines", "request_"),
    [
        ([b"VERSION 3\n"], None),
        ([b"PREPARE-SUCCESS\n"], None),
        ([b"VERSION 2\n", b"EXTENSIONS ASYNC\n"], None),
        ([b"VERSION 2\n", b"PREPARE-SUCCESS\n"], None),
        ([b"VERSION 1\n", b"UNSUPPORTED-REQUEST\n", b"PREPARE-SUCCESS\n"], None),
        ([b"VERSION 2\n", b"EXTENSIONS\n", f"REMOVE-SUCCESS {KEY}\n".encode()], "prepare"),
        ([b"VERSION 2\n", b"EXTENSIONS\n", b"UNSUPPORTED-REQUEST\n"], "prepare"),
        ([b"VERSION 2\n", b"EXTENSIONS\n", b"ERROR it broke\n"], "prepare"),
        ([b"VERSION 2\n", b"EXTENSIONS\n", b"CHECKPRESENT-SUCCESS SHA1--x\n"], "check"),
    ],
)
def test_out_of_place_lines_close_the_conversation(
    lines: list[bytes], request_: str | None
) -> None:
    conv = p.ExternalConversation(context())

    def feed() -> None:
        for line in lines:
            if request_ and conv.state is p.State.IDLE:
                conv.send(p.Prepare() if request_ == "prepare" else p.CheckPresent(key=KEY))
            conv.receive_line(line)

    with pytest.raises(RemoteProtocolError):
        feed()
    assert conv.state is p.State.CLOSED
    with pytest.raises(LocalProtocolError):
        conv.send(p.Prepare())


def test_one_request_at_a_time() -> None:
    conv = started()
    conv.send(p.GetOrdered())
    with pytest.raises(LocalProtocolError):
        conv.send(p.Prepare())
    assert conv.receive_line(b"ORDERED\n")[1] == [p.Reply(response=p.Ordered())]


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"NOPE\n",
        b"PROGRESS -1\n",
        b"PROGRESS 0x10\n",
        b"PROGRESS \xd9\xa3\n",
        b"VERSION\n",
        b"PREPARE-SUCCESS now\n",
        b"TRANSFER-SUCCESS SEND SHA1--x\n",
        b"TRANSFER-SUCCESS STORE\n",
        b"CHECKPRESENT-SUCCESS not-a-key\n",
        b"CHECKPRESENT-SUCCESS SHA1--a/../b\n",
        b"REMOVE-FAILURE SHA1--x\n",
        b"A\nB\n",
        b"DEBUG " + b"x" * p.MAX_LINE_BYTES + b"\n",
    ],
)
def test_malformed_lines(line: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        p.parse_line(line)


def test_newline_in_a_parameter_is_refused() -> None:
    with pytest.raises(LocalProtocolError):
        p.format_message(p.Transfer(direction=p.Direction.STORE, key=KEY, file="a\nb"))
    with pytest.raises(LocalProtocolError):
        p.format_message(p.Creds(user="a b", password="c"))


@given(st.binary(max_size=200))
def test_any_bytes_parse_or_raise_protocol_error(data: bytes) -> None:
    try:
        message = p.parse_line(data)
    except RemoteProtocolError:
        return
    assert message is not None


@given(st.binary(max_size=200))
def test_conversation_never_raises_anything_else(data: bytes) -> None:
    conv = started()
    conv.send(p.Transfer(direction=p.Direction.STORE, key=KEY, file="f"))
    try:
        for line in data.split(b"\n"):
            out, _ = conv.receive_line(line + b"\n")
            assert out == b"" or out.endswith(b"\n")
    except RemoteProtocolError:
        assert conv.state is p.State.CLOSED


_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\n\r"), max_size=40)
_KEYS = st.builds(
    lambda size, digest, ext: Key.parse(f"SHA256E-s{size}--{digest}{ext}"),
    st.integers(0, 10**12),
    st.text("0123456789abcdef", min_size=64, max_size=64),
    st.sampled_from(["", ".txt", ".tar.gz"]),
)


@given(_KEYS, _TEXT)
def test_transfer_line_splits_back_as_git_annex_parses_it(key: Key, file: str) -> None:
    line = p.format_message(p.Transfer(direction=p.Direction.STORE, key=key, file=file))
    text = line.decode("utf-8").removesuffix("\n")
    command, direction, serialised, rest = text.split(" ", 3)
    assert (command, direction, serialised, rest) == ("TRANSFER", "STORE", str(key), file)


@given(_KEYS, _TEXT)
def test_failure_messages_round_trip(key: Key, error: str) -> None:
    error = error.lstrip()  # leading whitespace is a separator, as in git-annex
    line = f"REMOVE-FAILURE {key} {error}\n".encode()
    assert p.parse_line(line) == p.RemoveFailure(key=key, error=error)


def test_the_protocol_module_does_no_io() -> None:
    tree = ast.parse(Path(p.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    io = {"asyncio", "os", "subprocess", "socket", "shutil", "time", "random", "pathlib"}
    assert imported & io == set()
