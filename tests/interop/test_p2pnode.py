"""Our P2P client, as a storage, against git-annex-shell p2pstdio and annexproxy-shell.

The shared storage conformance suite runs unchanged against a repository reached through
each server, which proves the client side of the protocol against git-annex's server.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from annexproxy.storage.p2pnode import P2PNodeStorage, command_opener
from annexproxy.testing.realannex import annex_env, make_annex_repo, shell_program
from annexproxy.testing.storage_conformance import (
    PresenceLog,
    StorageConformance,
    StorageFactory,
)
from annexproxy.uuids import RepoUUID

pytestmark = pytest.mark.interop

CLIENT = "506f13e8-32ba-4e70-a3c2-46fb079139b1"


def _factory(program: str, tmp_path: Path) -> StorageFactory:
    counter = iter(range(1000))

    def make(*, presence_log: PresenceLog | None = None) -> P2PNodeStorage:
        repo = make_annex_repo(tmp_path / f"node{next(counter)}", "node", bare=True)
        opener = command_opener(
            [program, "p2pstdio", str(repo.path), CLIENT], expected_uuid=repo.uuid, env=annex_env()
        )
        return P2PNodeStorage(RepoUUID(repo.uuid), opener, presence_log=presence_log)

    return make


class TestAgainstGitAnnexShell(StorageConformance):
    retrieve_locks = False
    # git-annex stores a WORM key sent with INVALID; annexproxy refuses (never store what
    # cannot be verified and the sender doubts).
    refuses_unverifiable_invalid = False
    uploads_abort_when_busy = True

    @pytest.fixture
    def make_storage(self, tmp_path: Path) -> StorageFactory:
        return _factory(shutil.which("git-annex-shell") or "git-annex-shell", tmp_path)


class TestAgainstAnnexproxyShell(StorageConformance):
    retrieve_locks = False

    @pytest.fixture
    def make_storage(self, tmp_path: Path) -> StorageFactory:
        return _factory(shell_program(), tmp_path)
