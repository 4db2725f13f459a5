"""An export remote's keys through `SpecialRemoteStorage` over `ExportTreeBackend`.

A directory stands for the remote and a dict for the current export. Keys of the export
are written to each of their names, others to the annexobjects area; presence and reads
find either; a removal is refused for keys of the export (git-annex's message) and
deletes only the annexobjects copy otherwise; unverified content is never stored; export
locations cannot leave the remote's directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from annexproxy.errors import StorageError, VerificationFailed
from annexproxy.keys import Key
from annexproxy.special.exportactions import DirectoryExport
from annexproxy.special.exportbackend import IN_EXPORT, ExportTreeBackend
from annexproxy.special.exporttree import annexobject_location
from annexproxy.special.storage import SpecialRemoteStorage
from annexproxy.testing.storage_conformance import content, key_of, read_all, run, store
from annexproxy.uuids import RepoUUID

UUID = RepoUUID("1c4306b6-ab79-4729-8f33-ef052968cd61")


def _storage(top: Path, export: dict[Key, list[str]]) -> SpecialRemoteStorage:
    async def locations(key: Key) -> list[str]:
        return list(export.get(key, []))

    return SpecialRemoteStorage(UUID, ExportTreeBackend(DirectoryExport(top), locations))


def test_keys_go_to_their_names_or_the_object_area(tmp_path: Path) -> None:
    inside, outside = content(3000, 1), content(2000, 2)
    export = {key_of(inside): ["a.dat", "sub/dir/copy.dat"]}
    storage = _storage(tmp_path, export)

    async def go() -> None:
        await store(storage, inside)
        await store(storage, outside)
        assert (tmp_path / "a.dat").read_bytes() == inside
        assert (tmp_path / "sub" / "dir" / "copy.dat").read_bytes() == inside
        objects = tmp_path / annexobject_location(key_of(outside))
        assert objects.read_bytes() == outside
        assert not (tmp_path / annexobject_location(key_of(inside))).exists()
        for data in (inside, outside):
            assert await storage.checkpresent(key_of(data))
            assert await read_all(storage, key_of(data), 100) == data[100:]
        # Only one of its names left: still present, still readable.
        (tmp_path / "a.dat").unlink()
        assert await read_all(storage, key_of(inside)) == inside
        with pytest.raises(StorageError, match=IN_EXPORT[:30]):
            await storage.remove(key_of(inside))
        await storage.remove(key_of(outside))
        assert not await storage.checkpresent(key_of(outside))

    run(go())
    assert list(tmp_path.iterdir()) == [tmp_path / "sub"]  # .git/... pruned


def test_unverified_content_is_not_stored(tmp_path: Path) -> None:
    data = content(1000, 3)
    key = key_of(data)
    storage = _storage(tmp_path, {key: ["f"]})

    async def go() -> None:
        with pytest.raises(VerificationFailed):
            await store(storage, data[:-1] + b"!", key)
        assert not await storage.checkpresent(key)

    run(go())
    assert sorted(p.name for p in tmp_path.rglob("*")) == []


@pytest.mark.parametrize("location", ["../escape", "/etc/passwd", "a/../../b", ""])
def test_locations_stay_below_the_top(tmp_path: Path, location: str) -> None:
    with pytest.raises(StorageError, match="refusing export location"):
        DirectoryExport(tmp_path / "top").path_of(location)


def test_rename_prunes_emptied_directories(tmp_path: Path) -> None:
    actions = DirectoryExport(tmp_path)

    async def go() -> None:
        async with actions.store("x/y/z") as session:
            await session.write(b"data")
            await session.commit()
        await actions.rename("x/y/z", "top")
        with pytest.raises(StorageError):
            await actions.rename("missing", "elsewhere")

    run(go())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["top"]
