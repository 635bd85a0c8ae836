#!/usr/bin/env bash
# tests/try.sh: tries zbk end to end on a fresh Debian machine, as root, in a sandbox: a ZFS
# pool on a file, one host backed up from a local directory, two runs, the snapshots with their
# expiries, a reap preview and a reap. The pool is destroyed at the end (KEEP=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:/usr/local/sbin:/usr/sbin:/sbin:$PATH"

[ "$(id -u)" -eq 0 ] || { echo "try.sh: run as root (it creates a ZFS pool)" >&2; exit 1; }
command -v cargo >/dev/null || { echo "try.sh: needs a Rust toolchain, 1.89 or later (rustup)" >&2; exit 1; }
for pkg in zfs-fuse rsync; do
    command -v "$pkg" >/dev/null || { apt-get update -qq; apt-get install -y -qq zfs-fuse rsync >/dev/null; break; }
done
if ! zpool list >/dev/null 2>&1; then
    [ -f /run/zfs-fuse.pid ] && ! kill -0 "$(cat /run/zfs-fuse.pid)" 2>/dev/null && rm -f /run/zfs-fuse.pid
    zfs-fuse --pidfile /run/zfs-fuse.pid
    for _ in $(seq 50); do zpool list >/dev/null 2>&1 && break; sleep 0.2; done
fi

cargo build --release --locked --quiet
zbk() { echo "+ zbk $*" >&2; ./target/release/zbk --root "$sandbox/backup" "$@"; }

# Pool creation and destruction mount and unmount: they take the lock zbk takes, since two
# such calls at once can wedge the zfs-fuse daemon.
locked() { mkdir -p /run/lock && flock /run/lock/zbk-zfs-fuse-mount.lock "$@"; }
sandbox=$(mktemp -d /tmp/zbk-try.XXXXXX)
pool="zbktry$$"
cleanup() {
    [ "${KEEP:-0}" = 1 ] && { echo "kept: pool $pool, root $sandbox/backup"; return; }
    for _ in 1 2 3 4 5; do locked zpool destroy -f "$pool" 2>/dev/null && break; sleep 0.5; done
    rm -rf "$sandbox"
}
trap cleanup EXIT

truncate -s 512M "$sandbox/pool.img"
locked zpool create -m "$sandbox/backup" "$pool" "$sandbox/pool.img"
mkdir -p "$sandbox/client/srv/www"
echo "hello from the client" > "$sandbox/client/srv/www/index.html"

zbk init "$pool"
zbk add web1.example.com --source "$sandbox/client/srv/www/"
zbk run web1.example.com -v
zbk run --all --tier monthly -v
zbk list
echo "+ zfs get zbk:expires,zbk:tier,zbk:status (set on each snapshot, source local)" >&2
zfs get -H -r -o name,property,value,source zbk:expires,zbk:tier,zbk:status "$pool/hosts/web1.example.com" | grep @
echo "+ the backed-up file:" >&2
cat "$sandbox/backup/hosts/web1.example.com/d$sandbox/client/srv/www/index.html"
zbk reap --as-of "$(date -u -d '+8 days' +%Y-%m-%dT%H:%M:%SZ)"
zbk reap -v
