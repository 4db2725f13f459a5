"""Measure a server process tree from /proc while a client command runs.

Owns: reading CPU (user+sys, children included) and resident memory of a process and its
descendants from ``/proc``, without touching the measured process beyond resetting its
peak-RSS counter (``clear_refs``). Must not: start or stop servers, or know scenarios.

CPU of a tree is the sum over its live members of ``utime+stime+cutime+cstime``, taken
before and after the run; a child that exits during the run is counted through its
parent's ``cutime``/``cstime``. Peak RSS of the root is ``VmHWM`` (reset before the run);
the tree's peak is the largest sum of ``VmRSS`` seen by a sampler thread in this
(harness) process, every ``interval`` seconds, which costs the server nothing.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass

CLK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerUsage:
    """What a server tree used during one run."""

    user: float  # s, whole tree
    sys: float  # s, whole tree
    root_cpu: float  # s, the root process alone (user+sys)
    peak_rss_mb: float  # the root process (VmHWM)
    tree_peak_mb: float  # largest sum of RSS over the tree seen by the sampler
    nprocs: int  # most processes seen in the tree at once

    @property
    def cpu(self) -> float:
        """User plus system CPU seconds of the tree."""
        return self.user + self.sys


def all_stats() -> dict[int, tuple[int, int, int, int, int]]:
    """Every process: (ppid, utime, stime, cutime, cstime) in clock ticks."""
    out: dict[int, tuple[int, int, int, int, int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        rest = raw[raw.rindex(b")") + 2 :].split()
        # rest[1] = ppid; rest[11..14] = utime stime cutime cstime (proc(5))
        out[int(name)] = (
            int(rest[1]),
            int(rest[11]),
            int(rest[12]),
            int(rest[13]),
            int(rest[14]),
        )
    return out


def tree(root: int, stats: dict[int, tuple[int, int, int, int, int]]) -> set[int]:
    """The root and all its live descendants."""
    kids: dict[int, list[int]] = {}
    for pid, st in stats.items():
        kids.setdefault(st[0], []).append(pid)
    seen: set[int] = set()
    stack = [root] if root in stats else []
    while stack:
        pid = stack.pop()
        if pid not in seen:
            seen.add(pid)
            stack.extend(kids.get(pid, []))
    return seen


def _status_kb(pid: int, field: str) -> int:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def machine_busy() -> float:
    """Busy CPU seconds of the whole machine so far (user+nice+system+irq+softirq)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / CLK


class ServerProbe:
    """Measure one server tree across a run: ``start()``, run the client, ``stop()``."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        self.root = root
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_loop, daemon=True)
        self._tree_peak = 0
        self._nprocs = 0
        self._cpu0 = (0.0, 0.0, 0.0)

    def _cpu(self) -> tuple[float, float, float]:
        st = all_stats()
        pids = tree(self.root, st)
        user = sum(st[p][1] + st[p][3] for p in pids) / CLK
        sys_ = sum(st[p][2] + st[p][4] for p in pids) / CLK
        root = (st[self.root][1] + st[self.root][2]) / CLK if self.root in st else 0.0
        return user, sys_, root

    def _sample(self) -> None:
        pids = tree(self.root, all_stats())
        total = sum(_status_kb(p, "VmRSS:") for p in pids)
        self._tree_peak = max(self._tree_peak, total)
        self._nprocs = max(self._nprocs, len(pids))

    def _sample_loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> None:
        """Take the CPU baseline, reset peak RSS, start sampling."""
        for pid in tree(self.root, all_stats()):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM to the current RSS (proc(5))
        self._cpu0 = self._cpu()
        self._sample()
        self._thread.start()

    def settle(self, quiet: float = 2.0, limit: float = 20.0) -> float:
        """Wait until the tree has used no CPU for ``quiet`` s (at most ``limit`` s).

        Servers finish some work after the client is done: both git-annex's p2phttp
        and annexproxy commit the branch once changes pause for a second. That work
        belongs to the run that caused it, not to the next one.

        Returns:
            The seconds waited.
        """
        start = last_change = time.monotonic()
        cpu = sum(self._cpu()[:2])
        while (now := time.monotonic()) - last_change < quiet and now - start < limit:
            time.sleep(0.1)
            current = sum(self._cpu()[:2])
            if current - cpu > 0.015:  # more than a timer tick or two
                last_change = time.monotonic()
            cpu = current
        return time.monotonic() - start

    def stop(self) -> ServerUsage:
        """Stop sampling and return what the tree used since `start`."""
        self._stop.set()
        self._thread.join()
        self._sample()
        user, sys_, root = self._cpu()
        return ServerUsage(
            user=user - self._cpu0[0],
            sys=sys_ - self._cpu0[1],
            root_cpu=root - self._cpu0[2],
            peak_rss_mb=_status_kb(self.root, "VmHWM:") / 1024,
            tree_peak_mb=self._tree_peak / 1024,
            nprocs=self._nprocs,
        )


def shell_usage(times_file: str) -> ServerUsage:
    """Sum what the server-side shells of an ssh run used, from GNU time's records.

    Each line is ``%U %S %M`` of one server-side shell (its whole tree: GNU time reports
    the rusage of its child including reaped descendants; %M is the largest process).
    """
    user = sys_ = 0.0
    peak = 0
    count = 0
    with contextlib.suppress(FileNotFoundError), open(times_file) as f:
        for line in f:
            words = line.split()
            if len(words) != 3 or not words[2].isdigit():
                continue  # "Command exited with non-zero status" and the like
            user += float(words[0])
            sys_ += float(words[1])
            peak = max(peak, int(words[2]))
            count += 1
    return ServerUsage(
        user=user,
        sys=sys_,
        root_cpu=user + sys_,
        peak_rss_mb=peak / 1024,
        tree_peak_mb=peak / 1024,
        nprocs=count,
    )
