#!/usr/bin/env bash
# tests/bench/openzfs-reap.sh: reap at scale on real OpenZFS, inside the OpenZFS VM
# (../shared/openzfs-vm): zbk reap next to the one-destroy-per-snapshot floor and the
# batched-destroy floor (one comma-list `zfs destroy` per host), each on a pool of its own with
# the same snapshots. Prints a Markdown table; `tests/bench/bench.sh --openzfs` runs it too.
#
#   sudo tests/bench/openzfs-reap.sh [--hosts N] [--snaps N] [--expired-pct N] [--out FILE]
#
# The guest's CPU is emulated: absolute times mean little there, the ratios do.
set -euo pipefail

# ---- inside the guest: __guest ZBK HOSTS SNAPS EXPIRED
if [ "${1:-}" = __guest ]; then
    zbk=$2 hosts=$3 snaps=$4 expired=$5
    export LC_ALL=C
    mkfs.ext4 -q -F /dev/vda1 && mkdir -p /scratch && mount /dev/vda1 /scratch
    work=/scratch/work
    mkdir -p "$work/empty"
    real_zfs=$(command -v zfs)
    mkdir -p "$work/shim"
    cat >"$work/shim/zfs" <<EOF
#!/bin/sh
# A counting shim: logs the call, then becomes the real zfs.
echo "\$1" >>"$work/calls"
exec $real_zfs "\$@"
EOF
    chmod +x "$work/shim/zfs"

    # One snapshot of every host in one channel program, stamped as a run stamps it: a dataset
    # takes one snapshot per transaction group, so one call per round instead of one per
    # snapshot keeps the setup of thousands of snapshots short under emulation.
    cat >"$work/round.lua" <<'EOF'
local argv = (...)["argv"]
local name, expires = argv[1], argv[2]
for i = 3, #argv do
    local snap = argv[i] .. "@" .. name
    local err = zfs.sync.snapshot(snap)
    if err ~= 0 then error("snapshot " .. snap .. ": " .. err) end
    for prop, value in pairs({["zbk:expires"] = expires, ["zbk:tier"] = "default", ["zbk:status"] = "ok"}) do
        err = zfs.sync.set_prop(snap, prop, value)
        if err ~= 0 then error("set " .. prop .. " on " .. snap .. ": " .. err) end
    end
end
EOF

    # pool NAME: a zbk root with the hosts and their snapshots, the oldest EXPIRED of each
    # host's past their expiry.
    pool() {
        local p=$1 h j expires datasets=()
        truncate -s 4G "/scratch/$p.img"
        zpool create -o cachefile=none -m "$work/$p" "$p" "/scratch/$p.img"
        "$zbk" --root "$work/$p" init "$p" >/dev/null
        for ((h = 0; h < hosts; h++)); do
            "$zbk" --root "$work/$p" add "h$h" --source "$work/empty/" >/dev/null
            datasets+=("$p/hosts/h$h")
        done
        for ((j = 0; j < snaps; j++)); do
            expires=2099-01-01T00:00:00Z
            [ "$j" -lt "$expired" ] && expires=2020-01-01T00:00:00Z
            zfs program -t 100000000 "$p" "$work/round.lua" "s$(printf %04d "$j")" "$expires" "${datasets[@]}" >/dev/null
        done
    }
    left() { zfs list -H -t snapshot -o name -r "$1/hosts" | wc -l; }
    clock() { date +%s.%N; }

    rows=()
    for who in single batched zbk; do
        p=bench$who
        pool "$p"
        : >"$work/calls"
        t0=$(clock)
        case $who in
            single)
                for ((h = 0; h < hosts; h++)); do
                    for ((j = 0; j < expired; j++)); do
                        "$work/shim/zfs" destroy "$p/hosts/h$h@s$(printf %04d "$j")"
                    done
                done
                ;;
            batched)
                for ((h = 0; h < hosts; h++)); do
                    names=()
                    for ((j = 0; j < expired; j++)); do names+=("s$(printf %04d "$j")"); done
                    list=$(IFS=,; echo "${names[*]}")
                    "$work/shim/zfs" destroy "$p/hosts/h$h@$list"
                done
                ;;
            zbk)
                PATH="$work/shim:$PATH" "$zbk" --root "$work/$p" reap >/dev/null
                ;;
        esac
        t1=$(clock)
        n=$(wc -l <"$work/calls")
        gone=$((hosts * snaps - $(left "$p")))
        rows+=("$who $gone $n $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')")
        zpool destroy "$p"
        rm -f "/scratch/$p.img"
    done
    echo "@@rows"
    printf '%s\n' "${rows[@]}"
    echo "@@guest $(zfs version | head -n 1), $(nproc) emulated CPUs"
    exit 0
fi

hosts=20 snaps=100 pct=80 out=""
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=$repo/target/bench/openzfs-reap.md
while [ $# -gt 0 ]; do
    case $1 in
        --hosts) hosts=$2; shift ;;
        --snaps) snaps=$2; shift ;;
        --expired-pct) pct=$2; shift ;;
        --out) out=$2; shift ;;
        -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "openzfs-reap.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
for n in "$hosts" "$snaps" "$pct"; do
    [[ $n =~ ^[0-9]+$ ]] || { echo "openzfs-reap.sh: not a number: $n" >&2; exit 2; }
done
if [ "$(id -u)" -ne 0 ]; then
    echo "openzfs-reap.sh: the VM exports / to its guest and needs root: sudo $0" >&2
    exit 1
fi
export PATH="$HOME/.cargo/bin:/usr/local/sbin:/usr/sbin:/sbin:$PATH"
kit=${OPENZFS_VM:-$repo/../shared/openzfs-vm}
[ -x "$kit/run.sh" ] || { echo "openzfs-reap.sh: no OpenZFS VM kit at $kit (set OPENZFS_VM)" >&2; exit 1; }
[ -f /opt/ozfs/vm/initrd.img ] || "$kit/setup.sh"
expired=$((snaps * pct / 100))
(cd "$repo" && cargo build --release --locked --quiet --bin zbk)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
VM_DISK_MB=${VM_DISK_MB:-16384} "$kit/run.sh" \
    "bash $here/openzfs-reap.sh __guest $repo/target/release/zbk $hosts $snaps $expired" >"$log" 2>&1 || {
    cat "$log" >&2
    exit 1
}
mkdir -p "$(dirname "$out")"
{
    echo "## Reap on OpenZFS"
    echo
    echo "Command: \`sudo tests/bench/openzfs-reap.sh --hosts $hosts --snaps $snaps --expired-pct $pct\`;" \
        "$(grep -m1 '^@@guest' "$log" | cut -c9-); $((hosts * expired)) of $((hosts * snaps)) snapshots expired."
    echo
    echo "| contender | destroyed | zfs processes | seconds | time vs one destroy per snapshot |"
    echo "|---|---:|---:|---:|---:|"
    awk '/^@@rows/ { on = 1; next } /^@@/ { on = 0 } on && NF == 4 { print }' "$log" |
        awk '{ t[NR] = $4; r[NR] = $0 } END {
            base = t[1]
            for (i = 1; i <= NR; i++) {
                split(r[i], f, " ")
                name = f[1] == "single" ? "one `zfs destroy` per snapshot" : f[1] == "batched" ? "one comma-list `zfs destroy` per host" : "`zbk reap`"
                printf "| %s | %d | %d | %.2f | %.2fx |\n", name, f[2], f[3], f[4], (base > 0 ? f[4] / base : 0)
            }
        }'
} >"$out"
cat "$out"
