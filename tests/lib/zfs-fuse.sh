# tests/lib/zfs-fuse.sh: sourced by the test and benchmark scripts; starts the zfs-fuse daemon
# when no daemon answers, so every script that needs pools gets the same, tested recovery.

# ensure_zfs_fuse_daemon WHO: WHO prefixes the error message (the calling script's name).
ensure_zfs_fuse_daemon() {
    local who=$1
    if ! zpool list >/dev/null 2>&1; then
        local pidfile=/run/zfs-fuse.pid
        # A pidfile left by a daemon that died stops a new one from starting.
        if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            rm -f "$pidfile"
        fi
        # The daemon outlives this script: it must not inherit its open files, or a lock the
        # caller holds (flock LOCK tests/run.sh) would stay held for as long as the daemon runs.
        (
            for fd in /proc/self/fd/*; do
                fd=${fd##*/}
                [ "$fd" -gt 2 ] && eval "exec $fd>&-"
            done
            exec zfs-fuse --pidfile "$pidfile" </dev/null >/dev/null 2>&1
        )
        for _ in $(seq 50); do
            zpool list >/dev/null 2>&1 && break
            sleep 0.2
        done
        zpool list >/dev/null || { echo "$who: the zfs-fuse daemon did not start" >&2; exit 1; }
    fi
}
