#!/usr/bin/env bash
# tests/run.sh: runs zbk's whole test suite on Debian as root. Installs what the tests use
# (zfs-fuse, rsync, openssh, mandoc, faketime) when missing, starts the zfs-fuse daemon when it
# is not running, clears test pools left by a killed run, then runs `cargo test`, and the hang
# suite (tests/hang.rs) on its own after it. Extra arguments go to cargo test instead.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "tests/run.sh: the tests create ZFS pools and need root: sudo tests/run.sh" >&2
    exit 1
fi
export PATH="$HOME/.cargo/bin:/usr/local/sbin:/usr/sbin:/sbin:$PATH"

need=()
command -v zfs-fuse >/dev/null || need+=(zfs-fuse)
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

if [ ! -c /dev/fuse ]; then
    echo "tests/run.sh: /dev/fuse is missing: zfs-fuse needs FUSE (modprobe fuse, or give the container /dev/fuse)" >&2
    exit 1
fi

# shellcheck source=tests/lib/zfs-fuse.sh
. tests/lib/zfs-fuse.sh
ensure_zfs_fuse_daemon tests/run.sh

# Pools of a test run that was killed before its cleanup ran: the test process's pid is in the
# name (zbkt<pid>x<n>). A live process's pools are left alone, since destroying a pool under
# another suite's running zbk can wedge the zfs-fuse daemon for everyone.
mkdir -p /run/lock
while read -r pool; do
    [[ $pool =~ ^zbkt([0-9]+)x ]] || continue
    kill -0 "${BASH_REMATCH[1]}" 2>/dev/null || flock /run/lock/zbk-zfs-fuse-mount.lock zpool destroy -f "$pool" || true
done < <(zpool list -H -o name 2>/dev/null)

cargo test --locked "$@"

# The hang suite stops the zfs-fuse daemon: alone, after the rest, one test at a time. Given
# arguments, only what they name runs (`tests/run.sh --test hang`).
if [ $# -eq 0 ]; then
    cargo test --locked --test hang -- --test-threads=1
fi
