"""Turn the run's records into one table of medians with ratios, the limits, and targets.

Owns: medians over the recorded (non-warm-up) runs, formatting, and checking issue 9's
targets against the same run's numbers. Must not: run anything.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable

GA, AP, LIMIT = "git-annex", "annexproxy", "limit"
SIZES = "object size: "  # the rows of the object-size scenario start so
FLAT_MB = 8  # the most the object-size rows' peak RSS may differ and still be "flat"
Record = dict[str, object]


def _num(rec: Record, name: str) -> float | None:
    value = rec.get(name)
    return float(value) if isinstance(value, int | float) else None


def _median(recs: list[Record], name: str) -> float | None:
    values = [v for v in (_num(r, name) for r in recs) if v is not None]
    return statistics.median(values) if values else None


def summarize(recs: list[Record]) -> dict[tuple[str, str], dict[str, float | None]]:
    """Medians per (scenario, impl) over recorded runs (rep >= 0)."""
    groups: dict[tuple[str, str], list[Record]] = {}
    for rec in recs:
        if isinstance(rec["rep"], int) and rec["rep"] >= 0:
            groups.setdefault((str(rec["scenario"]), str(rec["impl"])), []).append(rec)
    out = {}
    for key, group in groups.items():
        wall = _median(group, "wall")
        nbytes = _num(group[0], "bytes") or 0.0
        nfiles = _num(group[0], "files") or 0.0
        cpu = [
            (_num(r, "srv_user") or 0.0) + (_num(r, "srv_sys") or 0.0)
            for r in group
            if r.get("srv_user") is not None
        ]
        out[key] = {
            "wall": wall,
            "mibs": nbytes / 1048576 / wall if wall and nbytes and not nfiles else None,
            "files_s": nfiles / wall if wall and nfiles else None,
            "cpu": statistics.median(cpu) if cpu else None,
            "rss": _median(group, "srv_rss_mb"),
            "tree_rss": _median(group, "srv_tree_rss_mb"),
            "runs": float(len(group)),
            "failed": float(sum(1 for r in group if r.get("problem"))),
            "other": _median(group, "other_cpu"),
        }
    return out


def _f(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _rate(m: dict[str, float | None]) -> str:
    if m.get("files_s"):
        return f"{m['files_s']:.0f} files/s"
    if m.get("mibs"):
        return f"{m['mibs']:.0f} MiB/s"
    return "-"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{a / b:.2f}"


def main_table(summary: dict[tuple[str, str], dict[str, float | None]]) -> list[str]:
    """The comparison table: one row per scenario, git-annex vs annexproxy."""
    rows = [
        "| scenario | git-annex wall s | rate | gw CPU s | gw RSS MB | annexproxy wall s | rate"
        " | gw CPU s | gw RSS MB | speed x (ga/ap wall) | CPU x (ap/ga) | RSS x (ap/ga) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    scenarios = list(dict.fromkeys(s for s, i in summary if i != LIMIT))
    for scenario in scenarios:
        ga = summary.get((scenario, GA), {})
        ap = summary.get((scenario, AP), {})
        cells = [scenario]
        for m in (ga, ap):
            flag = f" ({m['failed']:.0f} failed)" if m.get("failed") else ""
            cells += [_f(m.get("wall")) + flag, _rate(m), _f(m.get("cpu")), _f(m.get("rss"), 0)]
        cells += [
            _ratio(ga.get("wall"), ap.get("wall")),
            _ratio(ap.get("cpu"), ga.get("cpu")),
            _ratio(ap.get("rss"), ga.get("rss")),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def limits_table(summary: dict[tuple[str, str], dict[str, float | None]]) -> list[str]:
    """The raw machine limits measured in the same run."""
    rows = ["| limit | wall s | MiB/s | server CPU s |", "|---|---|---|---|"]
    for (scenario, impl), m in summary.items():
        if impl == LIMIT:
            rows.append(f"| {scenario} | {_f(m['wall'], 3)} | {_rate(m)} | {_f(m['cpu'])} |")
    return rows


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("MET" if ok else "NOT MET")


Summary = dict[tuple[str, str], dict[str, float | None]]


def _pick(
    summary: Summary, impl: str, start: str, end: str = "", has: str = ""
) -> dict[str, float | None]:
    """The medians of the first row of ``impl`` whose name matches."""
    for (scenario, i), m in summary.items():
        if i == impl and scenario.startswith(start) and scenario.endswith(end) and has in scenario:
            return m
    return {}


def _line(what: str, ap: float | None, ga: float | None, limit: float, digits: int = 2) -> str:
    """One target ``ap/ga <= limit`` (or ``>=`` when limit > 1), with the verdict."""
    ratio = ap / ga if ap and ga else None
    ok = None if ratio is None else (ratio >= limit if limit > 1 else ratio <= limit)
    sign = ">=" if limit > 1 else "<="
    return (
        f"- {what}: annexproxy {_f(ap, digits)} vs git-annex {_f(ga, digits)} "
        f"(ap/ga {_f(ratio)}; target {sign} {limit:g}): {_verdict(ok)}"
    )


def targets(summary: Summary, branch: dict[str, float] | None) -> list[str]:
    """Issue 9's targets, each checked against this run's medians."""
    kga = _pick(summary, GA, "curl key", "via gateway")
    kap = _pick(summary, AP, "curl key", "via gateway")
    limit = _pick(summary, LIMIT, "curl", has="sendfile").get("mibs")
    ap_key = kap.get("mibs")
    out = [
        _line("proxied key download over HTTP, MiB/s", ap_key, kga.get("mibs"), 3, 0),
        f"- the same vs the sendfile limit {_f(limit, 0)} MiB/s (limit/ap {_ratio(limit, ap_key)};"
        f" target <= 1.3): {_verdict(limit / ap_key <= 1.3 if limit and ap_key else None)}",
    ]
    bga = _pick(summary, GA, "get ", "HTTP, via gateway", "MiB")
    bap = _pick(summary, AP, "get ", "HTTP, via gateway", "MiB")
    out.append(
        _line("gateway CPU s of the proxied get over HTTP", bap.get("cpu"), bga.get("cpu"), 0.33)
    )
    cga = _pick(summary, GA, "copy --to 3-node", "HTTP")
    cap = _pick(summary, AP, "copy --to 3-node", "HTTP")
    out.append(
        _line("3-node cluster upload over HTTP, wall s", cap.get("wall"), cga.get("wall"), 0.33)
    )
    durable = _pick(summary, LIMIT, "3 parallel durable writes").get("wall")
    if durable and cap.get("wall"):
        out.append(
            f"- the same vs the disk: 3 parallel durable writes take {_f(durable)} s "
            f"(ap/limit {_ratio(cap.get('wall'), durable)}; annexproxy fsyncs what it stores, "
            "git-annex does not)"
        )
    lax = _pick(summary, AP, "copy --to 3-node", "git-annex's durability)")
    if lax:
        out.append(
            _line(
                "the same at git-annex's durability (nodes without fsync), wall s",
                lax.get("wall"),
                cga.get("wall"),
                0.33,
            )
        )
    out.append(
        _line("3-node cluster upload over HTTP, server CPU s", cap.get("cpu"), cga.get("cpu"), 0.25)
    )
    rss = {s: m["rss"] for (s, i), m in summary.items() if i == AP and m.get("rss") is not None}
    peaks = {s: v for s, v in rss.items() if v is not None}
    if peaks:
        where = max(peaks, key=lambda s: peaks[s])
        out.append(
            f"- annexproxy gateway peak RSS: at most {peaks[where]:.0f} MB ({where}; "
            f"target < 80): {_verdict(peaks[where] < 80)}"
        )
    by_size = {s[len(SIZES) :]: v for s, v in peaks.items() if s.startswith(SIZES)}
    if by_size:
        listed = "; ".join(f"{s} {v:.0f} MB" for s, v in by_size.items())
        spread = max(by_size.values()) - min(by_size.values())
        flat = max(by_size.values()) < 80 and spread <= FLAT_MB
        out.append(
            f"- annexproxy gateway peak RSS by object size: {listed} (target < 80 and flat:"
            f" spread {spread:.0f} MB, at most {FLAT_MB}): {_verdict(flat)}"
        )
    direct = _pick(summary, GA, "", "HTTP, direct from node", "clients").get("mibs")
    nap = _pick(summary, AP, "", "HTTP, via gateway", "clients")
    rate = nap.get("mibs")
    ok = None if not rate or not direct else rate >= direct and not nap.get("failed")
    out.append(
        f"- concurrent clients via the annexproxy gateway {_f(rate, 0)} MiB/s vs direct"
        f" from git annex p2phttp {_f(direct, 0)} MiB/s (target >=, no errors; "
        f"{_f(nap.get('failed'), 0)} failed): {_verdict(ok)}"
    )
    sga = _pick(summary, GA, "get ", has="KiB")
    sap = _pick(summary, AP, "get ", has="KiB")
    out.append(_line("small-file get, gateway CPU s per run", sap.get("cpu"), sga.get("cpu"), 0.33))
    cga_small = _pick(summary, GA, "copy --to cluster", has="KiB")
    cap_small = _pick(summary, AP, "copy --to cluster", has="KiB")
    out.append(
        _line(
            "small-file copy to the cluster, gateway CPU s per run",
            cap_small.get("cpu"),
            cga_small.get("cpu"),
            0.33,
        )
    )
    if branch:
        out.append(
            f"- branch: locations of {branch['sample']:.0f} keys of {branch['keys']:.0f}: "
            f"{branch['seconds']:.3f} s, peak RSS {branch['rss_mb']:.0f} MB (target < 1 s, "
            f"< 200 MB): {_verdict(branch['seconds'] < 1 and branch['rss_mb'] < 200)}"
        )
    return out


def problems(recs: Iterable[Record]) -> list[str]:
    """Every run whose command failed or whose check did not hold."""
    return [
        f"- {r['scenario']} [{r['impl']}] rep {r['rep']}: {r['problem']}"
        for r in recs
        if r.get("problem")
    ]
