#!/usr/bin/env bash
# tests/bench/bench.sh: the benchmark harness. Puts zbk next to rsnapshot and the plain-shell
# floor on the same zfs-fuse pool, source and churn; then reap and listing at scale. Prints a
# Markdown table of ratios and writes it to target/bench/results.md (or --out FILE).
#
#   sudo tests/bench/bench.sh [--quick] [--files N] [--large-mib N] [--cycles N] [--seed N]
#        [--reap-hosts N] [--reap-snaps N] [--list-hosts N] [--list-snaps N] [--no-cpal]
#        [--retain-alpha N] [--skip-cycles] [--skip-reap] [--skip-list] [--out FILE]
#   sudo tests/bench/bench.sh --openzfs [--hosts N] [--snaps N] [--expired-pct N]
#
# --openzfs: reap at scale on real OpenZFS in the VM instead (tests/bench/openzfs-reap.sh).
#
# ZBK_BIN=/path/to/zbk skips the release build. Pools are named zbkbench<pid>*, live on files
# in a temporary directory, and are destroyed on exit, also on failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

# ---- timed contenders that are shell scripts: run in a fresh bash, so /usr/bin/time sees them

# __floor SRC DST DATASET SNAPSHOT EXPIRES: the physical floor, one rsync and one snapshot.
if [ "${1:-}" = __floor ]; then
    rsync --inplace --no-whole-file -a -H --numeric-ids --delete "$2/" "$3/" &&
        zfs snapshot -o "zbk:expires=$6" -o zbk:tier=default -o zbk:status=ok "$4@$5"
    exit
fi
# __naive HOSTS_DATASET COUNT_FILE: what a reaper without an inventory does: list the names,
# then one `zfs get` per snapshot and one `zfs destroy` per expired one.
if [ "${1:-}" = __naive ]; then
    now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    n=1
    mapfile -t snaps < <(zfs list -H -t snapshot -o name -r "$2")
    for s in "${snaps[@]}"; do
        v=$(zfs get -H -p -o value zbk:expires "$s")
        n=$((n + 1))
        # Same-format UTC stamps compare as strings; `never` and `-` sort after digits.
        if [[ $v =~ ^[0-9] && ! $v > $now ]]; then
            zfs destroy "$s"
            n=$((n + 1))
        fi
    done
    echo "$n" >"$3"
    exit
fi
# __raw NAMES_FILE: the destroys alone, on names known beforehand.
if [ "${1:-}" = __raw ]; then
    mapfile -t snaps <"$2"
    for s in "${snaps[@]}"; do
        zfs destroy "$s"
    done
    exit
fi

# ---- options

quick=0
files='' large_mib='' cycles='' seed=7
reap_hosts='' reap_snaps='' list_hosts='' list_snaps=''
cpal=1 do_cycles=1 do_reap=1 do_list=1 retain_alpha=6
out="$repo/target/bench/results.md"
command_line="tests/bench/bench.sh${*:+ $*}"
while [ $# -gt 0 ]; do
    case $1 in
    --openzfs) shift; exec "$here/openzfs-reap.sh" "$@" ;;
    --quick) quick=1 ;;
    --files) files=$2; shift ;;
    --large-mib) large_mib=$2; shift ;;
    --cycles) cycles=$2; shift ;;
    --seed) seed=$2; shift ;;
    --reap-hosts) reap_hosts=$2; shift ;;
    --reap-snaps) reap_snaps=$2; shift ;;
    --list-hosts) list_hosts=$2; shift ;;
    --list-snaps) list_snaps=$2; shift ;;
    --no-cpal) cpal=0 ;;
    --retain-alpha) retain_alpha=$2; shift ;;
    --skip-cycles) do_cycles=0 ;;
    --skip-reap) do_reap=0 ;;
    --skip-list) do_list=0 ;;
    --out) out=$2; shift ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
for n in "$retain_alpha" "$files" "$large_mib" "$cycles" "$seed" "$reap_hosts" "$reap_snaps" "$list_hosts" "$list_snaps"; do
    [[ -z $n || $n =~ ^[0-9]+$ ]] || { echo "bench.sh: $n is not a number" >&2; exit 2; }
done
if [ "$quick" = 1 ]; then
    : "${files:=2000}" "${large_mib:=16}" "${cycles:=3}"
    : "${reap_hosts:=5}" "${reap_snaps:=20}" "${list_hosts:=5}" "${list_snaps:=100}"
else
    : "${files:=20000}" "${large_mib:=64}" "${cycles:=10}"
    : "${reap_hosts:=50}" "${reap_snaps:=100}" "${list_hosts:=50}" "${list_snaps:=400}"
fi
reap_expired=$((reap_snaps * 8 / 10))
list_reps=3

# ---- environment

if [ "$(id -u)" -ne 0 ]; then
    echo "bench.sh: the benchmark creates ZFS pools and needs root: sudo $0" >&2
    exit 1
fi
export PATH="$HOME/.cargo/bin:/usr/local/sbin:/usr/sbin:/sbin:$PATH"
export LC_ALL=C
need=()
command -v zfs-fuse >/dev/null || need+=(zfs-fuse)
command -v rsync >/dev/null || need+=(rsync)
command -v rsnapshot >/dev/null || need+=(rsnapshot)
command -v python3 >/dev/null || need+=(python3)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
    echo "bench.sh: installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# shellcheck source=tests/lib/zfs-fuse.sh
. "$repo/tests/lib/zfs-fuse.sh"
ensure_zfs_fuse_daemon bench.sh
mkdir -p /run/lock
# Pools of a killed run: the pid in the name is gone. A live run's pools are left alone.
while read -r pool; do
    [[ $pool =~ ^zbkbench([0-9]+) ]] || continue
    kill -0 "${BASH_REMATCH[1]}" 2>/dev/null || flock /run/lock/zbk-zfs-fuse-mount.lock zpool destroy -f "$pool" || true
done < <(zpool list -H -o name 2>/dev/null)

if [ -z "${ZBK_BIN:-}" ]; then
    (cd "$repo" && cargo build --release --locked --quiet --bin zbk)
fi
zfs_bin=$(command -v zfs)
rsync_bin=$(command -v rsync)

# locked CMD...: runs a command that mounts or unmounts under the lock zbk takes (src/sys/zfs.rs
# MOUNT_LOCK), since two at once can wedge the zfs-fuse daemon.
locked() { mkdir -p /run/lock && flock /run/lock/zbk-zfs-fuse-mount.lock "$@"; }
work=$(mktemp -d "${TMPDIR:-/var/tmp}/zbkbench.XXXXXX")
pools=()
cleanup() {
    local pool left=0
    for pool in "${pools[@]}"; do
        # zfs-fuse may still be busy with a just-finished unmount: retry a little.
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            locked zpool destroy -f "$pool" 2>/dev/null && break
            zpool list "$pool" >/dev/null 2>&1 || break
            sleep 0.3
        done
        zpool list "$pool" >/dev/null 2>&1 && left=1
    done
    # Never rm -rf through a pool that is still mounted in there.
    if [ "$left" = 1 ]; then
        echo "bench.sh: could not destroy all of ${pools[*]}; left $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# A private copy: a rebuild of target/ during a long run must not change what is measured.
cp "${ZBK_BIN:-$repo/target/release/zbk}" "$work/zbk"
zbk=$work/zbk

results=$work/results.tsv
: >"$results"
record() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$results"; }
say() { printf "bench %(%H:%M:%S)T: %s\n" -1 "$*" >&2; }

# make_pool NAME SIZE_MIB: a file-backed pool mounted at $work/NAME.
make_pool() {
    truncate -s "${2}M" "$work/$1.img"
    locked zpool create -m "$work/$1" "$1" "$work/$1.img"
    pools+=("$1")
}

drop_pool() {
    local i
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        locked zpool destroy -f "$1" 2>/dev/null && break
        sleep 0.3
    done
    for i in "${!pools[@]}"; do
        [ "${pools[$i]}" = "$1" ] && unset 'pools[i]'
    done
    rm -f "$work/$1.img"
}

# measure SECTION WHO METRIC [--any-status] -- CMD...: wall time by the clock around the
# command, peak RSS (the largest of the process and its children) by /usr/bin/time.
measure() {
    local section=$1 who=$2 metric=$3 any=0 rc=0 t0 t1
    shift 3
    [ "$1" = --any-status ] && { any=1; shift; }
    shift
    t0=$(date +%s.%N)
    /usr/bin/time -f '%M' -o "$work/time.out" "$@" >"$work/cmd.out" 2>"$work/cmd.err" || rc=$?
    t1=$(date +%s.%N)
    if [ "$rc" -ne 0 ] && [ "$any" = 0 ]; then
        say "FAILED ($rc): $*"
        cat "$work/cmd.err" >&2
        exit 1
    fi
    record "$section" "$who" "$metric" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')"
    record "$section" "$who" rss "$(tail -n 1 "$work/time.out")"
}

# Shims that count the processes zbk starts, for one untimed run: their own start-up would
# otherwise be timed.
shims=$work/shims
mkdir -p "$shims"
for prog in zfs rsync; do
    real=$zfs_bin
    [ "$prog" = rsync ] && real=$rsync_bin
    cat >"$shims/$prog" <<EOF
#!/bin/bash
# A counting shim: logs its name and argv, then becomes the real $prog.
printf '%s\n' $prog >>"\$BENCH_SHIM_LOG"
n=\$(wc -l <"\$BENCH_SHIM_LOG")
printf '%s\0' "\$@" >"\$BENCH_SHIM_LOG.\$n"
exec $real "\$@"
EOF
    chmod +x "$shims/$prog"
done
# counted LOG CMD...: runs CMD with the shims first on PATH.
counted() {
    local log=$1
    shift
    : >"$log"
    BENCH_SHIM_LOG=$log PATH="$shims:$PATH" "$@"
}

zfs_value() { zfs get -H -p -o value "$2" "$1"; }

record meta run files "$files"
record meta run large_mib "$large_mib"
record meta run cycles "$cycles"
record meta run retain_alpha "$retain_alpha"
record meta run reap_hosts "$reap_hosts"
record meta run reap_snaps "$reap_snaps"
record meta run reap_expired "$((reap_hosts * reap_expired))"
record meta run list_hosts "$list_hosts"
record meta run list_snaps "$list_snaps"
record meta run list_reps "$list_reps"
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
expires=$(date -u -d '+7 days' +%Y-%m-%dT%H:%M:%SZ)

# ---- 1. backup cycles

run_cycles() {
    local pool=zbkbench$$c root src size
    root=$work/$pool
    src=$work/src
    # Sparse: room for every contender's copies and rsnapshot's full copies of changed files.
    size=$((files * 48 / 1024 + large_mib * 24 + 1024))
    make_pool "$pool" "$size"
    say "generating $files files and $large_mib MiB of large files"
    python3 "$here/workload.py" generate "$src" --seed "$seed" --files "$files" --large-mib "$large_mib"
    "$zbk" --root "$root" init "$pool" >/dev/null
    "$zbk" --root "$root" add bench --source "$src/" >/dev/null
    # zfs-fuse stores no ACLs or xattrs, yet rsync -A -X asks for them file by file: a second
    # host without them shows what that costs (the floor has neither).
    "$zbk" --root "$root" add bench-nax --source "$src/" >/dev/null
    printf '\n[rsync]\nargs = [%s]\n' '"--archive", "--hard-links", "--numeric-ids", "--delete", "--delete-excluded", "--relative", "--inplace", "--no-whole-file"' \
        >>"$root/hosts/bench-nax/c/zbk.toml"
    # The same dataset settings as zbk's hosts dataset, so the space figures compare.
    local compression
    compression=$(zfs_value "$pool/hosts" compression)
    local contenders=(zbk zbk-nax floor rsnap-ld)
    [ "$cpal" = 1 ] && contenders+=(rsnap-cp)
    local c
    for c in floor rsnap-ld rsnap-cp settle; do
        locked zfs create -o "compression=$compression" "$pool/$c"
    done
    # settle: an untimed snapshot of an empty dataset, which waits for the pool's transaction
    # group and so writes out what the contender before left dirty. The rotation keeps each
    # contender's neighbours, so without it the one after rsnapshot always paid for its writes.
    local settled=0
    settle() {
        settled=$((settled + 1))
        zfs snapshot "$pool/settle@s$settled" && zfs destroy "$pool/settle@s$settled"
    }
    for c in rsnap-ld rsnap-cp; do
        {
            printf '%s\t%s\n' config_version 1.2 snapshot_root "$root/$c/" no_create_root 1 \
                cmd_cp /bin/cp cmd_rm /bin/rm cmd_rsync "$rsync_bin" verbose 1 loglevel 3 \
                lockfile "$work/$c.pid"
            printf 'retain\t%s\t%s\n' alpha "$retain_alpha" beta 7 gamma 4
            printf '%s\t%s\n' link_dest "$([ "$c" = rsnap-ld ] && echo 1 || echo 0)"
            printf 'backup\t%s/\tlocalhost/\n' "$src"
        } >"$work/$c.conf"
        rsnapshot -c "$work/$c.conf" configtest >/dev/null
    done

    local cycle i k who
    for ((cycle = 0; cycle <= cycles; cycle++)); do
        if [ "$cycle" -gt 0 ]; then
            python3 "$here/workload.py" churn "$src" --seed "$seed" --cycle "$cycle"
        fi
        local metric=cycle
        [ "$cycle" = 0 ] && metric=init
        # Rotated order, so that no contender always runs first after the churn.
        for ((i = 0; i < ${#contenders[@]}; i++)); do
            k=$(((i + cycle) % ${#contenders[@]}))
            who=${contenders[$k]}
            settle
            case $who in
            zbk) measure cycles zbk "$metric" -- "$zbk" --root "$root" run bench ;;
            zbk-nax) measure cycles zbk-nax "$metric" -- "$zbk" --root "$root" run bench-nax ;;
            floor)
                measure cycles floor "$metric" -- bash "$0" __floor "$src" "$root/floor" \
                    "$pool/floor" "$(printf 'c%04d' "$cycle")" "$expires"
                ;;
            rsnap-*) measure cycles "$who" "$metric" -- rsnapshot -c "$work/$who.conf" alpha ;;
            esac
        done
        say "cycle $cycle of $cycles done"
    done

    # The copies must be faithful, or the timings mean nothing.
    local copy
    for who in "${contenders[@]}"; do
        case $who in
        zbk) copy=$root/hosts/bench/d$src ;;
        zbk-nax) copy=$root/hosts/bench-nax/d$src ;;
        floor) copy=$root/floor ;;
        rsnap-*) copy=$root/$who/alpha.0/localhost$src ;;
        esac
        diff -rq --no-dereference "$src" "$copy" >/dev/null ||
            { say "the $who copy differs from the source"; exit 1; }
    done

    for who in "${contenders[@]}"; do
        local ds=$pool/$who
        case $who in zbk*) ds=$pool/hosts/${who/zbk/bench} ;; esac
        record cycles "$who" used "$(zfs_value "$ds" used)"
        record cycles "$who" usedsnap "$(zfs_value "$ds" usedbysnapshots)"
        case $who in
        rsnap-*) record cycles "$who" du "$(du -sb "$root/$who" | cut -f1)" ;;
        esac
    done

    # One more, untimed zbk run through the counting shims.
    counted "$work/run.calls" "$zbk" --root "$root" run bench
    record cycles zbk zfsprocs "$(grep -cx zfs "$work/run.calls" || true)"
    record cycles zbk rsyncprocs "$(grep -cx rsync "$work/run.calls" || true)"
    drop_pool "$pool"
    rm -rf "$src"
}

# ---- 2. reap at scale

# reap_pool NAME HOSTS SNAPS EXPIRED: a zbk root with HOSTS hosts (via zbk add) of SNAPS
# snapshots each, the oldest EXPIRED of them past their expiry. Writes $work/NAME.expired.
reap_pool() {
    local pool=$1 nhosts=$2 nsnaps=$3 nexp=$4 root h j name stamp base
    root=$work/$pool
    make_pool "$pool" 1024
    "$zbk" --root "$root" init "$pool" >/dev/null
    mkdir -p "$work/empty-source"
    base=$(date -u -d 2025-01-01 +%s)
    : >"$work/$pool.plan"
    : >"$work/$pool.expired"
    for ((h = 0; h < nhosts; h++)); do
        printf -v name 'h%03d' "$h"
        "$zbk" --root "$root" add "$name" --source "$work/empty-source/" >/dev/null
        for ((j = 0; j < nsnaps; j++)); do
            TZ=UTC printf -v stamp '%(%Y-%m-%dT%H%M%S)T' $((base + j * 3600))
            if [ "$j" -lt "$nexp" ]; then
                printf '%s\t%sZ\t%s\tdefault\tok\n' "$pool/hosts/$name" "$stamp" 2020-01-01T00:00:00Z
                printf '%s@%sZ\n' "$pool/hosts/$name" "$stamp" >>"$work/$pool.expired"
            else
                printf '%s\t%sZ\t%s\tdefault\tok\n' "$pool/hosts/$name" "$stamp" 2099-01-01T00:00:00Z
            fi
        done >>"$work/$pool.plan"
    done
    python3 "$here/workload.py" snapshots --plan "$work/$pool.plan" --workers 4
}

snapshot_count() { zfs list -H -t snapshot -o name -r "$1" | wc -l; }

run_reap() {
    local who pool root left total=$((reap_hosts * reap_snaps))
    local order=(raw zbk naive par4)
    # Every pool is built before any contender runs, and they run in the order they were
    # built: zfs-fuse destroys run slower on a pool that has just taken thousands of
    # snapshots, and timing each contender right after its own setup measured that instead.
    for who in "${order[@]}"; do
        say "reap: creating $total snapshots for the $who contender"
        reap_pool "zbkbench$$r$who" "$reap_hosts" "$reap_snaps" "$reap_expired"
    done
    sleep 5
    for who in "${order[@]}"; do
        pool=zbkbench$$r$who
        root=$work/$pool
        say "reap: $who"
        case $who in
        zbk)
            # The dry run changes nothing and shows how many listings zbk needs.
            counted "$work/reap.calls" "$zbk" --root "$root" reap --dry-run >/dev/null
            record reap zbk listings "$(grep -cx zfs "$work/reap.calls" || true)"
            measure reap zbk wall -- "$zbk" --root "$root" reap -v
            local last
            last=$(tail -n 1 "$work/cmd.out")
            record reap zbk procs "${last##*started: }"
            ;;
        naive)
            measure reap naive wall -- bash "$0" __naive "$pool/hosts" "$work/naive.count"
            record reap naive procs "$(cat "$work/naive.count")"
            record reap naive listings 1
            ;;
        raw)
            measure reap raw wall -- bash "$0" __raw "$work/$pool.expired"
            record reap raw procs "$(wc -l <"$work/$pool.expired")"
            record reap raw listings 0
            ;;
        par4)
            # What a bounded pool of 4 workers would reach: a reference for zbk, not a contender.
            measure reap par4 wall -- xargs -P 4 -n 1 -a "$work/$pool.expired" zfs destroy
            record reap par4 procs "$(wc -l <"$work/$pool.expired")"
            record reap par4 listings 0
            ;;
        esac
        left=$(snapshot_count "$pool/hosts")
        record reap "$who" destroyed "$((total - left))"
        [ "$left" -eq $((total - reap_hosts * reap_expired)) ] ||
            { say "reap: $who left $left snapshots of $total"; exit 1; }
        drop_pool "$pool"
    done
}

# ---- 3. listing at scale

run_list() {
    local pool=zbkbench$$l root rep
    root=$work/$pool
    say "list: creating $((list_hosts * list_snaps)) snapshots"
    reap_pool "$pool" "$list_hosts" "$list_snaps" 0
    # zbk's own listing call, replayed as the floor: the same properties by construction.
    counted "$work/list.calls" "$zbk" --root "$root" list --json >/dev/null
    [ "$(grep -cx zfs "$work/list.calls")" = 1 ] || say "list: zbk list made more than one zfs call"
    local argv=()
    mapfile -d '' -t argv <"$work/list.calls.1"
    local has_status=1 probe
    # Captured first: grep -q closing the pipe early would fail the probe under pipefail.
    probe=$("$zbk" --root "$root" status 2>&1 >/dev/null || true)
    if [[ $probe == *'Unrecognized argument'* ]]; then
        has_status=0
        record list zbk-status skipped "not in this zbk"
    fi
    local has_report=1
    probe=$("$zbk" --root "$root" report --html "$work/page.html" 2>&1 >/dev/null || true)
    if [[ $probe == *'Unrecognized argument'* ]]; then
        has_report=0
        record list zbk-report skipped "not in this zbk"
    fi
    for ((rep = 0; rep < list_reps; rep++)); do
        measure list zbk-list wall -- "$zbk" --root "$root" list --json
        [ "$has_report" = 1 ] && measure list zbk-report wall -- "$zbk" --root "$root" report --html "$work/page.html"
        # zbk status exits non-zero for stale or failed hosts: that is its answer, not a failure.
        [ "$has_status" = 1 ] && measure list zbk-status wall --any-status -- "$zbk" --root "$root" status
        measure list raw wall -- zfs "${argv[@]}"
    done
    drop_pool "$pool"
}

[ "$do_cycles" = 1 ] && run_cycles
[ "$do_reap" = 1 ] && run_reap
[ "$do_list" = 1 ] && run_list

mkdir -p "$(dirname "$out")"
{
    echo "## zbk benchmark results"
    echo
    echo "Command: \`sudo $command_line\`, started $started."
    echo
    echo "Machine: $(nproc) cores, $(free -m | awk '/^Mem:/ { print $2 }') MiB RAM, kernel $(uname -r)," \
        "zfs-fuse $(dpkg-query -W -f '${Version}' zfs-fuse 2>/dev/null || echo '?')," \
        "$(rsync --version | awk 'NR == 1 { print $1, $3 }')," \
        "rsnapshot $(dpkg-query -W -f '${Version}' rsnapshot 2>/dev/null || echo '?');" \
        "load average at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg)."
    echo
    python3 "$here/report.py" "$results"
} >"$out"
# The raw measurements too, so that a table can be re-derived after the work dir is gone.
cp "$results" "${out%.md}.tsv"
cat "$out"
say "written to $out and ${out%.md}.tsv"
