# tests/lib/zfs.sh: sourced by the test scripts; tells which ZFS this machine has and clears the
# test pools that killed runs left behind, whichever ZFS holds them.

# openzfs_here: true where the OpenZFS kernel module is loaded and its `zfs version` answers
# (zfs-fuse's zfs has no `version`: the same probe tests/common/mod.rs makes).
openzfs_here() {
    [ -d /sys/module/zfs ] && zfs version >/dev/null 2>&1
}

# zfs_name: one line naming the ZFS that answers here, for the scripts' headers and summaries.
zfs_name() {
    if openzfs_here; then
        echo "OpenZFS $(zfs version 2>/dev/null | paste -sd ' ')"
    else
        local version
        version=$(dpkg-query -W -f '${Version}' zfs-fuse 2>/dev/null) || version=unknown
        echo "zfs-fuse $version (daemon pid $(pgrep -x zfs-fuse | paste -sd ' '))"
    fi
}

# sweep_test_pools WHO [POOL_DIR]: destroys the pools of test processes that no longer run (the
# test's pid is in the name, zbkt<pid>x<n>), FAULTED and suspended ones included, then their
# backing files left in POOL_DIR. A live process's pools are left alone, since destroying a pool
# under another suite's running zbk can wedge the zfs-fuse daemon for everyone. Every zpool call
# has a deadline: a wedged daemon is reported, not waited on forever. Status 1: some pools stay
# (zfs-fuse keeps calling a pool busy after a daemon restart), said on stderr; 2: ZFS is wedged.
sweep_test_pools() {
    local who=$1 dir=${2:-} pool health pid left=()
    mkdir -p /run/lock
    local listing status=0
    # No pools at all is `no pools available` with status 0 on OpenZFS, 1 on zfs-fuse.
    listing=$(timeout -k 5 60 zpool list -H -o name,health 2>/dev/null) || status=$?
    if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
        echo "$who: zpool list did not answer in 60 s: the ZFS is wedged" >&2
        return 2
    fi
    while read -r pool health; do
        [[ $pool =~ ^zbkt([0-9]+)x ]] || continue
        pid=${BASH_REMATCH[1]}
        ! kill -0 "$pid" 2>/dev/null || continue
        destroy_test_pool "$pool" "$health" || left+=("$pool ($health)")
    done <<<"$listing"
    if [ -n "$dir" ] && [ -d "$dir" ]; then
        local file
        for file in "$dir"/zbkt*x*.img; do
            pool=${file##*/}
            pool=${pool%.img}
            [[ $pool =~ ^zbkt([0-9]+)x ]] || continue
            pid=${BASH_REMATCH[1]}
            kill -0 "$pid" 2>/dev/null || timeout 60 zpool list "$pool" >/dev/null 2>&1 || rm -f "$file"
        done
    fi
    if [ ${#left[@]} -gt 0 ]; then
        echo "$who: warning: could not remove the stale test pools ${left[*]} (a restart of the zfs-fuse daemon lets them go)" >&2
        return 1
    fi
}

# destroy_test_pool POOL HEALTH: `zpool destroy -f` under the mount lock; a pool whose devices
# failed (FAULTED, UNAVAIL, SUSPENDED) refuses that until its errors are cleared, and an export
# is the last way to make the daemon forget it.
destroy_test_pool() {
    local pool=$1 health=$2 try
    for try in destroy clear export; do
        case $try in
            destroy) ;;
            clear) [ "$health" = ONLINE ] || timeout -k 5 60 zpool clear "$pool" >/dev/null 2>&1 || true ;;
            export) timeout -k 5 60 flock /run/lock/zbk-zfs-fuse-mount.lock zpool export -f "$pool" >/dev/null 2>&1 && return 0 ;;
        esac
        if timeout -k 5 60 flock /run/lock/zbk-zfs-fuse-mount.lock zpool destroy -f "$pool" >/dev/null 2>&1 ||
            ! timeout 60 zpool list "$pool" >/dev/null 2>&1; then
            return 0
        fi
    done
    return 1
}
