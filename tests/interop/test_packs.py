"""Branch commits written as packs, checked against git itself.

The pack index we write must be the one ``git index-pack`` writes for our pack, a
commit written as a pack must have the ids libgit2's loose objects would have had, and
``git fsck --strict`` must find nothing wrong after commits and geometric merges.
"""

from __future__ import annotations

import functools
import os
import random
import subprocess
import tempfile
import threading
from pathlib import Path

import pygit2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annexproxy.branch import packstore
from annexproxy.branch.commit import commit_journal
from annexproxy.branch.commitobjects import NewObjects, tree_with_files
from annexproxy.branch.git_plumbing import BRANCH_REF, GitPlumbing
from annexproxy.branch.journal import Journal
from annexproxy.branch.packfile import BLOB, COMMIT, TREE, PackEncoder, Person, object_id
from annexproxy.branch.packstore import PackStore
from annexproxy.errors import RepositoryError

U = "2fe550a4-fab9-462f-8322-ece2616932ad"


def git(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(
        ["git", *args], cwd=repo, input=stdin, capture_output=True, check=True
    ).stdout


def make_repo(path: Path) -> GitPlumbing:
    repo = pygit2.init_repository(str(path), bare=True)
    repo.config["annex.uuid"] = U
    repo.config["user.name"] = "tester"
    repo.config["user.email"] = "tester@example.org"
    sig = pygit2.Signature("t", "t@t", 1700000000, 0)
    repo.create_commit(BRANCH_REF, sig, sig, "branch created\n", repo.TreeBuilder().write(), [])
    (path / "annex").mkdir()
    return GitPlumbing(path)


def replace_with(content: bytes, _old: bytes) -> bytes:
    return content


def pack_files(path: Path) -> list[str]:
    return sorted(p.name for p in (path / "objects" / "pack").glob("pack-*.pack"))


def loose_count(path: Path) -> int:
    return sum(1 for p in (path / "objects").glob("??/*"))


bodies = st.binary(max_size=300)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(blobs=st.lists(bodies, min_size=1, max_size=40, unique=True))
def test_index_is_what_git_index_pack_writes(tmp_path: Path, blobs: list[bytes]) -> None:
    objects = {object_id(BLOB, body): (BLOB, body) for body in blobs}
    tree = b"".join(b"100644 f%d\0%s" % (n, oid) for n, oid in enumerate(sorted(objects)))
    objects[object_id(TREE, tree)] = (TREE, tree)
    encoder = PackEncoder(len(objects))
    pack = b"".join(
        [
            encoder.header(),
            *(encoder.add(*objects[oid], oid) for oid in sorted(objects)),
            encoder.trailer(),
        ]
    )
    work = Path(tempfile.mkdtemp(dir=tmp_path))
    (work / "x.pack").write_bytes(pack)
    out = git(work, "index-pack", "--index-version=2", "-o", "git.idx", "x.pack")
    assert out.strip() == encoder.checksum.hex().encode()
    assert (work / "git.idx").read_bytes() == encoder.index()


def test_large_offsets_are_indexed_as_git_does(tmp_path: Path) -> None:
    # Offsets at and past 2 GiB go to the 64-bit table; git does it when told to.
    encoder = PackEncoder(1)
    encoder._offset = 0x80000010  # as if 2 GiB of entries came first
    encoder.header()
    encoder.add(BLOB, b"x")
    encoder.trailer()
    idx = encoder.index()
    assert idx[8 + 1024 + 20 + 4 : 8 + 1024 + 20 + 8] == b"\x80\x00\x00\x00"
    assert int.from_bytes(idx[8 + 1024 + 28 : 8 + 1024 + 36], "big") == 0x8000001C


def test_pack_entries_come_in_id_order() -> None:
    encoder = PackEncoder(3)
    encoder.header()
    encoder.add(BLOB, b"b")
    with pytest.raises(RepositoryError, match="out of id order or repeated"):
        encoder.add(BLOB, b"b")
    with pytest.raises(RepositoryError, match="declared 3 objects and got 1"):
        encoder.trailer()


def test_person_line() -> None:
    assert Person("A B", "a@b", 1700000000, -90).encode() == b"A B <a@b> 1700000000 -0130"
    assert Person("A", "a@b", 5, 330).encode() == b"A <a@b> 5 +0530"


paths = st.lists(
    st.tuples(
        st.sampled_from(["abc", "abd", "ab", "abc.log", "a-b", "a", "zz"]),
        st.sampled_from(["", "def", "de", "def.log", "d"]),
        st.sampled_from(["K.log", "K", "uuid.log", "L.log-", "x/y"]),
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(first=paths, second=paths, data=st.binary(max_size=40))
def test_trees_match_libgit2(
    tmp_path: Path,
    first: list[tuple[str, str, str]],
    second: list[tuple[str, str, str]],
    data: bytes,
) -> None:
    plumbing = make_repo(Path(tempfile.mkdtemp(dir=tmp_path)) / "r")
    with plumbing:
        base = plumbing.resolve_ref()
        assert base is not None

        def files(parts: list[tuple[str, str, str]]) -> dict[str, bytes]:
            chosen: dict[str, bytes] = {}
            for a, b, c in parts:
                path = "/".join(p for p in (a, b, c) if p)
                # a path may not be both a file and a directory in one commit
                if any(
                    other.startswith(path + "/") or path.startswith(other + "/") for other in chosen
                ):
                    continue
                chosen[path] = data + path.encode()
            return chosen

        theirs = plumbing.commit(plumbing.tree_with(base, files(first)), [base], "x")
        second_files = files(second)
        expected = plumbing.tree_with(theirs, second_files)
        ours = plumbing.commit_files(theirs, second_files, "update")
        if expected == plumbing.tree_of(theirs):
            assert ours is None
            return
        assert ours is not None
        assert plumbing.tree_of(ours) == expected
        body = git(plumbing.gitdir, "cat-file", "commit", ours)
        assert body.startswith(
            f"tree {expected}\nparent {theirs}\nauthor tester <tester@example.org> ".encode()
        )
        assert body.endswith(b"\n\nupdate\n")


def commit_k_log(plumbing: GitPlumbing) -> str:
    """Commit ``a/b/K.log`` on the branch; its new tip."""
    base = plumbing.resolve_ref()
    assert base is not None
    first = plumbing.commit_files(base, {"a/b/K.log": b"1\n"}, "update")
    assert first is not None
    assert plumbing.update_ref(BRANCH_REF, first, base)
    return first


def test_unchanged_tree_writes_nothing(tmp_path: Path) -> None:
    with make_repo(tmp_path / "r") as plumbing:
        first = commit_k_log(plumbing)
        before = pack_files(plumbing.gitdir)
        assert plumbing.commit_files(first, {"a/b/K.log": b"1\n"}, "update") is None
        assert pack_files(plumbing.gitdir) == before


def test_reads_go_on_while_a_commit_builds_its_trees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The event loop reads location logs through the same GitPlumbing while the
    # committer (a worker thread) builds a commit's trees; the reads must not wait for it.
    with make_repo(tmp_path / "r") as plumbing:
        first = commit_k_log(plumbing)
        seen: list[tuple[str, bytes] | None] = []

        def building(*args: object, **kwargs: object) -> bytes:
            reader = threading.Thread(
                target=lambda: seen.append(plumbing.file_at(first, "a/b/K.log"))
            )
            reader.start()
            reader.join(timeout=30)  # a read blocked behind the commit never ends
            assert not reader.is_alive(), "a read waited for the commit being built"
            return tree_with_files(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr("annexproxy.branch.git_plumbing.tree_with_files", building)
        second = plumbing.commit_files(first, {"a/b/L.log": b"2\n"}, "update")
        assert second is not None
        assert seen == [(plumbing.blob_id_at(first, "a/b/K.log"), b"1\n")]
        assert plumbing.read_file_at(second, "a/b/L.log") == b"2\n"
        assert plumbing.read_file_at(second, "a/b/K.log") == b"1\n"


def test_commits_as_packs_merge_geometrically_and_git_agrees(tmp_path: Path) -> None:
    path = tmp_path / "r"
    plumbing = make_repo(path)
    loose = loose_count(path)  # the first commit and its empty tree
    journal = Journal(plumbing.annexdir, plumbing)
    rng = random.Random(7)
    written: dict[str, bytes] = {}
    counts = []
    for round_ in range(60):
        for _ in range(rng.randrange(1, 30)):
            name = f"{rng.randrange(16):03x}/{rng.randrange(16):03x}/K{rng.randrange(400)}.log"
            content = f"{round_}s 1 {U}\n".encode()
            journal.modify(name, functools.partial(replace_with, content))
            written[name] = content
        assert commit_journal(plumbing, journal).commit is not None
        counts.append(len(pack_files(path)))
    plumbing.close()
    assert loose_count(path) == loose
    # 60 commits, but only a logarithmic number of packs at any time
    assert max(counts) <= 8, counts
    git(path, "fsck", "--strict", "--no-dangling")
    for name, content in written.items():
        assert git(path, "cat-file", "blob", f"git-annex:{name}") == content
    assert not [p for p in (path / "objects" / "pack").iterdir() if p.name.startswith("tmp_")]


def test_merge_leaves_git_packs_and_kept_packs_alone(tmp_path: Path) -> None:
    path = tmp_path / "r"
    with make_repo(path) as plumbing:
        tip = plumbing.resolve_ref()
        assert tip is not None
        for n in range(3):
            new = plumbing.commit(
                plumbing.tree_with(tip, {f"f{n}/x.log": b"v%d\n" % n * 50}), [tip], "x"
            )
            assert plumbing.update_ref(BRANCH_REF, new, tip)
            tip = new
    git(path, "repack", "-a", "-d", "-f", "--depth=10", "--window=10")  # git's pack, with deltas
    (git_pack,) = pack_files(path)
    store = PackStore(path / "objects" / "pack")
    kept = store.write({object_id(BLOB, b"kept\n"): (BLOB, b"kept\n")})
    (path / "objects" / "pack" / f"{kept}.keep").touch()
    names = [store.write({object_id(BLOB, b"%d\n" % n): (BLOB, b"%d\n" % n)}) for n in range(3)]
    merged = store.merge_small()
    assert merged is not None
    remaining = pack_files(path)
    assert git_pack in remaining
    assert f"{kept}.pack" in remaining
    assert f"{merged}.pack" in remaining
    assert not any(f"{name}.pack" in remaining for name in names)
    for n in range(3):
        assert git(path, "cat-file", "blob", object_id(BLOB, b"%d\n" % n).hex()) == b"%d\n" % n
    git(path, "fsck", "--strict", "--no-dangling")
    (path / "objects" / "pack" / "multi-pack-index").touch()
    store.write({object_id(BLOB, b"a\n"): (BLOB, b"a\n")})
    store.write({object_id(BLOB, b"b\n"): (BLOB, b"b\n")})
    assert store.merge_small() is None


def test_packs_follow_shared_repository_and_umask(tmp_path: Path) -> None:
    path = tmp_path / "r"
    with make_repo(path) as plumbing:
        plumbing.set_config("core.sharedRepository", "group")
    old = os.umask(0o077)
    try:
        with GitPlumbing(path) as plumbing:
            base = plumbing.resolve_ref()
            assert base is not None
            assert plumbing.commit_files(base, {"a/K.log": b"1\n"}, "update") is not None
    finally:
        os.umask(old)
    for name in pack_files(path):
        assert (path / "objects" / "pack" / name).stat().st_mode & 0o777 == 0o440


def test_commit_objects_are_pure(tmp_path: Path) -> None:
    # The same input gives the same ids without any repository: only the base is read.
    new = NewObjects()
    tree = tree_with_files(lambda oid: b"", None, {"a/b.log": b"x\n"}, new)
    assert {kind for kind, _ in new.objects.values()} == {BLOB, TREE}
    assert tree == object_id(
        TREE, b"40000 a\0" + object_id(TREE, b"100644 b.log\0" + object_id(BLOB, b"x\n"))
    )
    assert COMMIT not in {kind for kind, _ in new.objects.values()}


@pytest.mark.parametrize("piece", [1, 7, 1 << 20])
def test_merge_reads_entries_across_read_pieces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, piece: int
) -> None:
    monkeypatch.setattr(packstore, "_READ_PIECE", piece)
    path = tmp_path / "r"
    make_repo(path).close()
    store = PackStore(path / "objects" / "pack")
    rng = random.Random(piece)
    blobs = [rng.randbytes(rng.randrange(0, 3000)) for _ in range(40)]
    for start in range(0, 40, 8):
        store.write({object_id(BLOB, b): (BLOB, b) for b in blobs[start : start + 8]})
    store.write({object_id(BLOB, b): (BLOB, b) for b in blobs[:3]})  # duplicates
    assert store.merge_small() is not None
    assert len(pack_files(path)) == 1
    git(path, "fsck", "--strict", "--no-dangling")
    for body in blobs:
        assert git(path, "cat-file", "blob", object_id(BLOB, body).hex()) == body


def test_a_failed_merge_leaves_the_commit_standing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(self: PackStore) -> str | None:
        raise RepositoryError("cannot merge packs: disk full")

    monkeypatch.setattr(PackStore, "merge_small", fail)
    with make_repo(tmp_path / "r") as plumbing:
        base = plumbing.resolve_ref()
        assert base is not None
        new = plumbing.commit_files(base, {"a/b/K.log": b"1\n"}, "update")
        assert new is not None
        assert plumbing.update_ref(BRANCH_REF, new, base)
        assert plumbing.read_branch_file("a/b/K.log") == b"1\n"
