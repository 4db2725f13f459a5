"""Real git and git-annex clients against the git side of `annexproxy serve`.

``git clone http://HOST:PORT/<repo>`` then ``git annex get``/``copy --to origin`` with no
set-up but ``annex.security.allowed-ip-addresses``; pushes allowed or refused by the same
policy as the API; ``--directory`` naming; path tricks answered with 404.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from annexproxy.testing.httpserver import RunningServer, annexproxy_serve
from annexproxy.testing.realannex import AnnexRepo, add_file, annex_env, make_annex_repo, run

pytestmark = pytest.mark.interop

CONTENT = b"annexed content\n" * 100


def _request(
    server: RunningServer,
    method: str,
    raw_path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """Send ``raw_path`` exactly as given (http.client does not normalise it)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, raw_path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _base(server: RunningServer) -> str:
    return f"http://127.0.0.1:{server.port}"


def _clone(url: str, path: Path) -> AnnexRepo:
    run(["git", "clone", "-q", url, str(path)], path.parent)
    client = AnnexRepo(path=path, uuid="", bare=False)
    client.git("config", "annex.security.allowed-ip-addresses", "127.0.0.1")
    return client


@pytest.fixture
def server_repo(annex_repo_factory: Callable[..., AnnexRepo]) -> AnnexRepo:
    repo = annex_repo_factory("server")
    add_file(repo, "file.bin", CONTENT)
    return repo


@pytest.fixture
def wideopen(server_repo: AnnexRepo) -> Iterator[RunningServer]:
    with annexproxy_serve(server_repo.path, "--wideopen") as server:
        yield server


def test_clone_fetch_push(server_repo: AnnexRepo, wideopen: RunningServer, tmp_path: Path) -> None:
    client = _clone(f"{_base(wideopen)}/server", tmp_path / "client")
    assert client.git("rev-parse", "HEAD").stdout == server_repo.git("rev-parse", "HEAD").stdout
    add_file(server_repo, "second.bin", b"second\n")
    # Enough local commits that the "have" lines pass 1 KiB: git then gzips the request.
    for n in range(40):
        client.git("commit", "-q", "--allow-empty", "-m", f"local {n}")
    trace = tmp_path / "curl.trace"
    run(
        ["git", "fetch", "-q", "origin"], client.path, env=annex_env({"GIT_TRACE_CURL": str(trace)})
    )
    assert "Content-Encoding: gzip" in trace.read_text()
    assert (
        client.git("rev-parse", "origin/main").stdout == server_repo.git("rev-parse", "HEAD").stdout
    )
    # More than http.postBuffer (1 MiB) of incompressible data: a chunked request body.
    (client.path / "big").write_bytes(os.urandom(2 << 20))
    client.git("add", "big")
    client.git("commit", "-q", "-m", "big")
    client.git("push", "-q", "origin", "HEAD:refs/heads/topic")
    assert server_repo.git("rev-parse", "topic").stdout == client.git("rev-parse", "HEAD").stdout
    # The same repository under its aliases.
    for alias in ("server.git", "server/.git", ""):
        status, body = _request(wideopen, "GET", f"/{alias}/info/refs?service=git-upload-pack")
        assert status == 200, alias
        assert b"refs/heads/topic" in body


def test_gzip_request_body(server_repo: AnnexRepo, wideopen: RunningServer) -> None:
    """git gzips larger upload-pack requests; aiohttp decodes them before http-backend."""
    head = server_repo.git("rev-parse", "HEAD").stdout.strip()
    want = f"want {head} ofs-delta\n".encode()
    done = b"done\n"
    payload = b"%04x" % (len(want) + 4) + want + b"0000" + b"%04x" % (len(done) + 4) + done
    status, body = _request(
        wideopen,
        "POST",
        "/server/git-upload-pack",
        body=gzip.compress(payload),
        headers={
            "Content-Type": "application/x-git-upload-pack-request",
            "Content-Encoding": "gzip",
        },
    )
    assert status == 200
    assert b"PACK" in body


def test_push_refused_when_readonly(
    server_repo: AnnexRepo, tmp_path: Path, annex_repo_factory: Callable[..., AnnexRepo]
) -> None:
    with annexproxy_serve(server_repo.path, "--unauth-readonly") as server:
        client = _clone(f"{_base(server)}/server", tmp_path / "client")
        client.git("commit", "-q", "--allow-empty", "-m", "refused")
        result = client.git("push", "origin", "HEAD:refs/heads/topic", check=False)
        assert result.returncode != 0
        assert "403" in result.stderr
        push_refs = "/server/info/refs?service=git-receive-pack"
        assert _request(server, "GET", push_refs)[0] == 403
        assert _request(server, "POST", "/server/git-receive-pack", body=b"0000")[0] == 403
    assert server_repo.git("rev-parse", "--verify", "-q", "topic", check=False).returncode != 0


def test_push_with_credentials_after_401(server_repo: AnnexRepo, tmp_path: Path) -> None:
    """An anonymous push meets 401 with the challenge; git retries with the user's password."""
    env = {"GIT_ANNEX_P2PHTTP_PASSWORD_alice": "sesame"}
    args = ("--authenv-http", "--unauth-readonly")
    with annexproxy_serve(server_repo.path, *args, env=env) as server:
        client = _clone(f"{_base(server)}/server", tmp_path / "client")
        client.git("commit", "-q", "--allow-empty", "-m", "by alice")
        status, _ = _request(server, "GET", "/server/info/refs?service=git-receive-pack")
        assert status == 401
        url = f"http://alice:sesame@127.0.0.1:{server.port}/server"
        client.git("push", "-q", url, "HEAD:refs/heads/topic")
    assert server_repo.git("rev-parse", "topic").stdout == client.git("rev-parse", "HEAD").stdout


def test_clone_then_annex_get_and_copy(
    server_repo: AnnexRepo, wideopen: RunningServer, tmp_path: Path
) -> None:
    client = _clone(f"{_base(wideopen)}/server", tmp_path / "client")
    client.annex("init", "-q", "client")
    # Discovery from <url>/config (wire.md 6.1), with nothing configured by hand.
    annexurl = client.git("config", "remote.origin.annexurl").stdout.strip()
    assert annexurl == f"annex+http://127.0.0.1:{wideopen.port}/git-annex/"
    assert client.git("config", "remote.origin.annex-uuid").stdout.strip() == server_repo.uuid
    client.annex("get", "file.bin")
    assert (client.path / "file.bin").read_bytes() == CONTENT
    key = add_file(client, "new.bin", b"from the client\n")
    client.annex("copy", "--to", "origin", "new.bin")
    assert server_repo.uuid in client.annex("whereis", "new.bin").stdout
    location = server_repo.annex("contentlocation", key).stdout.strip()
    assert (server_repo.path / location).read_bytes() == b"from the client\n"
    # sync pushes synced/* through git-receive-pack; the server's hook merges them.
    client.annex("sync", "--no-content", "--quiet")
    assert (
        server_repo.git("rev-parse", "synced/main").stdout == client.git("rev-parse", "HEAD").stdout
    )


def test_annex_url_option(server_repo: AnnexRepo) -> None:
    url = "annex+https://gateway.example/prefix/"
    with annexproxy_serve(server_repo.path, "--wideopen", "--annex-url", url) as server:
        status, body = _request(server, "GET", "/server/config")
    assert status == 200
    assert body.decode() == f"[annex]\n\tuuid = {server_repo.uuid}\n\turl = {url}\n"


@pytest.fixture
def three(annex_repo_factory: Callable[..., AnnexRepo], tmp_path: Path) -> dict[str, AnnexRepo]:
    repos = {
        "a": annex_repo_factory("top/a"),
        "b.git": annex_repo_factory("top/b.git", bare=True),
        "nested/deep/c": annex_repo_factory("top/nested/deep/c"),
    }
    add_file(repos["nested/deep/c"], "c.txt", b"in c\n")
    outside = annex_repo_factory("outside")
    (tmp_path / "top" / "link").symlink_to(outside.path)
    return repos


def test_directory_serves_each_repository(three: dict[str, AnnexRepo], tmp_path: Path) -> None:
    with annexproxy_serve(tmp_path, "--directory", str(tmp_path / "top"), "--wideopen") as server:
        for name, repo in three.items():
            status, body = _request(server, "GET", f"/{name}/config")
            assert status == 200, name
            assert f"uuid = {repo.uuid}\n" in body.decode()
            query = f"key=SHA256E-s1--00.txt&clientuuid={repo.uuid}"
            status, body = _request(
                server, "POST", f"/git-annex/{repo.uuid}/v4/checkpresent?{query}"
            )
            assert status == 200, name
            assert json.loads(body) == {"present": False}
        run(["git", "clone", "-q", f"{_base(server)}/a", str(tmp_path / "ca")], tmp_path)
        run(["git", "clone", "-q", f"{_base(server)}/b", str(tmp_path / "cb")], tmp_path)
        client = _clone(f"{_base(server)}/nested/deep/c", tmp_path / "cc")
        client.annex("init", "-q", "client")
        assert client.git("config", "remote.origin.annex-uuid").stdout.strip() == (
            three["nested/deep/c"].uuid
        )
        client.annex("get", "c.txt")
        assert (client.path / "c.txt").read_bytes() == b"in c\n"
        assert _request(server, "GET", "/link/config")[0] == 404


@pytest.mark.parametrize(
    "raw_path",
    [
        "/../a/info/refs",
        "/a/../b.git/info/refs",
        "/%2e%2e/top/a/info/refs",
        "/nested%2Fdeep%2Fc/info/refs",
        "/nested/deep%2Fc/config",
        "/nested%5cdeep%5cc/config",
        "/a/objects/../config",
        "/a/%2e/config",
        "/%2Fetc%2Fpasswd",
        "//etc/passwd",
        "/etc/passwd",
        "/link/config",
        "/link/info/refs?service=git-upload-pack",
        "/outside/config",
        "/a/description",
        "/a/hooks/post-update",
        "/a/.git/hooks/post-update",
        "/a/objects/info/../../config",
        "/a/info",
        "/a",
        "/",
        "/nested/config",
        "/a/info/refs%00",
        "/a%00/info/refs",
    ],
)
def test_path_tricks_are_404(raw_path: str, directory_server: RunningServer) -> None:
    assert _request(directory_server, "GET", raw_path)[0] == 404


@pytest.mark.parametrize(
    ("method", "raw_path"),
    [
        ("GET", "/a/info/refs?service=git-upload-pack"),
        ("GET", "/a.git/config"),
        ("GET", "/a/.git/HEAD"),
        ("HEAD", "/b/HEAD"),
        ("GET", "/b.git/info/refs"),
        ("GET", "/nested/deep/c.git/info/refs?service=git-upload-pack"),
        ("GET", "/nested//deep/c/config"),
        ("GET", "/nested/deep/%63/config"),
    ],
)
def test_real_names_and_aliases_are_served(
    method: str, raw_path: str, directory_server: RunningServer
) -> None:
    """The counterpart of the path tricks: the same server does answer these."""
    assert _request(directory_server, method, raw_path)[0] == 200


@pytest.fixture(scope="module")
def directory_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    top = tmp_path_factory.mktemp("tricks")
    make_annex_repo(top / "top" / "a", "a")
    make_annex_repo(top / "top" / "b.git", "b", bare=True)
    make_annex_repo(top / "top" / "nested" / "deep" / "c", "c")
    outside = make_annex_repo(top / "outside", "outside")
    (top / "top" / "link").symlink_to(outside.path)
    with annexproxy_serve(top, "--directory", str(top / "top"), "--wideopen") as server:
        yield server
