"""Exported trees: keys of tree entries, object locations, and export plans.

The property runs a plan against a remote simulated as a dict (file name -> key) the way
the exporter does, and checks git-annex's promise: afterwards every file of the new tree
holds its key, nothing else but the annexobjects area remains, and no key that was on
the remote is lost (annexobjects=yes keeps disposed keys).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from annexproxy.keys import Key
from annexproxy.special.exporttree import (
    MODE_SUBMODULE,
    MODE_SYMLINK,
    TEMP_PREFIX,
    ExportTree,
    Move,
    Removal,
    TreeItem,
    annexobject_location,
    export_key,
    git_sha_key,
    is_git_sha_key,
    key_from_pointer,
    plan_export,
    temp_location,
)

KEY = Key.parse("SHA256E-s11--7ebd9253943ba3a0e5a56cea696b802091218b49747fd5e9fea9604126eef25f.dat")
SHA = "587be6b4c3f93f93c489c0111bba5596147a26cb"


def test_annexobject_location_as_in_example_10() -> None:
    kf = str(KEY)
    assert annexobject_location(KEY) == f".git/annex/objects/ee9/30f/{kf}/{kf}"
    assert temp_location(KEY) == ".git-annex-tmp-content-" + kf


@pytest.mark.parametrize(
    ("mode", "content", "expected"),
    [
        (MODE_SYMLINK, f"../.git/annex/objects/Xx/Yy/{KEY}/{KEY}".encode(), KEY),
        (MODE_SYMLINK, b"elsewhere/file", None),  # a plain symlink is not exported
        (0o100644, f"/annex/objects/{KEY}\n".encode(), KEY),  # an unlocked file
        (0o100644, b"x\n", git_sha_key(SHA)),  # a file in git
        (0o100755, None, git_sha_key(SHA)),  # a large file in git
        (MODE_SUBMODULE, None, None),
    ],
)
def test_export_key(mode: int, content: bytes | None, expected: Key | None) -> None:
    assert export_key(TreeItem(path="f", mode=mode, sha=SHA), content) == expected


def test_pointer_files_are_one_line() -> None:
    assert key_from_pointer(f"/annex/objects/{KEY}\n\n".encode()) == KEY
    assert key_from_pointer(f"/annex/objects/{KEY}\nmore\n".encode()) is None
    assert key_from_pointer(f"annex/objects/{KEY}\n".encode()) is None
    assert is_git_sha_key(git_sha_key(SHA))
    assert not is_git_sha_key(KEY)


def test_rename_goes_through_a_temporary_name() -> None:
    plan = plan_export([{"a": KEY}], {"b": KEY}, annexobjects=True)
    assert plan.to_temp == (Move(key=KEY, source="a", dest=temp_location(KEY)),)
    assert plan.from_temp == (Move(key=KEY, source=temp_location(KEY), dest="b"),)
    assert plan.disposals == ()
    assert plan.fill == (("b", KEY),)


def test_disposal_keeps_annexed_keys_only() -> None:
    git = git_sha_key(SHA)
    plan = plan_export([{"a": KEY, "g": git}], {}, annexobjects=True)
    assert set(plan.disposals) == {
        Move(key=KEY, source="a", dest=annexobject_location(KEY)),
        Removal(path="g", keys=(git,)),
    }
    plan = plan_export([{"a": KEY}], {}, annexobjects=False)
    assert plan.disposals == (Removal(path="a", keys=(KEY,)),)


def test_conflict_deletes_every_changed_file() -> None:
    other = git_sha_key(SHA)
    plan = plan_export([{"a": KEY}, {"a": other}], {"a": KEY}, annexobjects=True)
    assert plan.unexports == (Removal(path="a", keys=(other, KEY)),)
    assert plan.to_temp == plan.from_temp == plan.disposals == ()


def test_recovery_names_the_temporary_files_of_changed_paths() -> None:
    plan = plan_export([], {"a": KEY}, annexobjects=True, incomplete=[{"a": KEY, "b": KEY}])
    assert plan.recover == (KEY,)
    assert plan_export([], {"a": KEY}, annexobjects=True, incomplete=[{"a": KEY}]).recover == ()


# --- the property ------------------------------------------------------------------------

keys = st.sampled_from(
    [Key.parse(f"SHA256E-s{n}--{n:064x}.dat") for n in range(1, 6)] + [git_sha_key(SHA)]
)
names = st.sampled_from(["a", "b", "c", "d/e", "d/f", "g/h/i"])
trees = st.dictionaries(names, keys, max_size=6)


def _run(plan_old: ExportTree, new: ExportTree, stored: dict[str, Key]) -> dict[str, Key]:
    """Execute the plan on ``stored`` as the exporter does (present = name in the dict)."""
    remote = dict(stored)
    plan = plan_export([plan_old], new, annexobjects=True)
    for move in (*plan.to_temp, *plan.disposals, *plan.from_temp):
        if isinstance(move, Removal):
            remote.pop(move.path, None)
        elif move.source in remote:
            remote[move.dest] = remote.pop(move.source)
    for path, key in plan.fill:
        if path in remote:
            continue
        objects = annexobject_location(key)
        if objects in remote:
            remote[path] = remote.pop(objects)
        else:
            remote[path] = key  # sent from elsewhere (the gateway, or a git blob)
    return remote


@pytest.mark.property
@given(trees, trees, st.lists(keys, max_size=3))
def test_a_plan_reaches_the_new_tree(old: ExportTree, new: ExportTree, extra: list[Key]) -> None:
    stored = dict(old)
    stored.update({annexobject_location(k): k for k in extra if not is_git_sha_key(k)})
    remote = _run(old, new, stored)
    for path, key in new.items():
        assert remote[path] == key
    leftovers = {p: k for p, k in remote.items() if p not in new}
    assert all(p == annexobject_location(k) for p, k in leftovers.items()), leftovers
    assert not any(p.startswith(TEMP_PREFIX) for p in remote)
    kept = {k for k in remote.values()}
    assert {k for k in stored.values() if not is_git_sha_key(k)} <= kept
