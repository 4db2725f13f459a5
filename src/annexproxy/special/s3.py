"""The ``s3``-type special remote backend (placeholder until it is written)."""

from __future__ import annotations

from pathlib import Path

from annexproxy.errors import ConfigError
from annexproxy.special.backend import RemoteBackend
from annexproxy.special.remote import SpecialRemote


async def open_s3(remote: SpecialRemote, *, base: Path) -> RemoteBackend:
    """Open the backend of ``remote``.

    Raises:
        ConfigError: always, for now.
    """
    raise ConfigError(f"special remote {remote.name!r}: type s3 is not supported yet")
