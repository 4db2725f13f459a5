"""`annexproxy serve --socket PATH` answers the API on a unix socket (for a reverse proxy)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from annexproxy.testing.realannex import AnnexRepo, annex_env, shell_program

pytestmark = pytest.mark.interop


def test_serves_on_a_unix_socket(
    annex_repo_factory: Callable[..., AnnexRepo], tmp_path: Path
) -> None:
    repo = annex_repo_factory("server", bare=True)
    socket = tmp_path / "api.sock"
    proc = subprocess.Popen(
        [shell_program("annexproxy"), "serve", "--wideopen", "--socket", str(socket)],
        cwd=repo.path,
        env=annex_env(),
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline().decode()  # the "serving ..." line: it is listening
        assert "serving 1 repository" in line, line

        async def ask() -> object:
            connector = aiohttp.UnixConnector(path=str(socket))
            async with aiohttp.ClientSession(connector=connector) as session:
                url = f"http://localhost/git-annex/{repo.uuid}/v4/checkpresent"
                query = {"key": "SHA256E-s1--00", "clientuuid": "c"}
                async with session.post(url, params=query) as response:
                    assert response.status == 200
                    return await response.json()

        assert asyncio.run(ask()) == {"present": False}
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        if proc.stderr is not None:
            proc.stderr.close()
