"""The one place the branch layer touches git: reading ``refs/heads/git-annex`` and config.

Owns an open ``pygit2.Repository`` and a few typed operations on it: read one file of
the git-annex branch, and read the repository settings that change how the branch and
the journal must be written (``RepoSettings``). It must not parse logs or decide
anything about their content; it converts libgit2 failures to `RepositoryError` at this
boundary. No git subprocess is run per call (branch.md section 13, trap about filters).

It also owns the object and ref operations committing and merging need: reading
files at a given commit, listing sibling ``*/git-annex`` refs, ancestry checks,
writing blobs, building a tree from a base tree plus changed files (nested
``TreeBuilder``s, so a million-key tree is never loaded whole), union-merging a
sibling's tree into it (tree diff, so only changed subtrees are read), commits, and a
compare-and-swap ref update. Commits and ids cross this interface as hex strings.

Exports read project trees through it too (every entry with its mode, small blobs'
content), leave entries out of a tree, and graft a tree into a commit's tree; they live
here because they need the open repository this class owns (hence its length).
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType

import pygit2

from annexproxy.branch.commitobjects import NewObjects, add_commit, tree_with_files
from annexproxy.branch.packfile import Person
from annexproxy.branch.packstore import PackStore
from annexproxy.errors import RepositoryError

BRANCH_REF = "refs/heads/git-annex"
log = logging.getLogger("annexproxy.branch")

# libgit2 is tuned once per process for branches of millions of small logs: trees up to
# 1 MiB stay in its object cache (a hash-directory tree is re-read for every key
# otherwise), and pack files are mapped in 8 MiB windows within 32 MiB. The cache is
# capped at 512 KiB: libgit2 counts raw object bytes, and a parsed tree takes several times
# its raw size, so a 16 MiB cap held about 48 MB (bench/branch_locations.py, 10,000 keys
# of a 300,000-key branch: 0.58 s and 63 MB peak with 2 MiB, 0.59 s and 83 MB with
# 16 MiB, 0.74 s and 57 MB with no cache; 16 MiB of windows instead of 32: 0.77 s).
# Full of small hash-directory trees, 2 MiB raw took 13 MB of malloc; 512 KiB reads
# 10,000 keys of 1,000,000 in 0.84 s and 72 MB peak (2 MiB: 0.81 s, 76 MB), and keeps a
# gateway about 3 MB smaller. Mapped windows count in a gateway's resident memory as its
# requests touch pages of every served repository's packs (a gateway with three nodes
# peaked at 82-88 MB with 32 MiB, 40 MB of it mapped files); 16 MiB read 10,000 keys of
# 1,000,000 as fast as 32 (0.77-0.94 against 0.92-1.0 s, alternating runs). Windows of
# 1 MiB, at most 4 MiB mapped: a gateway uploading small files to a three-node cluster
# held 16 MiB of touched window pages (RssFile 22 -> 40 MB) until its next commit; with
# 1/4 MiB 0.4 MiB, and the 10,000 keys read as fast (0.52-0.54 s against 0.56-0.59 s).
pygit2.settings.cache_object_limit(pygit2.enums.ObjectType.TREE, 1 << 20)
pygit2.settings.cache_max_size(512 << 10)
pygit2.settings.mwindow_size = 1 << 20
pygit2.settings.mwindow_mapped_limit = 4 << 20
_SIBLING_SUFFIX = "/git-annex"
_ANCESTRY_CACHE_SIZE = 4096
# Parsed root trees kept per repository: the tip, the tip a commit is replacing, and one
# sibling. A git-annex branch's root tree has up to 4096 entries and takes about 260 KB
# parsed (3,900 entries: 116 KB raw), and every branch commit makes a new one: with 8 a
# gateway and three local cluster nodes held 8 MB of superseded roots, which showed as
# RSS growth of several KB per uploaded file until all 32 slots were full.
_TREE_CACHE_SIZE = 3
# A commit is built in memory (its new objects, parsed trees on the changed paths, a few
# MB for a commit of thousands of logs); one at a time per process keeps a gateway's
# peak memory the same with many repositories.
_ONE_COMMIT_BUILT = threading.Lock()


class SharedRepository(enum.Enum):
    """How ``core.sharedRepository`` asks files to be shared (git-annex ``SharedRepository``)."""

    UNSHARED = "umask"
    GROUP = "group"
    ALL = "all"

    @classmethod
    def from_config(cls, value: str | None) -> SharedRepository:
        """Interpret a ``core.sharedRepository`` value as git-annex does.

        ``group``/``true``/``1`` share with the group, ``all``/``world``/``everybody``/``2``
        with everybody. Anything else (unset, ``umask``, ``false``, octal modes) keeps
        the umask: octal modes are not honoured yet.
        """
        word = (value or "").strip().lower()
        if word in ("group", "true", "yes", "on", "1"):
            return cls.GROUP
        if word in ("all", "world", "everybody", "2"):
            return cls.ALL
        return cls.UNSHARED


@dataclass(frozen=True, slots=True, kw_only=True)
class RepoSettings:
    """Git config of a repository that matters when writing its git-annex branch."""

    uuid: str | None
    shared: SharedRepository
    pidlock: bool  # annex.pidlock: git-annex then uses a pid lock, not fcntl locks
    branchhash1: bool  # annex.tune.branchhash1: one hash directory level in the branch
    private_uuids: frozenset[str]  # annex.private / remote.<name>.annex-private
    commit_message: str = "update"  # annex.commitmessage: subject of branch commits


def _with_newline(message: str) -> str:
    # as git commit-tree leaves git-annex's messages
    return message if message.endswith("\n") else message + "\n"


def _git_bool(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "yes", "on", "1")


def _read_tree(repo: pygit2.Repository, oid: bytes) -> bytes:
    kind, body = repo.odb.read(pygit2.Oid(raw=oid))
    if kind != pygit2.enums.ObjectType.TREE:
        raise RepositoryError(f"{oid.hex()} in {repo.path} is not a tree")
    return bytes(body)


def _signature(repo: pygit2.Repository) -> pygit2.Signature:
    try:
        return repo.default_signature
    except (KeyError, pygit2.GitError):
        return pygit2.Signature("annexproxy", "annexproxy@localhost")


class GitPlumbing:
    """An open git repository, for the branch layer.

    Calls are serialised with a lock, because a libgit2 repository object must not be
    used by several threads at once (the journal runs in worker threads).
    """

    def __init__(self, path: Path | str) -> None:
        """Open the repository at ``path`` (work tree, ``.git`` or bare repository).

        Raises:
            RepositoryError: there is no git repository there.
        """
        try:
            self._repo = pygit2.Repository(str(path))
        except (pygit2.GitError, KeyError, OSError) as exc:
            raise RepositoryError(f"cannot open a git repository at {path}: {exc}") from exc
        self._lock = threading.Lock()
        self._packs: PackStore | None = None
        self._trees: dict[str, pygit2.Tree] = {}
        # Ancestry of two commits never changes: each view's sibling check asks again.
        self._ancestry: dict[tuple[str, str], bool] = {}

    @property
    def gitdir(self) -> Path:
        """The git directory (``.git`` of a work tree, or the bare repository)."""
        return Path(self._repo.path)

    @property
    def annexdir(self) -> Path:
        """``<gitdir>/annex`` (linked work trees are not handled yet)."""
        return self.gitdir / "annex"

    def read_branch_file(self, path: str) -> bytes | None:
        """Read one file of the git-annex branch as committed (journal not included).

        Args:
            path: ``/``-separated path from the top of the branch.

        Returns:
            The blob's bytes, or None when the branch or the path does not exist or
            the path is not a file.

        Raises:
            RepositoryError: git could not read the objects (corrupt repository, ...).
        """
        with self._using():
            ref = self._repo.references.get(BRANCH_REF)
            if ref is None:
                return None
            # The parsed root tree of the tip is kept: parsing a 4,000-entry root again
            # for every read took 0.4 ms, more than all else a location change costs.
            tree = self._tree_of(str(ref.resolve().target))
            try:
                entry = tree[path]
            except KeyError:
                return None
            if not isinstance(entry, pygit2.Blob):
                return None
            return entry.data

    # --- refs and reading at a commit ------------------------------------------------

    def resolve_ref(self, name: str = BRANCH_REF) -> str | None:
        """The commit a ref points to (hex), or None when the ref does not exist.

        Raises:
            RepositoryError: git could not read the ref.
        """
        with self._using():
            ref = self._repo.references.get(name)
            return None if ref is None else str(ref.peel(pygit2.Commit).id)

    def sibling_refs(self) -> dict[str, str]:
        """Every other ``*/git-annex`` ref and its commit, by ref name (branch.md 12 step 1).

        That is ``refs/remotes/<r>/git-annex``, ``refs/heads/synced/git-annex`` and any
        other ref whose name ends in ``/git-annex``, except ``refs/heads/git-annex``.

        Raises:
            RepositoryError: git could not list the refs.
        """
        found: dict[str, str] = {}
        with self._using():
            for name in sorted(self._repo.references):
                if name == BRANCH_REF or not name.endswith(_SIBLING_SUFFIX):
                    continue
                if name.startswith("refs/tags/"):
                    continue
                try:
                    commit = self._repo.references[name].peel(pygit2.Commit)
                except (pygit2.InvalidSpecError, ValueError, KeyError):
                    continue  # a ref to something other than a commit: not a branch
                found[name] = str(commit.id)
        return found

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """Whether commit ``ancestor`` is ``descendant`` or one of its ancestors.

        Raises:
            RepositoryError: a commit is missing.
        """
        if ancestor == descendant:
            return True
        with self._using():
            known = self._ancestry.get((ancestor, descendant))
            if known is not None:
                return known
            found = bool(
                self._repo.descendant_of(pygit2.Oid(hex=descendant), pygit2.Oid(hex=ancestor))
            )
            if len(self._ancestry) >= _ANCESTRY_CACHE_SIZE:
                self._ancestry.pop(next(iter(self._ancestry)))
            self._ancestry[(ancestor, descendant)] = found
            return found

    def _tree_of(self, commit: str) -> pygit2.Tree:
        tree = self._trees.get(commit)
        if tree is None:
            tree = self._repo[pygit2.Oid(hex=commit)].peel(pygit2.Tree)
            if len(self._trees) >= _TREE_CACHE_SIZE:
                self._trees.pop(next(iter(self._trees)))
            self._trees[commit] = tree
        return tree

    def blob_id_at(self, commit: str, path: str) -> str | None:
        """The blob id of ``path`` in ``commit``'s tree, or None when it is not a file.

        Only the trees on the way to ``path`` are read (a per-key lookup on a branch of
        a million keys reads three small trees).

        Raises:
            RepositoryError: the commit cannot be read.
        """
        with self._using():
            try:
                entry = self._tree_of(commit)[path]
            except KeyError:
                return None
            return str(entry.id) if entry.type_str == "blob" else None

    def file_at(self, commit: str, path: str) -> tuple[str, bytes] | None:
        """A file's blob id and content in ``commit``, or None when it is not a file.

        One call for the per-key hot path: the lock is taken once and no context
        manager or path object is built.

        Raises:
            RepositoryError: the objects cannot be read.
        """
        with self._lock:
            try:
                tree = self._trees.get(commit) or self._tree_of(commit)
                try:
                    entry = tree[path]
                except KeyError:
                    return None
                if entry.type_str != "blob":
                    return None
                return str(entry.id), entry.peel(pygit2.Blob).data
            except (pygit2.GitError, OSError) as exc:
                raise RepositoryError(f"git failed in {self.gitdir}: {exc}") from exc

    def read_blob(self, blob_id: str) -> bytes:
        """The content of a blob.

        Raises:
            RepositoryError: there is no such blob.
        """
        with self._using():
            try:
                return bytes(self._repo[pygit2.Oid(hex=blob_id)].peel(pygit2.Blob).data)
            except (KeyError, ValueError) as exc:
                raise RepositoryError(f"blob {blob_id} is missing in {self.gitdir}") from exc

    def read_file_at(self, commit: str, path: str) -> bytes | None:
        """A file's content in ``commit``, or None when absent.

        Raises:
            RepositoryError: the objects cannot be read.
        """
        blob = self.blob_id_at(commit, path)
        return None if blob is None else self.read_blob(blob)

    def iter_files(self, commit: str) -> Iterator[tuple[str, str]]:
        """Every file of ``commit``'s tree as (path, blob id), depth first.

        Holds only the trees on the current path plus one listing at a time.

        Raises:
            RepositoryError: the objects cannot be read.
        """
        with self._using():
            root = self._tree_of(commit)
        stack: list[tuple[str, pygit2.Tree]] = [("", root)]
        while stack:
            prefix, tree = stack.pop()
            with self._using():
                entries = [(e.name or "", e.type_str, e.id) for e in tree]
            for name, kind, oid in entries:
                if kind == "blob":
                    yield prefix + name, str(oid)
                elif kind == "tree":
                    with self._using():
                        sub = self._repo[oid].peel(pygit2.Tree)
                    stack.append((prefix + name + "/", sub))

    def changed_files(self, base: str, other: str) -> list[str]:
        """Paths of files that differ between two trees, or exist only in ``other``.

        ``base`` and ``other`` are commit or tree ids.

        Raises:
            RepositoryError: the objects cannot be read.
        """
        with self._using():
            diff = self._tree_of(base).diff_to_tree(self._tree_of(other))
            return [
                delta.new_file.path
                for delta in diff.deltas
                if delta.status != pygit2.enums.DeltaStatus.DELETED
            ]

    def tree_entries(
        self, treeish: str, small: int
    ) -> Iterator[tuple[str, int, str, bytes | None]]:
        """Every non-tree entry below ``treeish`` as (path, mode, id, content), in git order.

        ``content`` is the blob's bytes when it is at most ``small`` bytes (symlink
        targets, pointer files), else None (also for submodule entries).

        Raises:
            RepositoryError: the objects cannot be read.
        """
        with self._using():
            try:
                root = self._repo.revparse_single(treeish).peel(pygit2.Tree)
            except (KeyError, ValueError, pygit2.InvalidSpecError) as exc:
                raise RepositoryError(f"no tree {treeish} in {self.gitdir}") from exc
            entries = [(e.name or "", int(e.filemode), str(e.type_str), e.id) for e in root]
        # Depth first in entry order: a subtree's files come before its next sibling.
        pending: list[tuple[str, list[tuple[str, int, str, pygit2.Oid]]]] = [("", entries[::-1])]
        while pending:
            prefix, todo = pending[-1]
            if not todo:
                pending.pop()
                continue
            name, mode, kind, oid = todo.pop()
            with self._using():
                if kind == "tree":
                    sub = self._repo[oid].peel(pygit2.Tree)
                    inner = [(e.name or "", int(e.filemode), str(e.type_str), e.id) for e in sub]
                    pending.append((prefix + name + "/", inner[::-1]))
                    continue
                content = None
                if kind == "blob":
                    blob = self._repo[oid].peel(pygit2.Blob)
                    content = bytes(blob.data) if blob.size <= small else None
            yield prefix + name, int(mode), str(oid), content

    def rev_tree(self, spec: str) -> str | None:
        """The tree a revision names (``main``, ``refs/heads/x:sub/dir``), or None.

        Raises:
            RepositoryError: the objects cannot be read.
        """
        with self._using():
            try:
                return str(self._repo.revparse_single(spec).peel(pygit2.Tree).id)
            except (KeyError, ValueError, pygit2.InvalidSpecError):
                return None

    def tree_without(self, tree: str, paths: Collection[str]) -> str:
        """``tree`` with the non-tree entries at ``paths`` left out (``Git.Tree.adjustTree``).

        Subtrees left empty stay, as empty trees, as git-annex's adjustment keeps them.

        Raises:
            RepositoryError: the objects cannot be read or written.
        """
        with self._using():
            root = self._repo.revparse_single(tree).peel(pygit2.Tree)
            return str(self._without(root, "", frozenset(paths)))

    def _without(self, tree: pygit2.Tree, prefix: str, paths: frozenset[str]) -> pygit2.Oid:
        builder = self._repo.TreeBuilder(tree)
        for entry in tree:
            name = entry.name or ""
            path = prefix + name
            if entry.type_str == "tree":
                if any(p.startswith(path + "/") for p in paths):
                    sub = self._repo[entry.id].peel(pygit2.Tree)
                    builder.insert(name, self._without(sub, path + "/", paths), entry.filemode)
            elif path in paths:
                builder.remove(name)
        return builder.write()

    def graft_tree(self, commit: str, path: str, tree: str) -> str:
        """``commit``'s tree with the tree ``tree`` added at top-level name ``path``.

        Raises:
            RepositoryError: the objects cannot be read or written.
        """
        with self._using():
            builder = self._repo.TreeBuilder(self._tree_of(commit))
            builder.insert(path, pygit2.Oid(hex=tree), pygit2.enums.FileMode.TREE)
            return str(builder.write())

    # --- writing objects and refs -------------------------------------------------------

    def tree_with(self, base: str | None, files: Mapping[str, bytes]) -> str:
        """Write a tree: ``base`` commit's tree with ``files`` added or replaced.

        Blobs are written as they are (no filters: branch.md 13 trap). Only subtrees on
        the paths of ``files`` are rebuilt.

        Returns:
            The new tree id (hex).

        Raises:
            RepositoryError: git could not write the objects.
        """
        with self._using():
            root = None if base is None else self._tree_of(base)
            blobs = {path: self._repo.create_blob(data) for path, data in files.items()}
            return str(self._build_tree(root, blobs))

    def _build_tree(self, base: pygit2.Tree | None, blobs: Mapping[str, pygit2.Oid]) -> pygit2.Oid:
        builder = self._repo.TreeBuilder() if base is None else self._repo.TreeBuilder(base)
        below: dict[str, dict[str, pygit2.Oid]] = {}
        for path, oid in blobs.items():
            head, sep, rest = path.partition("/")
            if sep:
                below.setdefault(head, {})[rest] = oid
            else:
                builder.insert(head, oid, pygit2.enums.FileMode.BLOB)
        for head, inner in below.items():
            sub = None
            if base is not None and head in base:
                entry = base[head]
                if entry.type_str == "tree":
                    sub = self._repo[entry.id].peel(pygit2.Tree)
            builder.insert(head, self._build_tree(sub, inner), pygit2.enums.FileMode.TREE)
        return builder.write()

    def commit_files(self, base: str, files: Mapping[str, bytes], message: str) -> str | None:
        """Commit ``base``'s tree with ``files`` added or replaced, as one new pack.

        The blobs, the trees on the changed paths and the commit (parent ``base``) are
        written as one pack and index, durable before this returns; small packs are
        merged when they add up (`PackStore.merge_small`). No ref is changed.

        Returns:
            The new commit id (hex), or None when the tree would not change.

        Raises:
            RepositoryError: git objects could not be read or the pack written.
        """
        store = self._pack_store()
        with _ONE_COMMIT_BUILT:
            # The trees on the changed paths are read through a handle of the commit's
            # own, not under `_lock`: readers (the event loop's location lookups among
            # them) go on meanwhile. The handle is freed at once, its mapped pages with it.
            try:
                builder = pygit2.Repository(self._repo.path)
            except (pygit2.GitError, OSError) as exc:
                raise RepositoryError(f"cannot open {self.gitdir}: {exc}") from exc
            try:
                new = NewObjects()
                root = builder[pygit2.Oid(hex=base)].peel(pygit2.Tree)
                tree = tree_with_files(partial(_read_tree, builder), root.id.raw, files, new)
                if tree == root.id.raw:
                    return None
                signature = _signature(builder)
                person = Person(signature.name, signature.email, signature.time, signature.offset)
                commit = add_commit(
                    new, tree, [bytes.fromhex(base)], person, _with_newline(message)
                )
            except (pygit2.GitError, OSError, KeyError, ValueError) as exc:
                raise RepositoryError(f"cannot build a commit in {self.gitdir}: {exc}") from exc
            finally:
                builder.free()
            # Writing and merging packs (fsyncs, most of a commit's time) needs no handle:
            # readers of the repository go on meanwhile, on the packs they know.
            store.write(new.objects)
            try:
                store.merge_small()
            except RepositoryError as exc:
                # The commit stands; the packs wait for the next commit or git gc.
                log.warning("%s; packs left unmerged", exc)
            # A fresh handle lets libgit2 unmap the packs it read (mapped pages count as
            # our memory, several MB after a few commits), close merged ones and see the
            # new one.
            with self._using():
                self._reopen()
            return commit.hex()

    def _pack_store(self) -> PackStore:
        if self._packs is None:
            shared = self.read_settings().shared
            extra = {SharedRepository.GROUP: 0o040, SharedRepository.ALL: 0o044}.get(shared, 0)
            self._packs = PackStore(self.gitdir / "objects" / "pack", extra)
        return self._packs

    def _reopen(self) -> None:
        path = self._repo.path
        self._repo.free()
        self._repo = pygit2.Repository(path)
        self._trees.clear()

    def commit(self, tree: str, parents: list[str], message: str) -> str:
        """Write a commit (author and committer from git config, else a fixed identity).

        Returns:
            The new commit id (hex); no ref is changed.

        Raises:
            RepositoryError: git could not write it.
        """
        with self._using():
            signature = _signature(self._repo)
            oid = self._repo.create_commit(
                None,
                signature,
                signature,
                _with_newline(message),
                pygit2.Oid(hex=tree),
                [pygit2.Oid(hex=p) for p in parents],
            )
            return str(oid)

    def tree_of(self, commit: str) -> str:
        """The tree id of a commit.

        Raises:
            RepositoryError: the commit cannot be read.
        """
        with self._using():
            return str(self._tree_of(commit).id)

    def update_ref(self, name: str, new: str, old: str | None) -> bool:
        """Compare-and-swap: point ``name`` at ``new`` only if it still points at ``old``.

        Args:
            name: the full ref name.
            new: the new commit.
            old: the expected current commit; None expects the ref not to exist.

        Returns:
            False when the ref had moved (nothing was changed).

        Raises:
            RepositoryError: git could not write the ref.
        """
        with self._using():
            ref = self._repo.references.get(name)
            if old is None:
                if ref is not None:
                    return False
                try:
                    self._repo.references.create(name, pygit2.Oid(hex=new))
                except (ValueError, pygit2.AlreadyExistsError):
                    return False
                return True
            if ref is None or str(ref.target) != old:
                return False
            try:
                # libgit2's set_target is git_reference_create_matching: it fails when
                # the ref no longer holds the value read above.
                ref.set_target(pygit2.Oid(hex=new), "annexproxy: update git-annex branch")
            except pygit2.GitError as exc:
                if "does not match" in str(exc) or "modified" in str(exc):
                    return False
                raise
            return True

    # --- config ------------------------------------------------------------------------

    def config_entries(self) -> dict[str, str]:
        """Every git config setting, last value winning, by normalised name.

        Section and key are lower case, a subsection (``remote.<name>``) keeps its case.
        A key given without ``= value`` reads as ``true``.

        Raises:
            RepositoryError: the config cannot be read.
        """
        with self._using():
            snapshot = self._repo.config.snapshot()
            return {e.name: "true" if e.value is None else e.value for e in snapshot}

    def set_config(self, name: str, value: str) -> None:
        """Set a value in the repository's own config file (``git config NAME VALUE``).

        Raises:
            RepositoryError: the config cannot be written.
        """
        with self._using():
            self._repo.config[name] = value

    def read_settings(self) -> RepoSettings:
        """Read the config values in `RepoSettings` from the repository's git config.

        Raises:
            RepositoryError: the config cannot be read.
        """
        with self._using():
            config = self._repo.config.snapshot()
            # A key given without "= value" is a boolean true, as in git.
            values = {
                entry.name.lower(): "true" if entry.value is None else entry.value
                for entry in config
            }
        uuid = values.get("annex.uuid")
        private = set()
        if uuid and _git_bool(values.get("annex.private")):
            private.add(uuid)
        for name, value in values.items():
            if name.startswith("remote.") and name.endswith(".annex-private") and _git_bool(value):
                remote_uuid = values.get(name.removesuffix(".annex-private") + ".annex-uuid")
                if remote_uuid:
                    private.add(remote_uuid)
        return RepoSettings(
            uuid=uuid or None,
            shared=SharedRepository.from_config(values.get("core.sharedrepository")),
            pidlock=_git_bool(values.get("annex.pidlock")),
            branchhash1=_git_bool(values.get("annex.tune.branchhash1")),
            private_uuids=frozenset(private),
            commit_message=values.get("annex.commitmessage") or "update",
        )

    @contextmanager
    def _using(self) -> Iterator[None]:
        with self._lock:
            try:
                yield
            except (pygit2.GitError, OSError) as exc:
                raise RepositoryError(f"git failed in {self.gitdir}: {exc}") from exc

    def close(self) -> None:
        """Release the repository's files and caches."""
        with self._lock:
            self._repo.free()

    def __enter__(self) -> GitPlumbing:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
