"""The real git-annex client against `annexproxy serve` over annex+http and annex+https."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import trustme

from annexproxy.testing.httpserver import RunningServer, annexproxy_serve
from annexproxy.testing.realannex import AnnexRepo, assert_testremote_passes, run, seed_commit

pytestmark = pytest.mark.interop

FILES: dict[str, bytes] = {
    "empty": b"",
    "one byte": b"x",
    "mib plus one.bin": bytes(range(256)) * 4096 + b"!",
    "ünïcødé dir/naïve file.txt": "grüße\n".encode(),
}


def http_client(server_repo: AnnexRepo, path: Path, url: str, env: dict[str, str]) -> AnnexRepo:
    run(["git", "clone", "-q", str(server_repo.path), str(path)], path.parent)
    client = AnnexRepo(path=path, uuid="", bare=False, env=env)
    client.git("config", "remote.origin.annexurl", url)
    client.git("config", "annex.security.allowed-ip-addresses", "127.0.0.1")
    client.annex("init", "-q", "client")
    return client


@pytest.fixture
def served(
    annex_repo_factory: Callable[..., AnnexRepo],
) -> Iterator[tuple[AnnexRepo, RunningServer]]:
    server_repo = annex_repo_factory("server", bare=True)
    with annexproxy_serve(server_repo.path, "--wideopen") as server:
        yield server_repo, server


def _add_files(client: AnnexRepo) -> None:
    for name, content in FILES.items():
        target = client.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    client.annex("add", "--quiet", ".")
    client.git("commit", "-q", "-m", "files")


def _roundtrip(server_repo: AnnexRepo, client: AnnexRepo) -> None:
    _add_files(client)
    client.annex("copy", "--to", "origin", ".")
    for name in FILES:
        key = client.annex("lookupkey", name).stdout.strip()
        assert server_repo.uuid in server_repo.annex("whereis", "--key", key).stdout
    server_repo.annex("fsck", "--all", "--quiet")
    client.annex("drop", ".")  # locks the copies on origin (lockcontent + keeplocked)
    client.annex("get", "--from", "origin", ".")
    for name, content in FILES.items():
        assert (client.path / name).read_bytes() == content
    client.annex("fsck", "--from", "origin", "--quiet", ".")
    client.annex("drop", "--from", "origin", ".")
    for name in FILES:
        key = client.annex("lookupkey", name).stdout.strip()
        assert (
            server_repo.uuid not in server_repo.annex("whereis", "--key", key, check=False).stdout
        )


def test_roundtrip_over_http(served: tuple[AnnexRepo, RunningServer], tmp_path: Path) -> None:
    server_repo, server = served
    client = http_client(server_repo, tmp_path / "client", server.url, {})
    _roundtrip(server_repo, client)


def test_testremote_over_http(served: tuple[AnnexRepo, RunningServer], tmp_path: Path) -> None:
    server_repo, server = served
    client = http_client(server_repo, tmp_path / "client", server.url, {})
    seed_commit(client)
    assert_testremote_passes(client, "origin")


SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def _trusting(bundle: Path) -> tuple[str, ...]:
    """A command prefix running the client in a mount namespace that trusts ``bundle``.

    git-annex (10.20261026, PyPI build) takes its CAs from the system bundle and ignores
    SSL_CERT_FILE / SSL_CERT_DIR / SYSTEM_CERTIFICATE_PATH, so the test CA is added to a
    copy of the bundle that is bind-mounted over the real one for the client only.
    """
    script = 'mount --bind "$0" ' + str(SYSTEM_BUNDLE) + ' && exec "$@"'
    prefix = ("unshare", "--mount", "sh", "-c", script, str(bundle))
    probe = run([*prefix, "true"], bundle.parent, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a private mount namespace here: {probe.stderr.strip()}")
    return prefix


def test_roundtrip_over_https(annex_repo_factory: Callable[..., AnnexRepo], tmp_path: Path) -> None:
    if not SYSTEM_BUNDLE.exists():
        pytest.skip(f"no system CA bundle at {SYSTEM_BUNDLE}")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    bundle = tmp_path / "bundle.crt"
    bundle.write_bytes(SYSTEM_BUNDLE.read_bytes() + b"\n" + ca.cert_pem.bytes())
    prefix = _trusting(bundle)
    server_repo = annex_repo_factory("server", bare=True)
    args = ("--wideopen", "--certfile", str(certfile), "--privatekeyfile", str(keyfile))
    with annexproxy_serve(server_repo.path, *args) as server:
        assert server.url.startswith("annex+https://")
        client = http_client(server_repo, tmp_path / "client", server.url, {})
        trusting = replace(client, prefix=prefix)
        _roundtrip(server_repo, trusting)
        assert_testremote_passes(trusting, "origin", fast=True)


def _branch_log(repo: AnnexRepo, key: str) -> str:
    path = run(["git", "annex", "examinekey", "--format=${hashdirlower}${key}.log", key], repo.path)
    shown = run(["git", "show", f"git-annex:{path.stdout.strip()}"], repo.path, check=False)
    return shown.stdout


def test_location_changes_reach_the_branch_within_seconds(
    served: tuple[AnnexRepo, RunningServer], tmp_path: Path
) -> None:
    server_repo, server = served
    client = http_client(server_repo, tmp_path / "client", server.url, {})
    (client.path / "f.txt").write_text("committed promptly\n")
    client.annex("add", "--quiet", "f.txt")
    client.git("commit", "-q", "-m", "f")
    key = client.annex("lookupkey", "f.txt").stdout.strip()
    client.annex("copy", "--to", "origin", "f.txt")
    # No git-annex runs on the server: the commit must come from annexproxy serve.
    deadline = time.monotonic() + 15
    while server_repo.uuid not in _branch_log(server_repo, key):
        assert time.monotonic() < deadline, "location change not committed within 15 s"
        time.sleep(0.2)  # waiting for the server's own idle commit, not synchronising
    other = AnnexRepo(path=tmp_path / "other", uuid="", bare=False, env={})
    run(["git", "clone", "-q", str(server_repo.path), str(other.path)], tmp_path)
    assert server_repo.uuid in other.annex("whereis", "--key", key).stdout
