#!/usr/bin/env bash
# tests/bench/verify.sh: `zbk verify --full` of the benchmark workload's tree against a plain
# `rsync -c -n` of the same tree into the same snapshot, and one slice (`zbk verify`, 30 slices)
# against the full verify. Prints a Markdown table and writes it to target/bench/verify.md (or
# --out FILE).
#
#   sudo tests/bench/verify.sh [--files N] [--large-mib N] [--seed N] [--reps N] [--out FILE]
#
# ZBK_BIN=/path/to/zbk skips the release build. The pool (zbkverify<pid>) lives on a file in a
# temporary directory and is destroyed on exit; on OpenZFS, where file vdevs may not work,
# POOL_DEV=/dev/... names a disk to use instead.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
files=20000 large_mib=16 seed=7 reps=3
out="$repo/target/bench/verify.md"
while [ $# -gt 0 ]; do
    case $1 in
    --files) files=$2; shift ;;
    --large-mib) large_mib=$2; shift ;;
    --seed) seed=$2; shift ;;
    --reps) reps=$2; shift ;;
    --out) out=$2; shift ;;
    -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "verify.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
for n in "$files" "$large_mib" "$seed" "$reps"; do
    [[ $n =~ ^[0-9]+$ ]] || { echo "verify.sh: $n is not a number" >&2; exit 2; }
done
if [ "$(id -u)" -ne 0 ]; then
    echo "verify.sh: the benchmark creates a ZFS pool and needs root: sudo $0" >&2
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
    ensure_zfs_fuse_daemon verify.sh
fi
if [ -z "${ZBK_BIN:-}" ]; then
    (cd "$repo" && cargo build --release --locked --quiet --bin zbk)
fi

work=$(mktemp -d "${TMPDIR:-/var/tmp}/zbkverify.XXXXXX")
pool=zbkverify$$
root=$work/root
lock=/run/lock/zbk-zfs-fuse-mount.lock
cmp=''
cleanup() {
    if [ -n "$cmp" ]; then
        zfs unmount "$pool/cmp/snap" 2>/dev/null || true
    fi
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        zpool list "$pool" >/dev/null 2>&1 || break
        zpool destroy -f "$pool" 2>/dev/null && break
        sleep 0.3
    done
    if zpool list "$pool" >/dev/null 2>&1; then
        echo "verify.sh: could not destroy $pool; left $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cp "${ZBK_BIN:-$repo/target/release/zbk}" "$work/zbk"
zbk=("$work/zbk" --root "$root")
say() { printf "verify %(%H:%M:%S)T: %s\n" -1 "$*" >&2; }

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
args='"--archive", "--hard-links", "--numeric-ids", "--delete", "--delete-excluded", "--relative", "--inplace", "--no-whole-file"'
if [ "$openzfs" = 0 ]; then
    # zfs-fuse stores no ACLs or xattrs.
    printf '\n[rsync]\nargs = [%s]\n' "$args" >>"$root/hosts/bench/c/zbk.toml"
fi
"${zbk[@]}" run bench
ds=$pool/hosts/bench
snap=$(zfs list -H -t snapshot -o name -s createtxg -d 1 "$ds" | tail -1 | cut -d@ -f2)

# The plain rsync reads the snapshot through .zfs/snapshot (OpenZFS) or, on zfs-fuse, through a
# read-only clone, as zbk verify does: a fresh one for every timed pass (made and destroyed
# outside the time), since a clone the kernel has already read through is far faster on
# zfs-fuse than the fresh one zbk verify reads; the warm one is timed too, for reference.
clone() {
    flock "$lock" zfs clone -o readonly=on -o "mountpoint=$work/cmp" "$ds@$snap" "$pool/cmp/snap"
    cmp=$work/cmp
}
unclone() {
    zfs unmount "$pool/cmp/snap" || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        zfs destroy "$pool/cmp/snap" 2>/dev/null && break
        sleep 0.3
    done
    cmp=''
}
if [ "$openzfs" = 1 ]; then
    tree=$root/hosts/bench/.zfs/snapshot/$snap/d
else
    zfs create -o mountpoint=none -o canmount=off "$pool/cmp"
    tree=$work/cmp/d
fi
dest=$tree$work/src/

results=$work/results.tsv
: >"$results"
# measure NAME CMD...: the first run's wall time, the best of $reps, and the median. With
# FRESH=1 in its environment, a fresh clone is made before each pass and destroyed after it,
# outside the time (zfs-fuse).
measure() {
    local name=$1 t0 t1 times=()
    shift
    for ((i = 0; i < reps; i++)); do
        [ "${FRESH:-0}" = 1 ] && [ "$openzfs" = 0 ] && clone
        t0=$(date +%s.%N)
        "$@" >"$work/out" 2>"$work/err" || { say "FAILED: $*"; cat "$work/err" >&2; exit 1; }
        t1=$(date +%s.%N)
        [ "${FRESH:-0}" = 1 ] && [ "$openzfs" = 0 ] && unclone
        times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')")
    done
    local sorted best median
    sorted=$(printf '%s\n' "${times[@]}" | sort -n)
    best=$(head -1 <<<"$sorted")
    median=$(sed -n "$(((reps + 1) / 2))p" <<<"$sorted")
    printf '%s\t%s\t%s\t%s\n' "$name" "${times[0]}" "$best" "$median" >>"$results"
    say "$name: first ${times[0]}s, best ${best}s, median ${median}s"
}
# The same rsync arguments as the host's: on OpenZFS its defaults keep ACLs and xattrs too.
keep=()
[ "$openzfs" = 1 ] && keep=(-A -X)
plain=(rsync -n -c -a -H "${keep[@]}" --numeric-ids --delete --itemize-changes "$work/src/" "$dest")
# The source's pages are warm for every pass alike: one untimed pass reads them first.
[ "$openzfs" = 0 ] && clone
rsync -n -c -a -H --numeric-ids "$work/src/" "$dest" >/dev/null
[ "$openzfs" = 0 ] && unclone
FRESH=1 measure "rsync -c -n" "${plain[@]}"
measure "zbk verify --full" "${zbk[@]}" verify bench --full
measure "zbk verify (one slice of 30)" "${zbk[@]}" verify bench
if [ "$openzfs" = 0 ]; then
    clone
    rsync -n -c -a -H --numeric-ids "$work/src/" "$dest" >/dev/null
    measure "rsync -c -n, clone already read (reference)" "${plain[@]}"
    unclone
fi
stamp=$(zfs get -H -o value zbk:verified "$ds@$snap" | cut -d' ' -f1-6)

mkdir -p "$(dirname "$out")"
{
    printf '%s\n\n' "\`tests/bench/verify.sh --files $files --large-mib $large_mib --seed $seed --reps $reps\`, $(date -u +%Y-%m-%d), $([ "$openzfs" = 1 ] && zfs version | head -1 || echo zfs-fuse), $(nproc) cores; the last stamp: \`$stamp\`."
    printf '| command | first run (s) | best of %s (s) | median (s) | ratio (median) |\n|---|---:|---:|---:|---|\n' "$reps"
    awk -F'\t' '
        NR == 1 { rsync = $4 }
        NR == 2 { full = $4 }
        {
            ratio = ""
            if (NR == 2) ratio = sprintf("%.2f x rsync -c -n (goal <= 1.1)", $4 / rsync)
            if (NR == 3) ratio = sprintf("1/%.0f of --full (goal <= 1/20)", full / $4)
            printf "| `%s` | %s | %s | %s | %s |\n", $1, $2, $3, $4, ratio
        }' "$results"
} | tee "$out"
