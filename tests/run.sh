#!/usr/bin/env bash
# tests/run.sh: runs zbk's whole test suite on Debian as root, on the ZFS this machine has:
# OpenZFS where its kernel module is loaded (pools on files in ZBK_TEST_POOL_DIR), zfs-fuse
# elsewhere (installed and its daemon started when missing). Installs what the tests use when
# missing, clears test pools left by a killed run, then runs `cargo test`, and the hang suite
# (tests/hang.rs) on its own after it, under a watchdog that ends the run with a diagnosis when
# ZFS stops answering. Extra arguments go to cargo test: options (`--no-fail-fast`) keep the
# whole suite, arguments that name tests (`--test run`, a filter) run only those.
#
# Environment: ZBK_TEST_POOL_DIR (OpenZFS: where pool files go; default /var/tmp/zbk-test-pools,
# never tmpfs), ZBK_WATCHDOG_SECS (how long ZFS may go without answering; default 300),
# ZBK_WATCHDOG_POLL (seconds between probes; default 20).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "tests/run.sh: the tests create ZFS pools and need root: sudo tests/run.sh" >&2
    exit 1
fi
# The system directories go after the caller's PATH, not before: where OpenZFS lives elsewhere
# (/opt/ozfs/sbin in the VM), the zfs the caller found first stays the one the tests use.
export PATH="$HOME/.cargo/bin:$PATH:/usr/local/sbin:/usr/sbin:/sbin"

# shellcheck source=tests/lib/zfs.sh
. tests/lib/zfs.sh
# shellcheck source=tests/lib/zfs-fuse.sh
. tests/lib/zfs-fuse.sh
# shellcheck source=tests/lib/watchdog.sh
. tests/lib/watchdog.sh

if openzfs_here; then
    zfs=openzfs
elif command -v zfs >/dev/null && ! command -v zfs-fuse >/dev/null; then
    # zfsutils-linux and zfs-fuse both ship /sbin/zfs: installing one would replace the other.
    echo "tests/run.sh: $(command -v zfs) is not zfs-fuse's and the OpenZFS module is not loaded: modprobe zfs (tests/run.sh never installs zfs-fuse over another ZFS)" >&2
    exit 1
else
    zfs=zfs-fuse
fi

need=()
[ "$zfs" != zfs-fuse ] || command -v zfs-fuse >/dev/null || need+=(zfs-fuse)
# tests/hang.rs suspends an OpenZFS pool's device-mapper device.
[ "$zfs" != openzfs ] || command -v dmsetup >/dev/null || need+=(dmsetup)
command -v rsync >/dev/null || need+=(rsync)
command -v ssh >/dev/null || need+=(openssh-client)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v mandoc >/dev/null || need+=(mandoc)
command -v setfattr >/dev/null || need+=(attr)
command -v setfacl >/dev/null || need+=(acl)
# tests/report.rs: the page in a real browser, the textfile through real node_exporter and
# Prometheus, zbk's clock moved with faketime.
command -v chromium >/dev/null || need+=(chromium)
command -v prometheus >/dev/null || need+=(prometheus)
command -v prometheus-node-exporter >/dev/null || need+=(prometheus-node-exporter)
command -v faketime >/dev/null || need+=(faketime)
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
    echo "tests/run.sh: installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
mkdir -p /run/lock

pool_dir=${ZBK_TEST_POOL_DIR:-}
case $zfs in
    zfs-fuse)
        if [ ! -c /dev/fuse ]; then
            echo "tests/run.sh: /dev/fuse is missing: zfs-fuse needs FUSE (modprobe fuse, or give the container /dev/fuse)" >&2
            exit 1
        fi
        ensure_zfs_fuse_daemon tests/run.sh
        ;;
    openzfs)
        # File vdevs on tmpfs do not work on OpenZFS: the pool files need a disk filesystem.
        pool_dir=${ZBK_TEST_POOL_DIR:-/var/tmp/zbk-test-pools}
        mkdir -p "$pool_dir"
        if [ "$(stat -f -c %T "$pool_dir")" = tmpfs ]; then
            echo "tests/run.sh: $pool_dir is on tmpfs, where OpenZFS cannot keep a pool: set ZBK_TEST_POOL_DIR to a directory on disk" >&2
            exit 1
        fi
        export ZBK_TEST_POOL_DIR=$pool_dir
        ;;
esac

# A pool that stays is another run's leftover, not this run's failure; a wedged ZFS is both.
sweep_test_pools tests/run.sh "$pool_dir" || [ $? -eq 1 ]
zfs_line=$(zfs_name)
echo "tests/run.sh: testing on $zfs_line${pool_dir:+, pool files in $pool_dir}"

# cargo runs in its own process group, so that the watchdog can end every test process at once.
work=target/run-sh
mkdir -p "$work"
log=$work/output.log
fired=$work/watchdog.txt
rm -f "$fired"
: >"$log"
started=$(date +%s)
status=0
# under_watchdog ARGS: `cargo test ARGS` with its output shown and kept in the log; sets status
# when it fails.
under_watchdog() {
    local tests watchdog code=0
    set -m
    cargo test --locked "$@" >>"$log" 2>&1 &
    tests=$!
    set +m
    zfs_watchdog tests/run.sh "$tests" "${ZBK_WATCHDOG_SECS:-300}" "${ZBK_WATCHDOG_POLL:-20}" "$fired" &
    watchdog=$!
    trap 'kill -TERM -- "-$tests" "$watchdog" 2>/dev/null; exit 130' INT TERM
    tail -n +"$(($(wc -l <"$log") + 1))" -f --pid="$tests" "$log"
    wait "$tests" || code=$?
    kill "$watchdog" 2>/dev/null || true
    wait "$watchdog" 2>/dev/null || true
    trap - INT TERM
    [ "$code" -eq 0 ] || status=$code
}

under_watchdog "$@"
# The hang suite stops the zfs-fuse daemon: alone, after the rest, one test at a time. Given
# arguments that name tests (`--test hang`, a filter), only what they name runs; options alone
# (`--no-fail-fast`) leave the whole suite, the hang suite with its own arguments included.
# The value of an option given apart (`--skip NAME`, `-j 2`) names nothing.
named=0 value=0
for arg in "$@"; do
    if [ "$value" -eq 1 ]; then value=0; continue; fi
    case $arg in
        --test | --test=* | [!-]*) named=1 ;;
        --skip | --test-threads | --format | --color | --logfile | --shuffle-seed | -Z | \
            -j | --jobs | -p | --package | --exclude | -F | --features | --target | \
            --target-dir | --profile | --manifest-path | --config) value=1 ;;
    esac
done
if [ "$named" -eq 0 ] && [ ! -s "$fired" ]; then
    under_watchdog --test hang -- --test-threads=1
fi

# The summary: every suite's counts added up, and which ZFS they ran on.
read -r passed failed ignored < <(awk '/^test result:/ {p += $4; f += $6; i += $8} END {print p + 0, f + 0, i + 0}' "$log")
# Counted as words: a test's SKIPPED line on stderr can land inside the harness's stdout line.
skipped=$(grep -o 'SKIPPED ' "$log" | wc -l || true)
echo
echo "tests/run.sh: $passed passed; $failed failed; $ignored ignored; $skipped skipped as the other ZFS's ($(($(date +%s) - started)) s)"
if [ -s "$fired" ]; then
    echo "tests/run.sh: FAILED on $zfs_line: stopped by the watchdog, whose diagnosis is above and in $fired" >&2
    exit 1
fi
if [ "$status" -ne 0 ]; then
    echo "tests/run.sh: FAILED on $zfs_line (cargo test exited $status)" >&2
    exit "$status"
fi
echo "tests/run.sh: ok on $zfs_line"
