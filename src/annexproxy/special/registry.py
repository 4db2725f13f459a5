"""Which backend serves which special remote ``type``.

Backends are imported only when a remote of their type is opened (S3's client is
heavy; ssh sessions should not pay for it).
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from annexproxy.errors import ConfigError
from annexproxy.special.backend import LocalSettings, RemoteBackend
from annexproxy.special.exportactions import ExportActions
from annexproxy.special.remote import SpecialRemote


async def open_backend(
    remote: SpecialRemote, stack: AsyncExitStack, *, base: Path, local: LocalSettings | None = None
) -> RemoteBackend:
    """Open the backend for ``remote``; it is closed with ``stack``.

    Args:
        remote: the special remote's configuration.
        stack: owns the backend's resources.
        base: the gateway repository's top directory (relative paths, creds, temp files).
        local: the gateway repository's settings (fsync, annex.diskreserve); None: defaults.

    Raises:
        ConfigError: the type is not supported, its settings are incomplete, or its
            cipher cannot be read (encrypted remotes are wrapped in `EncryptedBackend`).
    """
    backend: RemoteBackend
    if remote.type == "directory":
        from annexproxy.special.directory import open_directory

        backend = await open_directory(remote, base=base, local=local)
    elif remote.type == "S3":
        from annexproxy.special.s3 import open_s3

        backend = await open_s3(remote, base=base)
    elif remote.type == "external":
        from annexproxy.special.external import open_external

        backend = await open_external(remote, base=base, local=local)
    else:
        raise ConfigError(
            f"special remote {remote.name!r} has type {remote.type!r}, which annexproxy "
            "cannot proxy (supported: directory, S3, external)"
        )
    if remote.params.get("encryption", "none") != "none":
        from annexproxy.special.encryption import EncryptedBackend, cipher_of

        cipher = cipher_of(remote)
        if cipher is not None:
            backend = EncryptedBackend(backend, cipher)
    stack.push_async_callback(backend.aclose)
    return backend


def open_export_actions(
    remote: SpecialRemote, stack: AsyncExitStack, *, base: Path
) -> ExportActions:
    """The file-name operations of an ``exporttree=yes`` remote; closed with ``stack``.

    Raises:
        ConfigError: its type cannot export through annexproxy, or it is not configured.
    """
    if remote.type == "directory":
        from annexproxy.special.directory import directory_of
        from annexproxy.special.exportactions import DirectoryExport

        return DirectoryExport(directory_of(remote, base))
    if remote.type == "S3":
        from annexproxy.special.s3 import S3Backend
        from annexproxy.special.s3config import s3_settings
        from annexproxy.special.s3export import S3Export

        backend = S3Backend(s3_settings(remote, base=base))
        stack.push_async_callback(backend.aclose)
        return S3Export(backend)
    raise ConfigError(
        f"special remote {remote.name!r} has type {remote.type!r} with exporttree=yes, "
        "which annexproxy cannot proxy (supported: directory, S3)"
    )
