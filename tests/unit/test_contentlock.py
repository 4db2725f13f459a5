"""holding_exclusive: an exclusive lock file held for a block, its directory created."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from annexproxy.errors import StorageError
from annexproxy.storage.contentlock import holding_exclusive, try_lock


@pytest.mark.parametrize("unlink", [False, True])
def test_holds_and_releases(tmp_path: Path, unlink: bool) -> None:
    path = tmp_path / "a" / "b" / "lck.x"

    async def go() -> None:
        async with holding_exclusive(path, unlink=unlink) as held:
            assert held.exclusive
            assert path.exists()
            assert try_lock(path, exclusive=False) is None
        assert held.released
        assert path.exists() is not unlink
        again = try_lock(path, exclusive=True)
        assert again is not None
        again.release(unlink=True)

    asyncio.run(go())


def test_directory_not_creatable(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")

    async def go() -> None:
        async with holding_exclusive(tmp_path / "file" / "lck.x"):
            pass

    with pytest.raises(StorageError, match="cannot create"):
        asyncio.run(go())
