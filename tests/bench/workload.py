#!/usr/bin/env python3
# tests/bench/workload.py: the benchmark's seeded workload: a source tree, its per-cycle churn,
# and bulk snapshot creation for the reap and list pools. Same seed and flags, same bytes.
"""Workload generator for tests/bench/bench.sh.

generate  DIR --seed S --files N --large-mib M   many small files, hard links, symlinks, and
                                                 three large files (two change in place)
churn     DIR --seed S --cycle C                 ~1 % of the small files rewritten, deleted or
                                                 added; small in-place writes in the large files
snapshots --plan FILE --workers W                create snapshots listed in FILE, one host's in
                                                 order, hosts in parallel (setup, not timed)
"""

import argparse
import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

MIB = 1 << 20
PER_DIR = 100
# The large files: name, share of --large-mib, in-place writes per churn (0: never changes).
LARGE = [("db.img", 1.0, 32), ("vm.img", 0.25, 8), ("archive.bin", 0.25, 0)]
WRITE = 4096


def small_content(rng, size):
    # Hex text compresses about 2:1, like source trees and logs; random bytes would not.
    return rng.randbytes((size + 1) // 2).hex()[:size].encode()


def small_size(rng):
    # Log-uniform 128 B .. 32 KiB: mostly small files, a mean of about 5 KiB.
    return int(2 ** rng.uniform(7, 15))


def small_path(root, i):
    return os.path.join(root, "small", f"d{i // (PER_DIR * PER_DIR):03d}",
                        f"e{(i // PER_DIR) % PER_DIR:02d}", f"f{i:06d}.txt")


def write_file(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def generate(args):
    rng = random.Random(args.seed)
    root = args.dir
    for i in range(args.files):
        write_file(small_path(root, i), small_content(rng, small_size(rng)))
    # A few hard links and symlinks so -H and symlink handling cost what they cost.
    links = os.path.join(root, "links")
    os.makedirs(links, exist_ok=True)
    for j in range(max(1, args.files // 1000)):
        target = small_path(root, rng.randrange(args.files))
        os.link(target, os.path.join(links, f"hard{j:04d}"))
        os.symlink(os.path.relpath(target, links), os.path.join(links, f"sym{j:04d}"))
    large = os.path.join(root, "large")
    os.makedirs(large, exist_ok=True)
    for name, share, _ in LARGE:
        size = max(1, int(args.large_mib * share)) * MIB
        # Random bytes: database pages and disk images compress poorly.
        with open(os.path.join(large, name), "wb") as f:
            for _ in range(size // MIB):
                f.write(rng.randbytes(MIB))


def listed_small(root):
    out = []
    for d, _, files in os.walk(os.path.join(root, "small")):
        out.extend(os.path.join(d, f) for f in files)
    # os.walk order depends on the filesystem; sorting keeps the churn seeded.
    return sorted(out)


def churn(args):
    rng = random.Random(args.seed * 1_000_003 + args.cycle)
    root = args.dir
    files = listed_small(root)
    k = max(3, round(len(files) * args.fraction))
    picked = rng.sample(files, min(k, len(files)))
    n_delete = max(1, k // 10)
    n_add = max(1, k // 10)
    for path in picked[n_delete:]:
        write_file(path, small_content(rng, small_size(rng)))
    for path in picked[:n_delete]:
        os.unlink(path)
    for j in range(n_add):
        name = os.path.join(root, "small", "new", f"c{args.cycle:04d}", f"n{j:05d}.txt")
        write_file(name, small_content(rng, small_size(rng)))
    # In place, the way a database or a VM image changes: same size, a few blocks rewritten.
    for name, _, writes in LARGE:
        if not writes:
            continue
        path = os.path.join(root, "large", name)
        size = os.path.getsize(path)
        fd = os.open(path, os.O_WRONLY)
        try:
            for _ in range(writes):
                offset = rng.randrange(size // WRITE) * WRITE
                os.pwrite(fd, rng.randbytes(WRITE), offset)
        finally:
            os.close(fd)


def snapshots(args):
    # Plan lines: dataset TAB snapshot-name TAB expires TAB tier TAB status.
    per_ds = {}
    with open(args.plan) as f:
        for line in f:
            ds, name, expires, tier, status = line.rstrip("\n").split("\t")
            per_ds.setdefault(ds, []).append((name, expires, tier, status))

    def one_dataset(ds):
        # In order within a dataset: createtxg order is the age order reap relies on.
        for name, expires, tier, status in per_ds[ds]:
            subprocess.run(["zfs", "snapshot", "-o", f"zbk:expires={expires}",
                            "-o", f"zbk:tier={tier}", "-o", f"zbk:status={status}",
                            f"{ds}@{name}"], check=True)

    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        for _ in pool.map(one_dataset, list(per_ds)):
            pass


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("dir")
    g.add_argument("--seed", type=int, default=7)
    g.add_argument("--files", type=int, default=20000)
    g.add_argument("--large-mib", type=int, default=64)
    c = sub.add_parser("churn")
    c.add_argument("dir")
    c.add_argument("--seed", type=int, default=7)
    c.add_argument("--cycle", type=int, required=True)
    c.add_argument("--fraction", type=float, default=0.01)
    s = sub.add_parser("snapshots")
    s.add_argument("--plan", required=True)
    s.add_argument("--workers", type=int, default=4)
    args = p.parse_args()
    {"generate": generate, "churn": churn, "snapshots": snapshots}[args.cmd](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
