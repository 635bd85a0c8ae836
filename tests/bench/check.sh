#!/usr/bin/env bash
# tests/bench/check.sh: `zbk check` and `zbk status` (its summary view) against the number of
# snapshots, next to one `zfs get` of the host datasets (what they read when every host's zbk:record holds) and
# to check without records (the full listing every check read before the records). Hosts stay
# fixed, snapshots per host grow by levels; at each level one `zbk run` of every host writes
# the records, as runs do. Prints a Markdown table.
#
#   flock -s /work/locks/daemon.lock tests/bench/check.sh [--hosts N] [--levels "10 100"] [--reps N] [--out FILE]
#   sudo tests/bench/check.sh --openzfs [--hosts N] [--levels "10 100 1000"] ...   # in the OpenZFS VM
#   ... --full-upto LEVEL: time the check without records only at levels up to LEVEL
#   ... --baseline BIN: also time check and status of another zbk build (say, before a
#       change) on the same pool, right after this one's
#
# Snapshots are made a round at a time: on OpenZFS one `zfs snapshot` names a snapshot of every
# host, with the stamps given by -o, in one atomic call (a filesystem takes one snapshot per
# call); zfs-fuse takes one name per call, so `zfs snapshot -r` of the hosts dataset makes one
# per host, and the hosts dataset's own snapshot is destroyed again. The time each level's
# snapshots took is printed. The check without records reads the full listing, minutes at
# 100,000 under emulation: timed once, and not at all past --full-upto.
set -euo pipefail

# bench ZBK HOSTS "LEVELS" REPS DIR FULL_UPTO [BASELINE]: prints `@@row SNAPSHOTS GET CHECK
# STATUS FULL START POOL BASE_CHECK BASE_STATUS` per level (FULL and BASE_* -1: not timed).
bench() {
    local zbk=$1 hosts=$2 levels=$3 reps=$4 dir=$5 full_upto=$6 baseline=${7:-}
    export LC_ALL=C
    local p=zbkbench$$ work=$dir/work h j level made=0 openzfs=0
    zfs version >/dev/null 2>&1 && openzfs=1
    mkdir -p "$work/empty"
    truncate -s 8G "$dir/$p.img"
    # zfs-fuse wedges when two mounts race: pool creation and destruction take zbk's lock.
    local lock=(flock /run/lock/zbk-zfs-fuse-mount.lock) create=()
    if [ "$openzfs" = 1 ]; then lock=(env) create=(-o cachefile=none); fi
    "${lock[@]}" zpool create "${create[@]}" -m "$work/root" "$p" "$dir/$p.img"
    # Runs in a subshell of its own: this trap is the pool's alone.
    trap '"${lock[@]}" zpool destroy -f '"$p"' || true; rm -f '"$dir/$p.img" EXIT
    "$zbk" --root "$work/root" init "$p" >/dev/null
    local datasets=()
    for ((h = 0; h < hosts; h++)); do datasets+=("$p/hosts/h$h"); done
    # Three adds at a time on OpenZFS; zfs-fuse's mounts must not race.
    local jobs=1
    [ "$openzfs" = 1 ] && jobs=3
    for ((h = 0; h < hosts; h++)); do echo "h$h"; done |
        xargs -P "$jobs" -I{} "$zbk" --root "$work/root" add {} --source "$work/empty/" >/dev/null
    echo "@@added $hosts hosts"
    # Scrubbed once, as a pool in service is: without a finished scrub, the pool's health also
    # reads its creation time (one more zfs call), which only a pool younger than
    # check.scrub_age does in production.
    zpool scrub "$p"
    while zpool status "$p" | grep -q "in progress"; do sleep 1; done
    local stamps=(-o zbk:expires=2099-01-01T00:00:00Z -o zbk:tier=default -o zbk:status=ok)
    # The properties check's first zfs get asks (src/record.rs, HOST_PROPS).
    local props=zbk:record,zbk:retired,used,usedbysnapshots
    [ "$openzfs" = 1 ] && props=$props,snapshots_changed
    clock() { date +%s.%N; }
    # median of REPS timings of a command, in seconds
    timed() {
        local r t0 t1 all=()
        for ((r = 0; r < reps; r++)); do
            t0=$(clock)
            "$@" >/dev/null 2>&1 || true
            t1=$(clock)
            all+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')")
        done
        printf '%s\n' "${all[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
    }
    local t0 name
    for level in $levels; do
        t0=$(clock)
        while [ "$made" -lt "$level" ]; do
            printf -v name 'b%06d' "$made"
            if [ "$openzfs" = 1 ]; then
                # One atomic call per round: one snapshot of every host (a filesystem takes
                # one snapshot per call and per transaction group, channel programs included).
                zfs snapshot "${stamps[@]}" "${datasets[@]/%/@$name}"
            else
                zfs snapshot -r "${stamps[@]}" "$p/hosts@$name"
                zfs destroy "$p/hosts@$name"
            fi
            made=$((made + 1))
        done
        echo "@@made $level per host in $(awk -v a="$t0" -v b="$(clock)" 'BEGIN { printf "%.0f", b - a }') s"
        # One run of every host: each writes its record, as in production.
        "$zbk" --root "$work/root" run --all >/dev/null 2>&1 || true
        local total
        total=$(zfs list -H -t snapshot -o name -r "$p/hosts" | wc -l)
        local get check status full
        get=$(timed zfs get -H -p -d 1 -o name,property,value,source "$props" "$p/hosts")
        # Past check's own 10 s default, which would cut the slow ones short.
        check=$(timed "$zbk" --root "$work/root" check --timeout 3600)
        # The summary view; --json and --prometheus tell each host's past: the full listing.
        status=$(timed "$zbk" --root "$work/root" status)
        # Without records: the full listing, as every check did before them.
        full=-1
        if [ "$level" -le "$full_upto" ]; then
            local saved
            saved=$(zfs get -H -o name,value -d 1 zbk:record "$p/hosts" | awk -F'\t' '$2 != "-"')
            for ((h = 0; h < hosts; h++)); do zfs inherit zbk:record "$p/hosts/h$h"; done
            full=$(reps=1 timed "$zbk" --root "$work/root" check --timeout 3600)
            while IFS=$'\t' read -r ds value; do
                [ -n "$ds" ] && zfs set "zbk:record=$value" "$ds"
            done <<<"$saved"
        fi
        # What check spends beside the zfs get: its own start, and the pool's health (zpool
        # status, in a thread beside the zfs get).
        local start pool
        start=$(timed "$zbk" --version)
        if [ "$openzfs" = 1 ]; then
            pool=$(timed zpool status -j --json-int "$p")
        else
            pool=$(timed zpool status "$p")
        fi
        local base_check=-1 base_status=-1
        if [ -n "$baseline" ]; then
            base_check=$(timed "$baseline" --root "$work/root" check --timeout 3600)
            base_status=$(timed "$baseline" --root "$work/root" status)
        fi
        echo "@@row $total $get $check $status $full $start $pool $base_check $base_status"
    done
}

if [ "${1:-}" = __guest ]; then
    mkfs.ext4 -q -F /dev/vda1 && mkdir -p /scratch && mount /dev/vda1 /scratch
    ln -sf /opt/ozfs/sbin/* /usr/local/sbin/
    export PATH=/usr/local/sbin:$PATH
    echo "@@guest $(zfs version | head -n 1), $(nproc) emulated CPUs"
    (bench "$2" "$3" "$4" "$5" /scratch "$6" "${7:-}")
    exit 0
fi

hosts=100 levels="10 100" reps=3 openzfs=0 out="" full_upto=999999999 baseline=""
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
while [ $# -gt 0 ]; do
    case $1 in
        --hosts) hosts=$2; shift ;;
        --levels) levels=$2; shift ;;
        --reps) reps=$2; shift ;;
        --full-upto) full_upto=$2; shift ;;
        --baseline) baseline=$2; shift ;;
        --openzfs) openzfs=1 ;;
        --out) out=$2; shift ;;
        -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "check.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
for n in "$hosts" "$reps" "$full_upto" $levels; do
    [[ $n =~ ^[0-9]+$ ]] || { echo "check.sh: not a number: $n" >&2; exit 2; }
done
[ -n "$out" ] || out=$repo/target/bench/check-$([ "$openzfs" = 1 ] && echo openzfs || echo zfs-fuse).md
export PATH="$HOME/.cargo/bin:/usr/local/sbin:/usr/sbin:/sbin:$PATH"
zbk=${ZBK_BIN:-}
if [ -z "$zbk" ]; then
    (cd "$repo" && cargo build --release --locked --quiet --bin zbk)
    # A copy of its own, so that a rebuild meanwhile cannot change it mid-run.
    zbk=$repo/target/bench/zbk-check
    mkdir -p "$(dirname "$zbk")"
    cp "$repo/target/release/zbk" "$zbk"
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [ "$openzfs" = 1 ]; then
    # The kit: shared/openzfs-vm beside the checkout or beside a directory above it.
    kit=${OPENZFS_VM:-}
    if [ -z "$kit" ]; then
        kit=$repo
        while [ "$kit" != / ] && [ ! -x "$kit/../shared/openzfs-vm/run.sh" ]; do kit=$(dirname "$kit"); done
        kit=$kit/../shared/openzfs-vm
    fi
    [ -x "$kit/run.sh" ] || { echo "check.sh: no OpenZFS VM kit at $kit (set OPENZFS_VM)" >&2; exit 1; }
    VM_DISK_MB=${VM_DISK_MB:-16384} "$kit/run.sh" \
        "bash $here/check.sh __guest $zbk $hosts '$levels' $reps $full_upto '$baseline'" >"$log" 2>&1 || {
        cat "$log" >&2
        exit 1
    }
    where=$(grep -m1 '^@@guest' "$log" | cut -c9-)
else
    scratch=$(mktemp -d /var/tmp/zbk-bench-check.XXXXXX)
    (bench "$zbk" "$hosts" "$levels" "$reps" "$scratch" "$full_upto" "$baseline") >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
    rmdir "$scratch" 2>/dev/null || true
    where="zfs-fuse $(dpkg-query -W -f '${Version}' zfs-fuse 2>/dev/null || echo '?'), $(nproc) CPUs"
fi
mkdir -p "$(dirname "$out")"
{
    echo "Command: \`tests/bench/check.sh$([ "$openzfs" = 1 ] && echo ' --openzfs') --hosts $hosts --levels \"$levels\" --reps $reps$([ "$full_upto" = 999999999 ] || echo " --full-upto $full_upto")$([ -z "$baseline" ] || echo " --baseline $baseline")\`; $where; medians of $reps."
    echo
    extra='' rule=''
    if [ -n "$baseline" ]; then
        extra=' baseline check s | baseline status s |' rule='---:|---:|'
    fi
    echo "| snapshots | one zfs get of the host datasets s | zbk check s | check / get | zbk status s | status / get | check without records (full listing, as before; once) s | before / after | zbk --version s | zpool status s |$extra"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|$rule"
    awk -v base="$baseline" '$1 == "@@row" {
        full = ($6 < 0 ? "not timed" : sprintf("%.3f", $6)); ratio = ($6 < 0 ? "" : sprintf("%.1f", ($4 > 0 ? $6 / $4 : 0)))
        printf "| %d | %.3f | %.3f | %.2f | %.3f | %.2f | %s | %s | %.3f | %.3f |", $2, $3, $4, ($3 > 0 ? $4 / $3 : 0), $5, ($3 > 0 ? $5 / $3 : 0), full, ratio, $7, $8
        if (base != "") printf " %.3f | %.3f |", $9, $10
        printf "\n" }' "$log"
    echo
    echo "Setup: $(grep '^@@made' "$log" | cut -c8- | paste -sd ';' | sed 's/;/; /g')."
} >"$out"
cat "$out"
