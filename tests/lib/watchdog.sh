# tests/lib/watchdog.sh: sourced by tests/run.sh; watches a test run for a ZFS that stopped
# answering (the zfs-fuse daemon wedged, a suspended pool) and ends the run with a diagnosis,
# since a wedge never ends on its own and would otherwise hold the run until CI's time limit.

# zfs_answers SECS: true when `zpool list` and then `zfs list` both return within SECS seconds
# (with any status: a daemon that has gone away answers, at once, with an error).
zfs_answers() {
    local secs=$1 status cmd
    for cmd in "zpool list -H -o name" "zfs list -H -o name"; do
        status=0
        # shellcheck disable=SC2086  # the words of cmd, as written above
        timeout -k 5 "$secs" $cmd >/dev/null 2>&1 </dev/null || status=$?
        [ "$status" -ne 124 ] && [ "$status" -ne 137 ] || return 1
    done
}

# zfs_stalled_calls ROOT SECS: the real zfs and zpool processes below process ROOT (at any depth,
# in any process group) that have run for SECS seconds or more, as "pid seconds command" lines.
# A wedge can hold one dataset's callers while the daemon still answers the probes; a test's fake
# zfs on PATH (a script, or one that execs sleep) is not one of these binaries.
zfs_stalled_calls() {
    local root=$1 secs=$2 real pid age args
    real=" $(readlink -f "$(command -v zfs)") $(readlink -f "$(command -v zpool)") "
    # A process that ps catches as it starts can show an age past the machine's own uptime
    # (seen in the VM: 4123168608 s, a negative age wrapped): no call is older than the boot.
    ps -eo pid=,ppid=,etimes=,comm=,args= | awk -v root="$root" -v secs="$secs" -v up="$(cut -d. -f1 /proc/uptime)" '
        { parent[$1] = $2; age[$1] = $3; comm[$1] = $4; line = $0; sub(/^ *[0-9]+ +[0-9]+ +[0-9]+ +[^ ]+ +/, "", line); args[$1] = line }
        END {
            for (p in comm) {
                if ((comm[p] != "zfs" && comm[p] != "zpool") || age[p] < secs || age[p] > up) continue
                for (q = p; q > 1 && n++ < 64; q = parent[q]) if (q == root) { print p, age[p], args[p]; break }
                n = 0
            }
        }' | while read -r pid age args; do
        [[ $real == *" $(readlink "/proc/$pid/exe" 2>/dev/null) "* ]] && echo "$pid $age $args"
    done
}

# zfs_diagnosis: what a wedge looks like from outside: the zfs-fuse daemon's threads (state,
# kernel wait channel, kernel stack; user stacks when gdb is installed) and the processes stuck
# in ZFS, FUSE or uninterruptible sleep, with their wait channels.
zfs_diagnosis() (
    # Best effort: a thread that ends while it is read must not end the diagnosis.
    set +e +o pipefail
    local pid task
    for pid in $(pgrep -x zfs-fuse); do
        echo "== zfs-fuse daemon, pid $pid, state $(awk '/^State:/ {print $2, $3}' "/proc/$pid/status" 2>/dev/null)"
        echo "-- its threads: tid, name, state, wait channel"
        for task in /proc/"$pid"/task/*; do
            printf '%s %s %s %s\n' "${task##*/}" "$(cat "$task/comm" 2>/dev/null)" \
                "$(awk '/^State:/ {print $2}' "$task/status" 2>/dev/null)" "$(cat "$task/wchan" 2>/dev/null)"
        done | sort -k4 | awk '{print "   " $0}'
        echo "-- their kernel stacks, identical ones counted once"
        for task in /proc/"$pid"/task/*; do
            cat "$task/stack" 2>/dev/null | awk '{printf "%s ", $2} END {print ""}'
        done | sort | uniq -c | sort -rn | awk '{print "   " $0}'
        if command -v gdb >/dev/null; then
            echo "-- their user stacks (gdb), innermost frame first, identical ones counted once"
            timeout -k 5 60 gdb -p "$pid" -batch -nx -ex 'thread apply all bt 16' 2>/dev/null |
                awk '/^Thread / { if (s != "") print s; s = "" }
                     /^#[0-9]+ / { f = ($3 == "in") ? (($4 == "??") ? $2 : $4) : $2; s = s (s == "" ? "" : " < ") f }
                     END { if (s != "") print s }' | sort | uniq -c | sort -rn | awk '{print "   " $0}'
        fi
    done
    pgrep -x zfs-fuse >/dev/null || echo "== no zfs-fuse daemon runs"
    echo "== processes in ZFS, FUSE or uninterruptible sleep: pid, parent, state, seconds, wait channel, command"
    ps -eo pid=,ppid=,stat=,etimes=,wchan:32=,args= |
        awk '$3 ~ /^D/ || $5 ~ /fuse|request_wait|zfs|zio|txg|spa_/ || $6 ~ /(^|\/)(zfs|zpool|zbk|rsync)$/ {print "   " $0}'
    if [ -d /sys/module/zfs ]; then
        echo "== kernel stacks of the processes in uninterruptible sleep"
        for pid in $(ps -eo pid=,stat= | awk '$2 ~ /^D/ {print $1}'); do
            echo "   $pid: $(awk '{printf "%s ", $2}' "/proc/$pid/stack" 2>/dev/null)"
        done
    fi
)

# zfs_watchdog WHO PGID LIMIT POLL FIRED: while process group PGID runs, probes ZFS every POLL
# seconds; when no probe has answered for LIMIT seconds, or a zfs or zpool call of the tests has
# waited that long, prints the diagnosis, writes it to the file FIRED too, and ends the whole
# group (TERM, then KILL: a process waiting on a FUSE request dies only of KILL).
zfs_watchdog() {
    local who=$1 pgid=$2 limit=$3 poll=$4 fired=$5 last now stalled why pid
    set +e
    # Ended by the caller when the tests end: at once, not after the current sleep.
    local nap=
    trap '[ -z "$nap" ] || kill "$nap" 2>/dev/null; exit 0' TERM
    last=$(date +%s)
    while kill -0 -- "-$pgid" 2>/dev/null; do
        sleep "$poll" &
        nap=$!
        wait "$nap"
        nap=
        ! zfs_answers "$poll" || last=$(date +%s)
        now=$(date +%s)
        stalled=$(zfs_stalled_calls "$pgid" "$limit")
        # A stalled call is one still there a moment later, under the same pid.
        if [ -n "$stalled" ]; then
            sleep 1
            stalled=$(zfs_stalled_calls "$pgid" "$limit" | awk 'NR == FNR { seen[$1]; next } $1 in seen' <(echo "$stalled") -)
        fi
        if [ $((now - last)) -ge "$limit" ]; then
            why="no zfs command has answered for $((now - last)) s"
        elif [ -n "$stalled" ]; then
            why="a zfs call of the tests has waited $(echo "$stalled" | awk '{print $2}' | sort -n | tail -n 1) s for an answer"
        else
            continue
        fi
        {
            echo "$who: watchdog: $why (limit $limit s, ZBK_WATCHDOG_SECS); ZFS is wedged:"
            [ -z "$stalled" ] || { echo "== the waiting calls: pid, seconds, command"; echo "$stalled" | awk '{print "   " $0}'; }
            zfs_diagnosis
            echo "$who: watchdog: stopping the tests. To recover zfs-fuse: pkill -9 -x zfs-fuse; rm -f /run/zfs-fuse.pid; then run tests/run.sh again."
        } | tee "$fired" >&2
        # The zfs calls of ssh sessions (the test sshd's) run in sessions of their own.
        for pid in $(zfs_stalled_calls "$pgid" 0 | awk '{print $1}'); do
            kill -KILL "$pid" 2>/dev/null
        done
        kill -TERM -- "-$pgid" 2>/dev/null || true
        for _ in $(seq 20); do
            kill -0 -- "-$pgid" 2>/dev/null || return 0
            sleep 0.5
        done
        kill -KILL -- "-$pgid" 2>/dev/null || true
        # A test that stopped the daemon (tests/hang.rs) resumes it when it ends, which a
        # killed test never does.
        for pid in $(pgrep -x zfs-fuse); do
            [ "$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null)" != T ] || kill -CONT "$pid"
        done
        return 0
    done
}
