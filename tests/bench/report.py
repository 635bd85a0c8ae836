#!/usr/bin/env python3
# tests/bench/report.py: turns the raw measurements bench.sh records (one TSV line each) into
# the Markdown tables with the zbk/contender and zbk/floor ratios, and judges the targets.
"""Usage: report.py RESULTS.tsv   (lines: section TAB contender TAB metric TAB value)"""

import statistics
import sys
from collections import defaultdict

CYCLE_ROWS = [
    ("zbk", "zbk run"),
    ("zbk-nax", "zbk run, rsync args without --acls --xattrs (host config)"),
    ("floor", "floor: rsync --inplace --no-whole-file && zfs snapshot"),
    ("rsnap-ld", "rsnapshot link_dest 1"),
    ("rsnap-cp", "rsnapshot cp -al (link_dest 0)"),
]
REAP_ROWS = [
    ("zbk", "zbk reap"),
    ("naive", "naive loop: zfs get + zfs destroy per snapshot"),
    ("raw", "floor: raw zfs destroy loop on the known names"),
    ("par4", "reference: the same destroys, 4 in parallel (xargs -P 4)"),
]
LIST_ROWS = [
    ("zbk-list", "zbk list --json"),
    ("zbk-status", "zbk status"),
    ("zbk-report", "zbk report --html (the page)"),
    ("raw", "floor: one zfs get -H -p -r of the same properties"),
]


def load(path):
    data = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    with open(path) as f:
        for line in f:
            section, who, metric, value = line.rstrip("\n").split("\t")
            data[section][who][metric].append(value)
    return data


def num(values):
    return [float(v) for v in values]


def fmt_s(x):
    return "–" if x is None else (f"{x:.3f}" if x < 10 else f"{x:.1f}")


def mib(x):
    return "–" if x is None else f"{x / (1 << 20):.1f}"


def ratio(a, b):
    return "–" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def median(values):
    return statistics.median(values) if values else None


def cycles_table(d, meta, out):
    c = d["cycles"]
    out.append(f"### Backup cycles: {meta.get('files', '?')} small files, large files "
               f"{meta.get('large_mib', '?')} + 2×{int(meta.get('large_mib', '0')) // 4} MiB, "
               f"{meta.get('cycles', '?')} churn cycles after the initial copy; rsnapshot "
               f"`retain alpha {meta.get('retain_alpha', '6')}`\n")
    out.append("| Contender | initial copy s | cycle median s | min s | max s "
               "| zbk/this (median) | peak RSS MiB | used MiB | usedbysnapshots MiB "
               "| du -sb MiB | zbk/this (used) | restore points |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    zbk_med = median(num(c["zbk"]["cycle"]))
    zbk_used = median(num(c["zbk"]["used"]))
    for key, label in CYCLE_ROWS:
        m = c.get(key)
        if m is None:
            out.append(f"| {label} | not run | | | | | | | | | | |")
            continue
        cyc = num(m["cycle"])
        init = median(num(m["init"]))
        rss = max(num(m["rss"])) * 1024 if m["rss"] else None
        used = median(num(m["used"]))
        snap = median(num(m["usedsnap"]))
        du = median(num(m["du"])) if m["du"] else None
        # rsnapshot's alpha level drops the oldest copy beyond its retain count.
        points = int(meta.get("cycles", 0)) + 1
        if key.startswith("rsnap"):
            points = min(points, int(meta.get("retain_alpha", 6)))
        out.append(
            f"| {label} | {fmt_s(init)} | {fmt_s(median(cyc))} | {fmt_s(min(cyc))} "
            f"| {fmt_s(max(cyc))} | {ratio(zbk_med, median(cyc))} | {mib(rss)} | {mib(used)} "
            f"| {mib(snap)} | {mib(du)} | {ratio(zbk_used, used)} | {points} |")
    z = c["zbk"]
    if z["zfsprocs"]:
        out.append(f"\nOne `zbk run` starts {z['zfsprocs'][0]} `zfs` and "
                   f"{z['rsyncprocs'][0]} `rsync` processes (counted by PATH shims in an extra, "
                   f"untimed run); the floor starts 1 and 1.")
    out.append("")


def reap_table(d, meta, out):
    r = d["reap"]
    out.append(f"### Reap: {meta.get('reap_hosts', '?')} hosts × {meta.get('reap_snaps', '?')} "
               f"snapshots, {meta.get('reap_expired', '?')} expired\n")
    out.append("| Contender | wall s | zfs processes | listing calls | destroyed | zbk/this |")
    out.append("|---|---|---|---|---|---|")
    zbk = median(num(r["zbk"]["wall"])) if "zbk" in r else None
    for key, label in REAP_ROWS:
        m = r.get(key)
        if m is None:
            out.append(f"| {label} | not run | | | | |")
            continue
        wall = median(num(m["wall"]))
        out.append(f"| {label} | {fmt_s(wall)} | {m['procs'][0]} | {m['listings'][0]} "
                   f"| {m['destroyed'][0]} | {ratio(zbk, wall)} |")
    out.append("")


def list_table(d, meta, out):
    li = d["list"]
    out.append(f"### Listing: {meta.get('list_hosts', '?')} hosts × "
               f"{meta.get('list_snaps', '?')} snapshots "
               f"({int(meta.get('list_hosts', 0)) * int(meta.get('list_snaps', 0))} in all), "
               f"median of {meta.get('list_reps', '?')} runs\n")
    out.append("| Contender | wall median s | min s | max s | peak RSS MiB | zbk/this |")
    out.append("|---|---|---|---|---|---|")
    zbk = median(num(li["zbk-list"]["wall"])) if "zbk-list" in li else None
    for key, label in LIST_ROWS:
        m = li.get(key)
        if m is None or not m["wall"]:
            why = m["skipped"][0] if m and m["skipped"] else "not run"
            out.append(f"| {label} | {why} | | | | |")
            continue
        w = num(m["wall"])
        rss = max(num(m["rss"])) * 1024 if m["rss"] else None
        out.append(f"| {label} | {fmt_s(median(w))} | {fmt_s(min(w))} | {fmt_s(max(w))} "
                   f"| {mib(rss)} | {ratio(zbk, median(w))} |")
    out.append("")


def targets(d, out):
    c, r = d["cycles"], d["reap"]
    rows = []

    def med(sec, who, metric):
        m = sec.get(who)
        return median(num(m[metric])) if m and m[metric] else None

    zbk, floor = med(c, "zbk", "cycle"), med(c, "floor", "cycle")
    if zbk and floor:
        rows.append(("zbk per cycle within 5 % of the floor", f"zbk/floor = {zbk / floor:.3f}",
                     zbk <= floor * 1.05))
    nax = med(c, "zbk-nax", "cycle")
    if nax and floor:
        rows.append(("(same, zbk without rsync -A -X, see the note)", f"zbk/floor = {nax / floor:.3f}",
                     nax <= floor * 1.05))
    for who, label in (("rsnap-ld", "link_dest"), ("rsnap-cp", "cp -al")):
        other = med(c, who, "cycle")
        if zbk and other:
            rows.append((f"faster than rsnapshot {label} on the many-files tree",
                         f"zbk/rsnapshot = {zbk / other:.3f}", zbk < other))
    zu = med(c, "zbk", "used")
    for who, label in (("rsnap-ld", "link_dest"), ("rsnap-cp", "cp -al")):
        other = med(c, who, "used")
        if zu and other:
            rows.append((f"space under a fifth of rsnapshot {label}'s",
                         f"zbk/rsnapshot = {zu / other:.3f}", zu < other / 5))
    zr, raw = med(r, "zbk", "wall"), med(r, "raw", "wall")
    if zr and raw:
        listings = r["zbk"]["listings"][0]
        rows.append(("reap within 10 % of the raw destroys, one listing call",
                     f"zbk/raw = {zr / raw:.3f}, listing calls {listings}",
                     zr <= raw * 1.10 and listings == "1"))
    out.append("### Targets\n")
    out.append("| Target | measured | met |")
    out.append("|---|---|---|")
    for name, measured, met in rows:
        out.append(f"| {name} | {measured} | {'yes' if met else '**no**'} |")
    out.append("")


def main():
    d = load(sys.argv[1])
    meta = {k: v[0] for k, v in d["meta"]["run"].items()}
    out = []
    if "cycles" in d:
        cycles_table(d, meta, out)
    if "reap" in d:
        reap_table(d, meta, out)
    if "list" in d:
        list_table(d, meta, out)
    targets(d, out)
    print("\n".join(out))


if __name__ == "__main__":
    main()
