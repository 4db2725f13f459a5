"""updateproxy and updatecluster with special remotes: the same output and logs as git-annex.

Two copies of one gateway (same UUIDs: a proxied directory remote, a directory remote
that is a cluster node, an unproxied one and an exporttree remote git-annex refuses to
proxy); git-annex runs the commands in one, annexproxy in the other, and what they print
and record in proxy.log and cluster.log must agree.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from annexproxy.testing.realannex import AnnexRepo, annex_env, make_annex_repo, shell_program

pytestmark = [pytest.mark.interop, pytest.mark.slow]


def _annexproxy(repo: AnnexRepo, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [shell_program("annexproxy"), *args],
        cwd=repo.path,
        env=annex_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _log(repo: AnnexRepo, name: str) -> list[str]:
    """The log's lines without their timestamps, sorted."""
    shown = repo.git("cat-file", "-p", f"git-annex:{name}", check=False).stdout
    return sorted(line.split(" ", 1)[1] for line in shown.splitlines())


def test_special_remotes_recorded_as_git_annex_records_them(tmp_path: Path) -> None:
    ours = make_annex_repo(tmp_path / "ours", "gateway", bare=True)
    for name, extra in (
        ("proxied", ["encryption=none"]),
        ("node", ["encryption=none", "chunk=1MiB"]),
        ("plain", ["encryption=none"]),
        ("export", ["encryption=none", "exporttree=yes"]),
    ):
        (tmp_path / name).mkdir()
        ours.annex(
            "initremote", "-q", name, "type=directory", f"directory={tmp_path / name}", *extra
        )
    ours.annex("initcluster", "-q", "c")
    ours.git("config", "remote.proxied.annex-proxy", "true")
    ours.git("config", "remote.export.annex-proxy", "true")
    ours.git("config", "remote.node.annex-cluster-node", "c")
    shutil.copytree(ours.path, tmp_path / "theirs", symlinks=True)
    theirs = AnnexRepo(path=tmp_path / "theirs", uuid=ours.uuid, bare=True)

    for command in ("updatecluster", "updateproxy"):
        expected = theirs.annex(command, check=False)
        got = _annexproxy(ours, command)
        assert got.returncode == expected.returncode == 0, got.stderr
        assert got.stdout.splitlines() == expected.stdout.splitlines(), command
        # Both warn that the exporttree remote cannot be proxied.
        assert "Cannot proxy to this remote" in expected.stderr
        assert "Cannot proxy to this remote" in got.stderr
    proxy_log = _log(ours, "proxy.log")
    assert proxy_log == _log(theirs, "proxy.log")
    uuids = {
        n: ours.git("config", f"remote.{n}.annex-uuid").stdout.strip() for n in ("proxied", "node")
    }
    assert all(uuid in proxy_log[0] for uuid in uuids.values())
    assert _log(ours, "cluster.log") == _log(theirs, "cluster.log")
    assert uuids["node"] in _log(ours, "cluster.log")[0]
