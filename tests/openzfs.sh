#!/usr/bin/env bash
# tests/openzfs.sh: the OpenZFS tier. Builds the integration-test binaries on this machine, then
# runs them inside a throwaway VM with the real OpenZFS kernel module (../shared/openzfs-vm),
# against pools on the VM's scratch disk, and prints a cargo-style summary. The same tests run
# on zfs-fuse under tests/run.sh; the ones named openzfs_* prove what only OpenZFS can do.
#
#   sudo tests/openzfs.sh                 # every suite that touches ZFS
#   sudo tests/openzfs.sh restore run     # some suites
#   sudo tests/openzfs.sh restore -- fidelity   # a suite, with a test-name filter
#
# Environment: OPENZFS_VM (the kit's directory; default ../shared/openzfs-vm beside the checkout),
# OPENZFS_TEST_THREADS (tests at once in each suite; default 2), OPENZFS_LANES (suites at once;
# default 2), and the kit's own VM_* settings.
set -euo pipefail
cd "$(dirname "$0")/.."
checkout=$(pwd)

# The suites that run by default: the OpenZFS-only tests and every suite of zbk's own commands.
# faults (zfs-fuse fault shims), reap_scale (1,000 snapshots made one by one) and year (400
# simulated days of cron, some 900 runs of zbk) take longer than the tier's budget under
# emulation; name them to run them. man_pages, cron_file and bench_smoke touch no pool.
default_suites=(openzfs encrypt init add_remove run reap status report keep doctor diff restore replicate guards fleet ssh hang)

if [ "$(id -u)" -ne 0 ]; then
    echo "tests/openzfs.sh: the VM exports / to its guest and needs root: sudo tests/openzfs.sh" >&2
    exit 1
fi
export PATH="$HOME/.cargo/bin:/usr/local/sbin:/usr/sbin:/sbin:$PATH"

kit=${OPENZFS_VM:-$checkout/../shared/openzfs-vm}
if [ ! -x "$kit/run.sh" ]; then
    echo "tests/openzfs.sh: no OpenZFS VM kit at $kit (set OPENZFS_VM to its directory)" >&2
    exit 1
fi
kit=$(cd "$kit" && pwd)

suites=()
filter=()
while [ $# -gt 0 ]; do
    case $1 in
        --) shift; filter=("$@"); break ;;
        *) suites+=("$1"); shift ;;
    esac
done
[ ${#suites[@]} -gt 0 ] || suites=("${default_suites[@]}")

# The guest runs this machine's programs: what the tests call must be installed here.
need=()
command -v rsync >/dev/null || need+=(rsync)
command -v ssh >/dev/null || need+=(openssh-client)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v getfacl >/dev/null || need+=(acl)
command -v getfattr >/dev/null || need+=(attr)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v dmsetup >/dev/null || need+=(dmsetup)
command -v python3 >/dev/null || need+=(python3)
command -v chromium >/dev/null || need+=(chromium)
command -v prometheus >/dev/null || need+=(prometheus)
command -v prometheus-node-exporter >/dev/null || need+=(prometheus-node-exporter)
command -v faketime >/dev/null || need+=(faketime)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
    echo "tests/openzfs.sh: installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ ! -f /opt/ozfs/vm/initrd.img ]; then
    echo "tests/openzfs.sh: setting up the OpenZFS VM (once per machine)"
    "$kit/setup.sh"
fi

# Build on this machine: the guest's CPU is emulated, and never runs a compiler.
work=$checkout/target/openzfs
mkdir -p "$work"
# The hang suite is left out of a plain `cargo test` (Cargo.toml): built by name.
{ cargo test --locked --no-run --message-format=json &&
    cargo test --locked --no-run --test hang --message-format=json; } 2>"$work/build.log" >"$work/build.json" || {
    cat "$work/build.log" >&2
    exit 1
}
declare -A binary
while IFS=$'\t' read -r name exe; do
    binary[$name]=$exe
done < <(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    t = m.get("target", {})
    if m.get("reason") == "compiler-artifact" and m.get("executable") and t.get("kind") == ["test"]:
        print(t["name"] + "\t" + m["executable"])
' "$work/build.json")

inner=$work/inner.sh
{
    echo 'set -u'
    echo '# Pool files need a real filesystem: file vdevs on the guest tmpfs do not work.'
    echo 'mkfs.ext4 -q -F /dev/vda1 && mkdir -p /scratch && mount /dev/vda1 /scratch || exit 124'
    echo 'export ZBK_TEST_POOL_DIR=/scratch'
    echo 'mkdir -p /run/sshd /run/lock && chmod 755 /run/sshd'
    echo '# Installed as a distribution installs it: ssh logins and cron find zfs on their PATH.'
    echo 'ln -sf /opt/ozfs/sbin/* /usr/local/sbin/ && ln -sf /opt/ozfs/sbin/mount.zfs /usr/sbin/ && export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    printf 'cd %q || exit 124\n' "$checkout"
    echo 'echo "guest: $(zfs version | head -n 1), kernel $(uname -r), $(nproc) CPUs"'
    echo '# Suites run side by side, each into its own file, printed whole when it ends: one'
    echo '# long test no longer leaves the second CPU idle, and the summary reads each block.'
    echo 'mkdir -p /tmp/suites'
    echo 'suite() {'
    echo '    local name=$1; shift'
    echo '    { echo "@@suite $name"; local start=$(date +%s); "$@" 2>&1'
    echo '      echo "@@end $name $? $(( $(date +%s) - start ))"; } >"/tmp/suites/$name.log"'
    echo '    flock /tmp/suites/.print cat "/tmp/suites/$name.log"'
    echo '}'
    for s in "${suites[@]}"; do
        exe=${binary[$s]:-}
        if [ -z "$exe" ]; then
            echo "tests/openzfs.sh: no test suite named $s (tests/$s.rs)" >&2
            exit 1
        fi
        printf 'while [ "$(jobs -rp | wc -l)" -ge %q ]; do wait -n; done\n' "${OPENZFS_LANES:-2}"
        printf 'suite %q %q --test-threads=%q' "$s" "$exe" "${OPENZFS_TEST_THREADS:-2}"
        [ ${#filter[@]} -eq 0 ] || printf ' %q' "${filter[@]}"
        printf ' &\n'
    done
    echo 'wait'
} >"$inner"

# A VM that hangs without output is rare and unexplained: the kit advises one retry.
log=$work/output.log
export VM_DISK_MB=${VM_DISK_MB:-16384}
export VM_TIMEOUT=${VM_TIMEOUT:-1800}
started=$(date +%s)
for attempt in 1 2; do
    set +e
    "$kit/run.sh" "bash $inner" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    set -e
    [ "$status" -eq 125 ] && [ "$attempt" -eq 1 ] && ! grep -q '^@@suite' "$log" || break
    echo "tests/openzfs.sh: the VM ended without a result; trying once more" >&2
done

echo
echo "OpenZFS tier: $(grep -m1 '^guest:' "$log" || echo 'guest did not report') ($(( $(date +%s) - started )) s)"
python3 - "$log" "${suites[@]}" <<'EOF'
import re, sys
log, suites = sys.argv[1], sys.argv[2:]
seen, totals, bad = {}, [0, 0, 0], []
current = None
for line in open(log, errors="replace"):
    line = line.rstrip("\r\n")
    if line.startswith("@@suite "):
        current = line.split()[1]
        seen[current] = {"result": None, "status": None, "secs": "?", "skipped": 0}
    elif line.startswith("@@end ") and current:
        _, name, status, secs = line.split()
        seen[name]["status"], seen[name]["secs"] = int(status), secs
    elif current and line.startswith("SKIPPED "):
        seen[current]["skipped"] += 1
    elif current and (m := re.match(r"test result: (\w+)\. (\d+) passed; (\d+) failed; (\d+) ignored", line)):
        seen[current]["result"] = tuple(int(x) for x in m.groups()[1:])
for s in suites:
    r = seen.get(s)
    if r is None or r["result"] is None:
        print(f"  {s:<12} did not finish")
        bad.append(s)
        continue
    p, f, i = r["result"]
    totals = [totals[0] + p, totals[1] + f, totals[2] + i]
    state = "ok" if f == 0 and r["status"] == 0 else "FAILED"
    if state != "ok":
        bad.append(s)
    extra = f", {r['skipped']} skipped as zfs-fuse only" if r["skipped"] else ""
    print(f"  {s:<12} {state}: {p} passed; {f} failed{extra} ({r['secs']} s)")
state = "ok" if not bad else "FAILED"
print(f"test result: {state}. {totals[0]} passed; {totals[1]} failed; {totals[2]} ignored")
if bad:
    print("failed or unfinished suites: " + " ".join(bad))
sys.exit(1 if bad else 0)
EOF
