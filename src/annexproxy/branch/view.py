"""The git-annex branch as a reader must see it: branch, journal and unmerged siblings.

Owns the read side of branch.md 13: a file's content is the journal file if there is
one, else the blob in ``refs/heads/git-annex``; and when a sibling ref
(``refs/remotes/*/git-annex``, ``refs/heads/synced/git-annex``, ...) that the branch
does not yet contain holds a different version, the versions are union-merged (sorted,
de-duplicated lines) exactly as git-annex's merge will do, so readers see now what
git-annex will see after its next merge.

A `BranchView` fixes the branch tip and the sibling set when it is made, so that many
reads (one per key) cost one tree walk each and no ref lookups; make a new view (or
call `refresh`) to see later commits. Journal files are read on every call because
git-annex and our own writers change them at any time (configuration logs read through
a `ConfigMemo` are an exception: see there). Only the files asked for are
read: memory stays bounded on a branch of a million keys.

Parsing and deriving (cluster membership, dead nodes) are left to the pure
``branch.logs`` modules; this module only finds bytes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator

from annexproxy.branch.configmemo import ConfigMemo
from annexproxy.branch.git_plumbing import BRANCH_REF, GitPlumbing
from annexproxy.branch.journal import Journal
from annexproxy.branch.logs.presence import present_infos
from annexproxy.branch.logs.snapshot import CONFIG_PATHS, BranchConfig
from annexproxy.branch.paths import branch_path, journal_name, location_log_path
from annexproxy.keys import Key

_PRESENT_CACHE_SIZE = 4096
"""Distinct location-log contents whose resolved UUIDs a view remembers."""


def union_lines(*contents: bytes) -> bytes:
    """git-annex's union merge of file versions: sorted, de-duplicated LF lines (branch.md 12)."""
    lines: set[bytes] = set()
    for content in contents:
        pieces = content.split(b"\n")
        if pieces and pieces[-1] == b"":
            pieces.pop()  # Haskell ``lines``: no empty line after a final LF
        lines.update(pieces)
    return b"".join(line + b"\n" for line in sorted(lines))


class BranchView:
    """Reads branch files with the journal overlaid and unmerged siblings unioned in."""

    def __init__(
        self,
        plumbing: GitPlumbing,
        journal: Journal,
        *,
        siblings: bool = True,
        recent_siblings: RecentSiblings | None = None,
        config_memo: ConfigMemo | None = None,
    ) -> None:
        """Snapshot the branch tip and the unmerged sibling refs.

        Args:
            plumbing: the open repository.
            journal: the repository's journal.
            siblings: also union in sibling refs not yet merged into the branch.
            recent_siblings: where a server keeps the sibling refs it listed lately.
            config_memo: where a server keeps the configuration it read lately.

        Raises:
            RepositoryError: the refs cannot be read.
        """
        self._plumbing = plumbing
        self._journal = journal
        self._use_siblings = siblings
        self._recent = recent_siblings
        self._config_memo = config_memo
        self._present_cache: dict[bytes, tuple[BranchConfig, tuple[str, ...]]] = {}
        self.tip: str | None = None
        self.unmerged: dict[str, str] = {}
        self.refresh()

    def refresh(self) -> None:
        """Look at the refs again (after a commit, a merge or a push).

        Raises:
            RepositoryError: the refs cannot be read.
        """
        self.tip = self._plumbing.resolve_ref(BRANCH_REF)
        if not self._use_siblings:
            self.unmerged = {}
        elif self._recent is not None:
            self.unmerged = self._recent.unmerged(self._plumbing, self.tip)
        else:
            self.unmerged = unmerged_siblings(self._plumbing, self.tip)

    @property
    def settings_branchhash1(self) -> bool:
        """Whether per-key logs use one hash directory level."""
        return self._journal.settings.branchhash1

    def read(self, path: str) -> bytes | None:
        """A branch file as a reader should see it; None when nobody has it.

        What the private journal holds for the file is appended, as git-annex does.

        Raises:
            LogFormatError: ``path`` is not a branch path.
            RepositoryError: git or the journal cannot be read.
        """
        return self._read(path, None)

    def _read(self, path: str, memo: ConfigMemo | None) -> bytes | None:
        shared = self._read_shared(path, memo)
        private = self._journal.read_private(path)
        if private is None:
            return shared
        return private if shared is None else shared + private

    def _read_shared(self, path: str, memo: ConfigMemo | None = None) -> bytes | None:
        local = self._journal.read_journal_only(path)
        if not self.unmerged:  # the common case: one tree lookup at most
            if local is not None or self.tip is None:
                return local
            if memo is not None:
                return memo.at_tip(self.tip, path, lambda: self._at_tip(path))
            return self._at_tip(path)
        base_blob = None if self.tip is None else self._plumbing.blob_id_at(self.tip, path)
        if local is None and base_blob is not None:
            local = self._plumbing.read_blob(base_blob)
        others = []
        for commit in self.unmerged.values():
            blob = self._plumbing.blob_id_at(commit, path)
            if blob is not None and blob != base_blob:
                others.append(self._plumbing.read_blob(blob))
        if not others:
            return local
        if local is None and len(others) == 1:
            return others[0]
        return union_lines(*([] if local is None else [local]), *others)

    def _at_tip(self, path: str) -> bytes | None:
        assert self.tip is not None
        found = self._plumbing.file_at(self.tip, path)
        return None if found is None else found[1]

    def config(self) -> BranchConfig:
        """All configuration logs, resolved (through the view's `ConfigMemo`, if any).

        Raises:
            RepositoryError: git or the journal cannot be read.
        """
        memo = self._config_memo
        if memo is None:
            return BranchConfig.read(self.read)
        state = (self.tip, tuple(self.unmerged.items()), self._journal.top_level_writes)
        return memo.resolve(
            memo.contents(state, lambda: tuple(self._read(path, memo) for path in CONFIG_PATHS))
        )

    def location_log(self, key: Key) -> bytes | None:
        """The content of ``key``'s location log.

        Raises:
            RepositoryError: git or the journal cannot be read.
        """
        return self.read(location_log_path(key, branchhash1=self.settings_branchhash1))

    def present(self, key: Key, config: BranchConfig | None = None) -> list[str]:
        """UUIDs holding ``key``, plus the clusters that makes present (branch.md 6).

        Args:
            key: the key.
            config: the configuration to derive clusters from; read when not given
                (pass it in when asking about many keys).

        Raises:
            RepositoryError: git or the journal cannot be read.
        """
        return self._present_in(self.location_log(key), config or self.config())

    def _present_in(self, content: bytes | None, config: BranchConfig) -> list[str]:
        if content is None:
            return []
        # Many keys share a log's exact content (one `git annex add` writes the same
        # line for each); resolving it once per content and configuration saves most
        # of the per-key parsing on a large branch.
        cached = self._present_cache.get(content)
        if cached is not None and cached[0] is config:
            return list(cached[1])
        present = [info.decode("utf-8", "surrogateescape") for info in present_infos(content)]
        result = config.with_clusters(present)
        if len(self._present_cache) >= _PRESENT_CACHE_SIZE:
            self._present_cache.clear()
        self._present_cache[content] = (config, tuple(result))
        return result

    def present_many(
        self, keys: Iterable[Key], config: BranchConfig | None = None
    ) -> dict[Key, list[str]]:
        """`present` for many keys, read in branch path order.

        Neighbouring paths share their hash-directory trees, so reading in path order
        needs each tree once and little cache, where random order needs all of them
        cached at once.

        Raises:
            RepositoryError: git or the journal cannot be read.
        """
        config = config or self.config()
        branchhash1 = self.settings_branchhash1
        ordered = sorted((location_log_path(k, branchhash1=branchhash1), k) for k in set(keys))
        # The journals are listed once for the whole batch: a key none of them holds is
        # one tree lookup, with no journal name made and no directory looked at again.
        journalled = self._journal.names_if_stable()
        direct = journalled is not None and not self.unmerged and self.tip is not None
        found: dict[Key, list[str]] = {}
        for path, key in ordered:
            if direct and not (journalled and journal_name(path) in journalled):
                content = self._at_tip(path)
            else:
                content = self.read(path)
            found[key] = self._present_in(content, config)
        return found

    def location_log_paths(self) -> Iterator[str]:
        """Paths of every per-key location log (branch, journal and unmerged siblings).

        Streams the branch tree; the journal and sibling differences are collected first
        (they are small compared with the branch).

        Raises:
            RepositoryError: git or the journal cannot be read.
        """
        extra: set[str] = {branch_path(name) for name in self._journal.files()}
        if self.tip is not None:
            for commit in self.unmerged.values():
                extra.update(self._plumbing.changed_files(self.tip, commit))
        else:
            for commit in self.unmerged.values():
                extra.update(path for path, _ in self._plumbing.iter_files(commit))
        extra = {p for p in extra if _is_location_log(p)}
        if self.tip is not None:
            for path, _ in self._plumbing.iter_files(self.tip):
                if _is_location_log(path):
                    extra.discard(path)
                    yield path
        yield from sorted(extra)


def _is_location_log(path: str) -> bool:
    return "/" in path and path.endswith(".log")


def unmerged_siblings(plumbing: GitPlumbing, tip: str | None) -> dict[str, str]:
    """Sibling refs holding commits the branch does not contain, by ref name.

    Refs pointing at the same commit are listed once (the first name in ref order).

    Raises:
        RepositoryError: the refs cannot be read.
    """
    found: dict[str, str] = {}
    seen: set[str] = set()
    for name, commit in plumbing.sibling_refs().items():
        if commit in seen or (tip is not None and plumbing.is_ancestor(commit, tip)):
            continue
        seen.add(commit)
        found[name] = commit
    return found


class RecentSiblings:
    """The unmerged sibling refs of a long-running server, listed at most once a second.

    Listing them walks every loose ref and reads packed-refs; a gateway makes a view for
    each request, several per uploaded file. Sibling refs only change when someone
    fetches or pushes a ``*/git-annex`` ref, and git-annex's own gateway does not look
    at them at all until a ``git annex merge``; a second's delay is far fresher. The
    branch tip itself is resolved by every view, and a new tip lists the siblings again.
    """

    def __init__(self, max_age: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._last: tuple[str | None, float, dict[str, str]] | None = None

    def unmerged(self, plumbing: GitPlumbing, tip: str | None) -> dict[str, str]:
        """`unmerged_siblings` of ``tip``, reused when listed for it within ``max_age``.

        Raises:
            RepositoryError: the refs cannot be read.
        """
        now = self._clock()
        with self._lock:
            last = self._last
        if last is not None and last[0] == tip and now - last[1] < self._max_age:
            return last[2]
        found = unmerged_siblings(plumbing, tip)
        with self._lock:
            self._last = (tip, now, found)
        return found
