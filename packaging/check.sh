#!/bin/bash
# check.sh: CI check of zbk's packaging: builds, lints, compares, installs and purges the .deb and .rpm
#
# Run as root on Debian 12 (bookworm) from the repository top:
#   bash packaging/check.sh
# It installs what it lacks (apt-get: lintian, rpm, rpmlint, ...; cargo
# install: cargo-deb), builds the release binary, the .deb (cargo-deb) and
# the .rpm (rpmbuild), lints both, checks that they hold the same files,
# installs the .deb, checks what it installed, purges it and checks that
# nothing is left.  It prints one PASS/FAIL line per check and ends with
# "N passed, N failed"; the exit status is non-zero if any check failed.
# Safe to run again and again: each run starts from a clean package state.
# VERBOSE=1 prints the output of the checks that pass too.
set -euo pipefail

cd "$(dirname "$0")/.."
top=$PWD
started=$SECONDS
target_dir=${CARGO_TARGET_DIR:-target}
case $target_dir in /*) ;; *) target_dir=$top/$target_dir ;; esac
export CARGO_TARGET_DIR=$target_dir
export PATH=$HOME/.cargo/bin:$PATH
export DEBIAN_FRONTEND=noninteractive

if [ "$(id -u)" -ne 0 ]; then
    echo "check.sh: run as root (it installs and purges the package)" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

work=$(mktemp -d /tmp/zbk-pkg-check.XXXXXX)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
summary=()
notes=()

# check NAME COMMAND...: runs COMMAND with errexit in a subshell, logs its
# output, and counts it.  The log of a failed check is printed.
check() {
    local name=$1
    shift
    local log=$work/log.$((passed + failed))
    set +e
    (set -e; "$@") >"$log" 2>&1
    local rc=$?
    set -e
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        summary+=("PASS  $name")
        echo "PASS  $name"
        [ -z "${VERBOSE:-}" ] || sed 's/^/      | /' "$log"
    else
        failed=$((failed + 1))
        summary+=("FAIL  $name")
        echo "FAIL  $name (exit $rc):"
        sed 's/^/      | /' "$log" | tail -n 60
    fi
}

note() {
    notes+=("$*")
    echo "NOTE  $*"
}

version=$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml | sed -n 1p)
deb=$target_dir/debian/zbk_${version}_$(dpkg --print-architecture).deb
rpm_file=

# ---------------------------------------------------------------- tools

install_tools() {
    local want=(lintian rpm rpmlint cpio man-db systemd binutils dpkg-dev gzip)
    local missing=()
    local p
    for p in "${want[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "apt-get install ${missing[*]}"
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
    if ! cargo deb --version >/dev/null 2>&1; then
        echo "cargo install cargo-deb"
        cargo install cargo-deb --locked
    fi
    cargo deb --version
    lintian --version
    rpmbuild --version
    rpmlint --version
}
check "tools: lintian, rpm, rpmlint, cargo-deb installed" install_tools

monitoring_rules() {
    # promtool comes with Debian's prometheus package.
    command -v promtool >/dev/null || {
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends prometheus
    }
    promtool check rules packaging/monitoring/zbk.rules.yml
    (cd packaging/monitoring && promtool test rules zbk.rules.test.yml)
    # The dashboard is JSON Grafana can import: panels, each with a query.
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert all(p["targets"] for p in d["panels"]), "a panel without a query"; print(len(d["panels"]), "panels")' packaging/monitoring/zbk-dashboard.json
}
check "monitoring: promtool test rules passes on zbk.rules.yml" monitoring_rules

# Leftovers of an earlier, interrupted run would spoil the install checks.
if dpkg-query -W -f='${Status}' zbk 2>/dev/null | grep -qv 'not-installed'; then
    note "zbk was installed or half-removed before this run: purging it first"
    dpkg --purge zbk >/dev/null
fi

# ---------------------------------------------------------------- build

build_binary() {
    local locked=()
    [ -f Cargo.lock ] && locked=(--locked)
    cargo build --release "${locked[@]}"
    test -x "$target_dir/release/zbk"
}
check "build: cargo build --release" build_binary

versions_agree() {
    local changelog spec spec_log
    changelog=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
    spec=$(sed -n 's/^Version: *//p' packaging/rpm/zbk.spec)
    spec_log=$(sed -n '/^%changelog/,$ s/^\*.* - \([^ ]*\)-[^- ]*$/\1/p' packaging/rpm/zbk.spec | sed -n 1p)
    echo "Cargo.toml $version, debian/changelog $changelog, zbk.spec $spec (%changelog $spec_log)"
    [ "$changelog" = "$version" ] && [ "$spec" = "$version" ] && [ "$spec_log" = "$version" ]
}
check "versions: Cargo.toml = debian/changelog = zbk.spec" versions_agree

build_deb() {
    packaging/build-deb.sh
    test -f "$deb"
    dpkg-deb --info "$deb"
    dpkg-deb --contents "$deb"
}
check "deb: cargo deb builds $(basename "$deb")" build_deb

lint_deb() {
    # -I shows the informational tags too; only errors and warnings fail.
    local out
    out=$(lintian -I --pedantic --fail-on none "$deb" 2>&1)
    echo "$out"
    ! grep -E '^[EW]: ' <<<"$out"
}
check "deb: lintian reports no E: or W:" lint_deb

synopsis() {
    # cargo-deb folds a description of 80 characters or more, so the
    # synopsis would end mid-sentence and lintian could not tell.
    local desc
    # sed, not head, and grep without -q in this file: each reads its input to the end, where
    # head or grep -q would close the pipe while the writer still writes, and pipefail would
    # take the writer's SIGPIPE (exit 141) for a failed check.
    desc=$(dpkg-deb -f "$deb" Description | sed -n 1p)
    echo "Description: $desc"
    grep -q "^description = \"$desc\"$" Cargo.toml ||
        { echo "Cargo.toml's description was folded: shorten it to under 80 characters"; return 1; }
}
check "deb: the synopsis is Cargo.toml's whole description (< 80 characters)" synopsis

build_rpm() {
    rpm_file=$(packaging/build-rpm.sh | tail -n 1)
    echo "$rpm_file" > "$work/rpm-path"
    test -f "$rpm_file"
    rpm -qpi "$rpm_file"
    rpm -qpl "$rpm_file"
}
check "rpm: rpmbuild builds the .rpm" build_rpm
rpm_file=$(cat "$work/rpm-path" 2>/dev/null || true)

lint_rpm() {
    # packaging/rpm/rpmlint.toml says why each filtered finding is filtered.
    local out
    out=$(rpmlint -c packaging/rpm/rpmlint.toml "$rpm_file" packaging/rpm/zbk.spec 2>&1 || true)
    echo "$out"
    ! grep -E ': [EW]: ' <<<"$out" | grep -v ': E: no-signature'
}
check "rpm: rpmlint (package and spec) reports nothing but E: no-signature" lint_rpm

# The file lists of both packages, as "MODE PATH", directories left out.  The
# copyright file is /usr/share/licenses/zbk/copyright (%license) in the rpm;
# the rpm's changelog is %changelog, not /usr/share/doc/zbk/changelog.gz.
deb_files() {
    dpkg-deb --contents "$deb" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $1, $6 }' \
        | grep -v ' /usr/share/doc/zbk/changelog.gz$' | sort
}
rpm_files() {
    rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' "$rpm_file" | awk '$1 !~ /^d/' \
        | sed 's| /usr/share/licenses/zbk/| /usr/share/doc/zbk/|' | sort
}
same_payload() {
    deb_files > "$work/deb.list"
    rpm_files > "$work/rpm.list"
    echo "rpm -qpl:"
    rpm -qpl "$rpm_file"
    diff -u "$work/deb.list" "$work/rpm.list"
    [ -s "$work/deb.list" ]
    rpm -qp --changelog "$rpm_file" | grep . >/dev/null
    # Same contents too: the binary byte for byte, compressed files unpacked.
    mkdir -p "$work/deb-root" "$work/rpm-root"
    dpkg-deb -x "$deb" "$work/deb-root"
    (cd "$work/rpm-root" && rpm2cpio "$rpm_file" | cpio -idm --quiet)
    mv "$work/rpm-root/usr/share/licenses/zbk/copyright" "$work/rpm-root/usr/share/doc/zbk/copyright"
    local mode path
    while read -r mode path; do
        case $path in
            *.gz) cmp <(zcat "$work/deb-root$path") <(zcat "$work/rpm-root$path") ;;
            *) cmp "$work/deb-root$path" "$work/rpm-root$path" ;;
        esac
    done < "$work/deb.list"
    echo "$(wc -l < "$work/deb.list") files, same modes and contents"
}
check "payload: rpm -qpl lists the .deb's files, same modes and contents" same_payload

rpm_owns_its_files() {
    # Install into a scratch root and erase again: every directory the
    # package creates must be owned, or rpm -e leaves it behind.
    local root=$work/rpm-install
    mkdir -p "$root"
    local db=(--root "$root" --dbpath /var/lib/rpm)
    rpm "${db[@]}" --initdb
    rpm "${db[@]}" -i --nodeps --noscripts "$rpm_file"
    test -x "$root/usr/sbin/zbk"
    test -f "$root/usr/share/doc/zbk/examples/zbk.toml"
    rpm "${db[@]}" -e zbk
    local left
    left=$(cd "$root" && find . -path ./var/lib/rpm -prune -o ! -type d -print -o -type d -path '*zbk*' -print)
    [ -z "$left" ] || { echo "left after rpm -e: $left"; return 1; }
}
check "rpm: installs into a scratch root and erases without leftovers" rpm_owns_its_files

# ---------------------------------------------------------------- install

install_deb() {
    # apt resolves Depends (rsync, openssh-client); Recommends (zfsutils-linux,
    # in contrib) are not wanted here.
    apt-get install -y -qq --no-install-recommends "$deb" ||
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$deb"; }
    dpkg-query -W -f='${Status} ${Version}\n' zbk | grep -x "install ok installed $version"
}
check "install: apt-get install ./$(basename "$deb")" install_deb

zbk_version() {
    local out
    out=$(/usr/sbin/zbk --version)
    echo "$out"
    grep -qw -- "$version" <<<"$out"
    [ "$(command -v zbk)" = /usr/sbin/zbk ]
}
check "install: zbk --version says $version" zbk_version

man_pages() {
    local page missing=0
    for page in man/*.[58]; do
        page=${page##*/}
        dpkg -L zbk | grep -x "/usr/share/man/man${page##*.}/$page.gz" >/dev/null || { echo "not in dpkg -L: $page.gz"; missing=1; }
    done
    [ $missing -eq 0 ]
    local exclude
    exclude=$(grep -ls 'path-exclude.*/usr/share/man' /etc/dpkg/dpkg.cfg /etc/dpkg/dpkg.cfg.d/* 2>/dev/null || true)
    if [ -n "$exclude" ]; then
        echo "dpkg excludes /usr/share/man here ($exclude): man -w cannot work; dpkg -L lists every page"
        return 0
    fi
    man -w zbk-run
    man -w zbk run
    man -w 5 zbk.toml
    # lexgrog reads the NAME line that whatis and lintian read.
    for page in /usr/share/man/man*/zbk*; do
        lexgrog "$page"
    done
}
check "install: man -w zbk-run finds the installed pages" man_pages
if grep -qs 'path-exclude.*/usr/share/man' /etc/dpkg/dpkg.cfg /etc/dpkg/dpkg.cfg.d/* 2>/dev/null; then
    note "dpkg path-exclude drops /usr/share/man on this host: man pages were checked with dpkg -L, not man -w"
fi

# Checks one cron time field: comma list of *, N, N-M, each with an optional /STEP.
cron_field_ok() {
    local text=$1 lo=$2 hi=$3 names=${4:-} item range step a b
    [ -n "$text" ] || return 1
    if [ -n "$names" ]; then
        local i=$lo n
        for n in $names; do text=$(sed "s/\\b$n\\b/$i/Ig" <<<"$text"); i=$((i + 1)); done
    fi
    IFS=, read -ra items <<<"$text"
    for item in "${items[@]}"; do
        [[ $item =~ ^(\*|[0-9]+(-[0-9]+)?)(/[1-9][0-9]*)?$ ]] || return 1
        range=${item%%/*}
        step=${item#"$range"}
        [ "$range" = '*' ] && continue
        [ -z "$step" ] || [[ $range == *-* ]] || return 1
        a=${range%-*}; b=${range#*-}
        [ $((10#$a)) -ge "$lo" ] && [ $((10#$b)) -le "$hi" ] && [ $((10#$a)) -le $((10#$b)) ] || return 1
    done
}
cron_file() {
    local f=/etc/cron.d/zbk
    test -f $f
    [ "$(stat -c '%a %U' $f)" = "644 root" ]
    dpkg-query -W -f='${Conffiles}\n' zbk | grep "^ $f " >/dev/null
    [ "$(tail -c 1 $f | od -An -c | tr -d ' ')" = '\n' ] || { echo "no newline at the end"; return 1; }
    grep -Eq '^PATH=(.*:)?/usr/sbin(:|$)' $f || { echo "PATH lacks /usr/sbin"; return 1; }
    grep -Eq '^PATH=(.*:)?/sbin(:|$)' $f || { echo "PATH lacks /sbin"; return 1; }
    local n=0 lineno=0 line m h dom mon dow user cmd
    local -A minutes=()
    while IFS= read -r line; do
        lineno=$((lineno + 1))
        [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
        [[ $line =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] && continue
        read -r m h dom mon dow user cmd <<<"$line"
        cron_field_ok "$m" 0 59 &&
            cron_field_ok "$h" 0 23 &&
            cron_field_ok "$dom" 1 31 &&
            cron_field_ok "$mon" 1 12 "jan feb mar apr may jun jul aug sep oct nov dec" &&
            cron_field_ok "$dow" 0 7 "sun mon tue wed thu fri sat" ||
            { echo "line $lineno: bad time field: $line"; return 1; }
        [ "$user" = root ] || { echo "line $lineno: user is not root"; return 1; }
        [[ $cmd == '[ -x /usr/sbin/zbk ] && [ -f /backup/etc/zbk.toml ] && zbk '* ]] ||
            { echo "line $lineno: not a guarded zbk command: $cmd"; return 1; }
        [ -z "${minutes[$m]:-}" ] || { echo "line $lineno: minute $m also on line ${minutes[$m]}"; return 1; }
        minutes[$m]=$lineno
        n=$((n + 1))
    done < $f
    echo "$n job lines, all valid, each at its own minute"
    [ "$n" -eq 6 ]
    local tier
    for tier in 'run --all$' 'run --all --tier weekly$' 'run --all --tier monthly$' \
        'run --all --tier quarterly$' 'run --all --tier yearly$' 'reap$'; do
        grep -Eq "^[^#].*&& zbk $tier" $f || { echo "no line for zbk $tier"; return 1; }
    done
}
check "install: /etc/cron.d/zbk is a conffile and parses" cron_file

example_config() {
    # zbk itself must accept the shipped example: it reads the config before
    # it asks zfs anything, and its config errors name the file.  (list only
    # reads; whether zfs is there or not does not matter here.)
    local root=$work/example-root out how
    mkdir -p "$root/etc"
    for how in as-shipped uncommented; do
        if [ $how = as-shipped ]; then
            cp /usr/share/doc/zbk/examples/zbk.toml "$root/etc/zbk.toml"
        else
            # Every "#key = default" line switched on must be accepted too.
            sed -E 's/^#([a-z_]+ = )/\1/' /usr/share/doc/zbk/examples/zbk.toml > "$root/etc/zbk.toml"
        fi
        out=$(timeout 60 /usr/sbin/zbk --root "$root" list 2>&1 || true)
        echo "zbk list with the example config ($how) said: $out"
        if grep -F "$root/etc/zbk.toml" <<<"$out"; then return 1; fi
    done
}
check "install: zbk accepts examples/zbk.toml" example_config

monitoring_installed() {
    local f
    for f in zbk.rules.yml zbk-dashboard.json; do
        dpkg -L zbk | grep -x "/usr/share/zbk/monitoring/$f" >/dev/null || { echo "not in dpkg -L: $f"; return 1; }
    done
    promtool check rules /usr/share/zbk/monitoring/zbk.rules.yml
}
check "install: alert rules and dashboard in /usr/share/zbk/monitoring" monitoring_installed

cron_lines_silent() {
    # Installed but not initialised: every line must exit without a word,
    # or cron would mail root every hour.
    if [ -e /backup/etc/zbk.toml ]; then
        echo "/backup/etc/zbk.toml exists here: not running the cron lines for real"
        return 0
    fi
    local cmd out
    while IFS= read -r cmd; do
        out=$(env -i PATH="$(sed -n 's/^PATH=//p' /etc/cron.d/zbk)" /bin/sh -c "$cmd" 2>&1 || true)
        [ -z "$out" ] || { echo "$cmd: said: $out"; return 1; }
    done < <(grep -E '^[0-9*]' /etc/cron.d/zbk | awk '{ $1=$2=$3=$4=$5=$6=""; sub(/^ +/, ""); print }')
}
check "install: cron lines are silent while /backup/etc/zbk.toml is absent" cron_lines_silent

systemd_units() {
    local unit units=()
    for unit in packaging/systemd/*; do
        unit=/usr/lib/systemd/system/${unit##*/}
        test -f "$unit"
        units+=("$unit")
    done
    # Shipped disabled: nothing links to them.
    if find /etc/systemd/system -name 'zbk*' | grep .; then
        echo "enabled by the package"
        return 1
    fi
    for unit in zbk-reap.timer zbk-run-default.timer zbk-run-monthly.timer zbk-verify.timer; do
        [ "$(systemctl is-enabled "$unit" 2>/dev/null || true)" = disabled ]
    done
    # systemd-analyze verify needs instances of the template to load.
    local dir=$work/units
    mkdir -p "$dir"
    cp "${units[@]}" "$dir/"
    for unit in default weekly monthly quarterly yearly; do
        cp "$dir/zbk-run@.service" "$dir/zbk-run@$unit.service"
    done
    local man=yes
    man -w zbk-run >/dev/null 2>&1 || man=no
    (cd "$dir" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=$man ./zbk-run-*.timer ./zbk-run@*[a-z].service ./zbk-reap.timer ./zbk-reap.service ./zbk-verify.timer ./zbk-verify.service)
}
check "install: systemd units installed, disabled, and systemd-analyze verify passes" systemd_units

# ---------------------------------------------------------------- purge

purge_deb() {
    local files
    files=$(dpkg -L zbk | sort)
    apt-get purge -y -qq zbk
    if dpkg-query -W -f='${Status}\n' zbk 2>/dev/null | grep -qv 'not-installed'; then
        echo "still known to dpkg: $(dpkg-query -W -f='${Status}' zbk)"
        return 1
    fi
    local left=0 f
    for f in /etc/cron.d/zbk /usr/sbin/zbk; do
        [ ! -e "$f" ] || { echo "left: $f"; left=1; }
    done
    while read -r f; do
        case $f in /.|/etc|/etc/cron.d|/usr|/usr/*bin|/usr/lib|/usr/lib/systemd|/usr/lib/systemd/system|/usr/share|/usr/share/doc|/usr/share/man|/usr/share/man/man?) continue ;; esac
        [ ! -e "$f" ] || { echo "left: $f"; left=1; }
    done <<<"$files"
    [ $left -eq 0 ]
}
check "purge: apt-get purge zbk leaves nothing behind" purge_deb

# ---------------------------------------------------------------- summary

echo
echo "== packaging check summary ($((SECONDS - started)) s)"
printf '%s\n' "${summary[@]}"
[ ${#notes[@]} -eq 0 ] || printf 'NOTE  %s\n' "${notes[@]}"
[ -z "$rpm_file" ] || echo "rpm: $rpm_file"
[ ! -f "$deb" ] || echo "deb: $deb"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
