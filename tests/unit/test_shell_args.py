"""annexproxy-shell's reading of what ssh hands it (wire.md 3.1, 3.3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from annexproxy.cli.shell import (
    access_mode,
    command_words,
    parse_request,
    resolve_directory,
)
from annexproxy.errors import ConfigError
from annexproxy.server.p2p_session import AccessMode

CAPTURED = (
    "git-annex-shell 'p2pstdio' '/tmp/GATEWAY' 'f8e69867-4509-4b89-b645-9e71354b9798' "
    "--uuid acf21f88-1aeb-819d-9844-79a9a28accec"
)


def test_dash_c_command_line_is_resplit() -> None:
    words = command_words(["-c", CAPTURED], {})
    request = parse_request(words)
    assert request.command == "p2pstdio"
    assert request.params == ("/tmp/GATEWAY", "f8e69867-4509-4b89-b645-9e71354b9798")
    assert request.expected_uuid == "acf21f88-1aeb-819d-9844-79a9a28accec"


def test_forced_command_reads_ssh_original_command() -> None:
    words = command_words([], {"SSH_ORIGINAL_COMMAND": CAPTURED})
    assert parse_request(words).command == "p2pstdio"


def test_plain_argv_with_debug_and_fields() -> None:
    request = parse_request(
        ["p2pstdio", "/r", "--debug", "cu", "--", "remoteuuid=x", "autoinit=1", "--"]
    )
    assert request.params == ("/r", "cu")
    assert request.fields == {"remoteuuid": "x", "autoinit": "1"}


def test_no_command_is_an_error() -> None:
    with pytest.raises(ConfigError, match="bad parameters"):
        command_words([], {})


def test_directories() -> None:
    env = {"HOME": "/home/u"}
    assert resolve_directory("/~/repo", env) == Path("/home/u/repo")
    assert resolve_directory("repo", env) == Path("/home/u/repo")
    assert resolve_directory("/srv/repo", env) == Path("/srv/repo")


@pytest.mark.parametrize(
    ("env", "mode"),
    [
        ({}, AccessMode.READ_WRITE),
        ({"GIT_ANNEX_SHELL_READONLY": ""}, AccessMode.READ_WRITE),  # empty counts as unset
        ({"GIT_ANNEX_SHELL_APPENDONLY": "1"}, AccessMode.APPEND_ONLY),
        (
            {"GIT_ANNEX_SHELL_APPENDONLY": "1", "GIT_ANNEX_SHELL_READONLY": "1"},
            AccessMode.READ_ONLY,
        ),
    ],
)
def test_access_mode(env: dict[str, str], mode: AccessMode) -> None:
    assert access_mode(env) is mode
