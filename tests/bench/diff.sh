#!/usr/bin/env bash
# tests/bench/diff.sh: `zbk diff` of one churn cycle of the benchmark workload, next to
# `rsync -n --itemize-changes` between the same two snapshots and, on OpenZFS, raw `zfs diff`.
# Prints a Markdown table and writes it to target/bench/diff.md (or --out FILE).
#
#   sudo tests/bench/diff.sh [--files N] [--large-mib N] [--seed N] [--reps N] [--out FILE]
#
# ZBK_BIN=/path/to/zbk skips the release build. The pool (zbkdiff<pid>) lives on a file in a
# temporary directory and is destroyed on exit; on OpenZFS, where file vdevs may not work,
# POOL_DEV=/dev/... names a disk to use instead.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
files=20000 large_mib=16 seed=7 reps=3
out="$repo/target/bench/diff.md"
while [ $# -gt 0 ]; do
    case $1 in
    --files) files=$2; shift ;;
    --large-mib) large_mib=$2; shift ;;
    --seed) seed=$2; shift ;;
    --reps) reps=$2; shift ;;
    --out) out=$2; shift ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "diff.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
for n in "$files" "$large_mib" "$seed" "$reps"; do
    [[ $n =~ ^[0-9]+$ ]] || { echo "diff.sh: $n is not a number" >&2; exit 2; }
done
if [ "$(id -u)" -ne 0 ]; then
    echo "diff.sh: the benchmark creates a ZFS pool and needs root: sudo $0" >&2
    exit 1
fi
# Appended, not prepended: an OpenZFS earlier on PATH must win over a zfs-fuse in /usr/sbin.
export PATH="$PATH:$HOME/.cargo/bin:/usr/local/sbin:/usr/sbin:/sbin"
export LC_ALL=C
openzfs=0
zfs version >/dev/null 2>&1 && openzfs=1
if [ "$openzfs" = 0 ]; then
    # shellcheck source=tests/lib/zfs-fuse.sh
    . "$repo/tests/lib/zfs-fuse.sh"
    ensure_zfs_fuse_daemon diff.sh
fi
if [ -z "${ZBK_BIN:-}" ]; then
    (cd "$repo" && cargo build --release --locked --quiet --bin zbk)
fi

work=$(mktemp -d "${TMPDIR:-/var/tmp}/zbkdiff.XXXXXX")
pool=zbkdiff$$
root=$work/root
lock=/run/lock/zbk-zfs-fuse-mount.lock
cleanup() {
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        zpool list "$pool" >/dev/null 2>&1 || break
        zpool destroy -f "$pool" 2>/dev/null && break
        sleep 0.3
    done
    if zpool list "$pool" >/dev/null 2>&1; then
        echo "diff.sh: could not destroy $pool; left $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cp "${ZBK_BIN:-$repo/target/release/zbk}" "$work/zbk"
zbk=("$work/zbk" --root "$root")
say() { printf "diff %(%H:%M:%S)T: %s\n" -1 "$*" >&2; }

# Every mount on zfs-fuse takes the lock zbk takes (src/sys/zfs.rs MOUNT_LOCK).
mkdir -p /run/lock
if [ -n "${POOL_DEV:-}" ]; then
    zpool create -o cachefile=none -m "$root" "$pool" "$POOL_DEV"
else
    truncate -s $((files * 48 / 1024 + large_mib * 8 + 1024))M "$work/pool.img"
    flock "$lock" zpool create -m "$root" "$pool" "$work/pool.img"
fi
say "generating $files files and $large_mib MiB of large files"
python3 "$here/workload.py" generate "$work/src" --seed "$seed" --files "$files" --large-mib "$large_mib"
"${zbk[@]}" init "$pool" >/dev/null
"${zbk[@]}" add bench --source "$work/src/" >/dev/null
if [ "$openzfs" = 0 ]; then
    # zfs-fuse stores no ACLs or xattrs.
    printf '\n[rsync]\nargs = [%s]\n' '"--archive", "--hard-links", "--numeric-ids", "--delete", "--delete-excluded", "--relative", "--inplace", "--no-whole-file"' \
        >>"$root/hosts/bench/c/zbk.toml"
fi
"${zbk[@]}" run bench
python3 "$here/workload.py" churn "$work/src" --seed "$seed" --cycle 1
"${zbk[@]}" run bench
ds=$pool/hosts/bench
mapfile -t snaps < <(zfs list -H -t snapshot -o name -s createtxg -d 1 "$ds" | cut -d@ -f2)
from=${snaps[0]} to=${snaps[1]}

# rsync reads the two snapshots through .zfs/snapshot (OpenZFS) or read-only clones made
# beforehand (zfs-fuse, untimed here: zbk diff's own clones are inside its time).
if [ "$openzfs" = 1 ]; then
    a=$root/hosts/bench/.zfs/snapshot/$from/d b=$root/hosts/bench/.zfs/snapshot/$to/d
else
    zfs create -o mountpoint=none -o canmount=off "$pool/cmp"
    for s in "$from" "$to"; do
        flock "$lock" zfs clone -o readonly=on -o "mountpoint=$work/cmp-$s" "$ds@$s" "$pool/cmp/$s"
    done
    a=$work/cmp-$from/d b=$work/cmp-$to/d
fi

results=$work/results.tsv
: >"$results"
# measure NAME CMD...: the first run's wall time (for rsync, on clones nothing has read yet;
# zbk diff makes fresh clones every time), the best of $reps, and the lines printed.
measure() {
    local name=$1 best='' first='' t0 t1 t lines
    shift
    for ((i = 0; i < reps; i++)); do
        t0=$(date +%s.%N)
        "$@" >"$work/out" 2>"$work/err" || { say "FAILED: $*"; cat "$work/err" >&2; exit 1; }
        t1=$(date +%s.%N)
        t=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
        [ -z "$first" ] && first=$t
        if [ -z "$best" ] || awk -v t="$t" -v b="$best" 'BEGIN { exit !(t < b) }'; then best=$t; fi
    done
    lines=$(wc -l <"$work/out")
    printf '%s\t%s\t%s\t%s\n' "$name" "$first" "$best" "$lines" >>"$results"
    say "$name: first ${first}s, best ${best}s, $lines lines"
}
# rsync first, while its clones are still unread.
measure "rsync -n --itemize-changes" rsync -n -a -H --numeric-ids --delete --itemize-changes "$a/" "$b/"
measure "zbk diff" "${zbk[@]}" diff bench "$from" "$to"
measure "zbk diff --json" "${zbk[@]}" diff bench "$from" "$to" --json
measure "zbk diff --stat" "${zbk[@]}" diff bench "$from" "$to" --stat
# What reaching the two snapshots costs alone: a --path that matches nothing walks nothing.
measure "zbk diff --path /nonexistent" "${zbk[@]}" diff bench "$from" "$to" --path /nonexistent
if [ "$openzfs" = 1 ]; then
    measure "zfs diff -FHt" zfs diff -FHt "$ds@$from" "$ds@$to"
fi
if [ "$openzfs" = 0 ]; then
    for s in "$from" "$to"; do
        zfs unmount "$pool/cmp/$s" || true
        # zfs-fuse may still be busy with the unmount: retry a little.
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            zfs destroy "$pool/cmp/$s" 2>/dev/null && break
            sleep 0.3
        done
    done
fi
changed=$(zfs get -H -o value zbk:changes "$ds@$to")

mkdir -p "$(dirname "$out")"
{
    printf '%s\n\n' "\`tests/bench/diff.sh --files $files --large-mib $large_mib --seed $seed --reps $reps\`, $(date -u +%Y-%m-%d), $([ "$openzfs" = 1 ] && zfs version | head -1 || echo zfs-fuse), $(nproc) cores; the second run's zbk:changes: \`$changed\`."
    printf '| command | first run (s) | best of %s (s) | lines |\n|---|---:|---:|---:|\n' "$reps"
    awk -F'\t' '{ printf "| `%s` | %s | %s | %s |\n", $1, $2, $3, $4 }' "$results"
} | tee "$out"
