#!/usr/bin/env bash
# tests/lib/watchdog-check.sh: proves tests/run.sh's watchdog on the real zfs-fuse daemon. Starts
# a suite under tests/run.sh with a short limit, stops the daemon (SIGSTOP) once a test holds a
# pool, and expects run.sh to fail within the limit with the daemon's threads and the stuck
# processes in its diagnosis; then resumes the daemon (on every path) and checks that the sweep
# removes the pools the stopped tests left behind. It stops the daemon every user of this machine
# shares: run it only when nothing else uses the daemon. Usage: tests/lib/watchdog-check.sh [SUITE]
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$HOME/.cargo/bin:$PATH:/usr/local/sbin:/usr/sbin:/sbin"
suite=${1:-run}
limit=30
poll=5

daemon=$(pgrep -x zfs-fuse) || { echo "watchdog-check: no zfs-fuse daemon runs: start one (tests/run.sh does)" >&2; exit 1; }
trap 'kill -CONT "$daemon" 2>/dev/null || true' EXIT
before=$(zpool list -H -o name 2>/dev/null | grep -c '^zbkt' || true)
out=target/run-sh/watchdog-check.log
mkdir -p target/run-sh

# The suite is built first, so that the stop lands on tests, not on the compiler.
cargo test --locked --no-run --test "$suite" 2>/dev/null
ZBK_WATCHDOG_SECS=$limit ZBK_WATCHDOG_POLL=$poll tests/run.sh --test "$suite" >"$out" 2>&1 &
runner=$!
for _ in $(seq 600); do
    [ "$(zpool list -H -o name 2>/dev/null | grep -c '^zbkt' || true)" -gt "$before" ] && break
    sleep 0.2
done
kill -STOP "$daemon"
stopped=$(date +%s)
echo "watchdog-check: stopped zfs-fuse (pid $daemon) while tests/run.sh --test $suite held a pool"
status=0
# A watchdog that never fires must not hang this check either.
for _ in $(seq $((limit * 4))); do
    kill -0 "$runner" 2>/dev/null || break
    sleep 1
done
if kill -0 "$runner" 2>/dev/null; then
    kill -CONT "$daemon"
    wait "$runner" || true
    echo "watchdog-check: FAILED: tests/run.sh still ran $((limit * 4)) s after the stop" >&2
    exit 1
fi
wait "$runner" || status=$?
took=$(($(date +%s) - stopped))
kill -CONT "$daemon"
echo "watchdog-check: tests/run.sh ended $took s after the stop, status $status; its diagnosis:"
sed -n '/watchdog: no zfs command/,/watchdog: stopping/p' "$out"

fail=()
[ "$status" -ne 0 ] || fail+=("tests/run.sh exited 0")
grep -q "watchdog: no zfs command has answered" "$out" || fail+=("no watchdog message")
grep -q "== zfs-fuse daemon, pid $daemon, state T" "$out" || fail+=("no stopped daemon in the diagnosis")
grep -q -- "-- its threads" "$out" || fail+=("no daemon threads in the diagnosis")
grep -q "FAILED on zfs-fuse.*stopped by the watchdog" "$out" || fail+=("no summary naming the watchdog")
[ "$took" -le $((limit + 3 * poll + 20)) ] || fail+=("took $took s for a $limit s limit")

# The stopped tests were killed before their cleanup: their pools are the sweep's to remove.
# shellcheck source=tests/lib/zfs.sh
. tests/lib/zfs.sh
sweep_test_pools watchdog-check || fail+=("the sweep failed")
left=$(zpool list -H -o name 2>/dev/null | grep -c '^zbkt' || true)
[ "$left" -le "$before" ] || fail+=("$left test pools left after the sweep (had $before)")

if [ ${#fail[@]} -gt 0 ]; then
    printf 'watchdog-check: FAILED: %s\n' "${fail[@]}" >&2
    echo "watchdog-check: tests/run.sh's whole output: $out" >&2
    exit 1
fi
echo "watchdog-check: ok (the watchdog fired $took s after the stop; limit $limit s, probes every $poll s)"
