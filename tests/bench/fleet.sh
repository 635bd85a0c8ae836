#!/usr/bin/env bash
# tests/bench/fleet.sh: wall time of `zbk run` over a fleet of local hosts with --jobs 1
# and --jobs 4, against the plain floor (`rsync ... && zfs snapshot -o ...` per host, one after
# another), on one zfs-fuse pool. Prints a Markdown table (and writes it to --out FILE).
#
#   sudo tests/bench/fleet.sh [--hosts N] [--files N] [--cycles N] [--latency SECONDS] [--out FILE]
#   sudo tests/bench/fleet.sh --remote     # 50 hosts of 200 files, 1 s latency, 1 cycle
#
# Each contender gets its own copy of the hosts so every one does the same work: a first full
# copy, then --cycles incremental runs after a 1 % churn. --latency puts an rsync shim first on
# PATH for every contender, `rsync-latency-shim`, which waits that long before it becomes the
# real rsync: the time a remote client takes to connect and walk its tree, which the local
# trees here lack. ZBK_BIN=/path/to/zbk skips the build.
set -euo pipefail
cd "$(dirname "$0")/../.."

hosts=20 files=2000 cycles=3 latency=0 out=''
command_line="tests/bench/fleet.sh${*:+ $*}"
while [ $# -gt 0 ]; do
    case "$1" in
        --hosts) hosts=$2; shift 2 ;;
        --files) files=$2; shift 2 ;;
        --cycles) cycles=$2; shift 2 ;;
        --latency) latency=$2; shift 2 ;;
        --remote) hosts=50 files=200 cycles=1 latency=1; shift ;;
        --out) out=$2; shift 2 ;;
        -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "fleet.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
for n in "$hosts" "$files" "$cycles"; do
    [[ $n =~ ^[0-9]+$ ]] || { echo "fleet.sh: $n is not a number" >&2; exit 2; }
done
[[ $latency =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "fleet.sh: --latency $latency is not a number of seconds" >&2; exit 2; }
if [ "$(id -u)" -ne 0 ]; then
    echo "fleet.sh: the benchmark creates a ZFS pool and needs root: sudo $0" >&2
    exit 1
fi
export PATH="$HOME/.cargo/bin:/usr/local/sbin:/usr/sbin:/sbin:$PATH"

# shellcheck source=tests/lib/zfs-fuse.sh
. tests/lib/zfs-fuse.sh
ensure_zfs_fuse_daemon tests/bench/fleet.sh
if [ -z "${ZBK_BIN:-}" ]; then
    cargo build --release --locked --quiet
    ZBK_BIN=$PWD/target/release/zbk
fi

# Every call that mounts or unmounts takes the lock zbk takes (src/sys/zfs.rs MOUNT_LOCK): two at
# once can wedge the zfs-fuse daemon.
locked() { mkdir -p /run/lock && flock /run/lock/zbk-zfs-fuse-mount.lock "$@"; }
work=$(mktemp -d /var/tmp/zbkfleet.XXXXXX)
pool="zbkfleet$$"
cleanup() {
    for _ in 1 2 3 4 5; do locked zpool destroy -f "$pool" 2>/dev/null && break; sleep 0.5; done
    rm -rf "$work"
}
trap cleanup EXIT

truncate -s 4G "$work/pool.img"
locked zpool create -m "$work/root" "$pool" "$work/pool.img"
zbk() { "$ZBK_BIN" --root "$work/root" "$@"; }
zbk init "$pool" >/dev/null

# One seeded source tree per host: `files` small files in 20 directories.
python3 - "$work/src" "$hosts" "$files" <<'PY'
import os, random, sys
root, hosts, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(42)
for h in range(hosts):
    for i in range(files):
        d = os.path.join(root, f"h{h:02}", f"dir{i % 20:02}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i:05}"), "wb") as f:
            f.write(rng.randbytes(rng.randint(100, 8000)))
PY
churn() {
    python3 - "$work/src" "$1" <<'PY'
import os, random, sys
root, seed = sys.argv[1], int(sys.argv[2])
rng = random.Random(seed)
paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)
for p in rng.sample(paths, max(1, len(paths) // 100)):
    with open(p, "ab") as f:
        f.write(rng.randbytes(512))
PY
}

for set in j1 j4; do
    for h in $(seq -f %02g 0 $((hosts - 1))); do
        zbk add "$set-$h" --source "$work/src/h$h/" >/dev/null
    done
done
locked zfs create "$pool/floor"
for h in $(seq -f %02g 0 $((hosts - 1))); do
    locked zfs create "$pool/floor/h$h"
done
real_rsync=$(command -v rsync)
if [ "$latency" != 0 ]; then
    mkdir -p "$work/rsync-latency-shim"
    printf '#!/bin/sh\n# rsync-latency-shim: a remote client'"'"'s delay, then the real rsync.\nsleep %s\nexec %s "$@"\n' \
        "$latency" "$real_rsync" >"$work/rsync-latency-shim/rsync"
    chmod 755 "$work/rsync-latency-shim/rsync"
    export PATH="$work/rsync-latency-shim:$PATH"
fi

now() { date +%s.%N; }
declare -A total
time_it() { # NAME CMD...
    local t0 t1
    t0=$(now)
    "${@:2}" >/dev/null 2>"$work/err" || { echo "fleet.sh: $1 failed:" >&2; cat "$work/err" >&2; exit 1; }
    t1=$(now)
    total[$1]=$(python3 -c "print(${total[$1]:-0} + $t1 - $t0)")
}
floor() {
    local h
    for h in $(seq -f %02g 0 $((hosts - 1))); do
        rsync --inplace --no-whole-file -a -H --numeric-ids --delete "$work/src/h$h/" "$work/root/floor/h$h/" &&
            zfs snapshot -o zbk:expires=2099-01-01T00:00:00Z -o zbk:tier=default -o zbk:status=ok \
                "$pool/floor/h$h@c$1"
    done
}
j1=() j4=()
for h in $(seq -f %02g 0 $((hosts - 1))); do j1+=("j1-$h"); j4+=("j4-$h"); done

for cycle in $(seq 0 "$cycles"); do
    [ "$cycle" -gt 0 ] && churn "$cycle"
    time_it floor floor "$cycle"
    time_it jobs1 zbk run "${j1[@]}" --jobs 1
    time_it jobs4 zbk run "${j4[@]}" --jobs 4
done

# The copies must be faithful, or the timings mean nothing.
for h in $(seq -f %02g 0 $((hosts - 1))); do
    for copy in "$work/root/floor/h$h" "$work/root/hosts/j1-$h/d$work/src/h$h" "$work/root/hosts/j4-$h/d$work/src/h$h"; do
        diff -rq "$work/src/h$h" "$copy" >/dev/null || { echo "fleet.sh: $copy differs from its source" >&2; exit 1; }
    done
done

ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
secs() { python3 -c "print(f'{$1:.2f}')"; }
table() {
    echo "Command: \`sudo $command_line\`: $hosts hosts x $files files, $((cycles + 1)) cycles (a full copy, then $cycles after a 1 % churn), rsync latency ${latency} s."
    echo
    echo "| contender | total s | vs floor | jobs 1 / this |"
    echo "|---|---|---|---|"
    echo "| floor: rsync && zfs snapshot, one host after another | $(secs "${total[floor]}") | 1.00 | $(ratio "${total[jobs1]}" "${total[floor]}") |"
    echo "| zbk run --jobs 1 | $(secs "${total[jobs1]}") | $(ratio "${total[jobs1]}" "${total[floor]}") | 1.00 |"
    echo "| zbk run --jobs 4 | $(secs "${total[jobs4]}") | $(ratio "${total[jobs4]}" "${total[floor]}") | $(ratio "${total[jobs1]}" "${total[jobs4]}") |"
    echo
    echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r), $(dpkg-query -W -f '${Package} ${Version}' zfs-fuse 2>/dev/null), $("$real_rsync" --version | head -1); load average at the end $(cut -d' ' -f1-3 /proc/loadavg)."
}
if [ -n "$out" ]; then
    mkdir -p "$(dirname "$out")"
    table | tee "$out"
else
    table
fi
