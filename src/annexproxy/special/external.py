"""The ``external``-type special remote backend (placeholder until it is written)."""

from __future__ import annotations

from pathlib import Path

from annexproxy.errors import ConfigError
from annexproxy.special.backend import RemoteBackend
from annexproxy.special.remote import SpecialRemote


async def open_external(remote: SpecialRemote, *, base: Path) -> RemoteBackend:
    """Open the backend of ``remote``.

    Raises:
        ConfigError: always, for now.
    """
    raise ConfigError(f"special remote {remote.name!r}: type external is not supported yet")
