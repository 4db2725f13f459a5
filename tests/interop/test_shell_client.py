"""The real git-annex client against annexproxy-shell over the local ssh stand-in.

Issue 2's acceptance: copy --to, get --from, local drop (which locks the remote copy),
drop --from, fsck --from, whereis and fsck inside the served repository, and
`git annex testremote`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from annexproxy.testing.realannex import (
    AnnexRepo,
    assert_testremote_passes,
    make_ssh_client,
    seed_commit,
)

pytestmark = pytest.mark.interop

FILES: dict[str, bytes] = {
    "empty": b"",
    "one byte": b"x",
    "mib plus one.bin": bytes(range(256)) * 4096 + b"!",
    "few mb.bin": b"annexproxy " * 300_000,
    "ünïcødé dir/naïve file.txt": "grüße\n".encode(),
}


def _add_files(client: AnnexRepo) -> dict[str, str]:
    keys = {}
    for name, content in FILES.items():
        target = client.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    client.annex("add", "--quiet", ".")
    client.git("commit", "-q", "-m", "files")
    for name in FILES:
        keys[name] = client.annex("lookupkey", name).stdout.strip()
    return keys


@pytest.fixture(params=[True, False], ids=["bare", "nonbare"])
def served(
    request: pytest.FixtureRequest,
    annex_repo_factory: Callable[..., AnnexRepo],
    tmp_path: Path,
) -> tuple[AnnexRepo, AnnexRepo]:
    server = annex_repo_factory("server", bare=request.param)
    client = make_ssh_client(server, tmp_path / "client", "client")
    return server, client


def test_copy_get_drop_fsck_roundtrip(served: tuple[AnnexRepo, AnnexRepo]) -> None:
    server, client = served
    keys = _add_files(client)

    client.annex("copy", "--to", "origin", ".")
    for name, key in keys.items():
        where = server.annex("whereis", "--key", key).stdout
        assert server.uuid in where, (name, where)
    server.annex("fsck", "--all", "--quiet")

    # A local drop must lock the copy on origin (LOCKCONTENT) to prove it exists.
    client.annex("drop", ".")
    for name in FILES:
        assert not (client.path / name).exists()
    client.annex("get", "--from", "origin", ".")
    for name, content in FILES.items():
        assert (client.path / name).read_bytes() == content

    client.annex("fsck", "--from", "origin", "--quiet", ".")

    client.annex("drop", "--from", "origin", ".")
    for key in keys.values():
        where = server.annex("whereis", "--key", key, check=False).stdout
        assert server.uuid not in where
        assert client.annex("checkpresentkey", key, "origin", check=False).returncode != 0


def test_drop_refused_while_remote_is_the_only_copy(served: tuple[AnnexRepo, AnnexRepo]) -> None:
    _server, client = served
    _add_files(client)
    client.annex("move", "--to", "origin", "one byte")
    # numcopies 1 and origin holds the only copy: dropping from origin must be refused.
    result = client.annex("drop", "--from", "origin", "one byte", check=False)
    assert result.returncode != 0
    client.annex("get", "one byte")
    assert (client.path / "one byte").read_bytes() == b"x"


def test_testremote(served: tuple[AnnexRepo, AnnexRepo]) -> None:
    _server, client = served
    seed_commit(client)
    assert_testremote_passes(client, "origin")
