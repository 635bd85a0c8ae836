#!/bin/bash
# build-rpm.sh: stages the prebuilt release binary and the packaging files, then runs rpmbuild on packaging/rpm/zbk.spec
#
# Usage, from the repository top, after `cargo build --release`:
#   packaging/build-rpm.sh            # prints the path of the .rpm it wrote
# Honours CARGO_TARGET_DIR.  Writes only below TARGET/rpmbuild.
set -euo pipefail

cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-target}
case $target_dir in /*) ;; *) target_dir=$PWD/$target_dir ;; esac

version=$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -n 1)
spec_version=$(sed -n 's/^Version: *//p' packaging/rpm/zbk.spec)
if [ "$version" != "$spec_version" ]; then
    echo "build-rpm.sh: Cargo.toml has version $version but zbk.spec has $spec_version" >&2
    exit 1
fi
binary=$target_dir/release/zbk
[ -x "$binary" ] || { echo "build-rpm.sh: $binary missing: run cargo build --release first" >&2; exit 1; }

topdir=$target_dir/rpmbuild
stage=$topdir/stage/zbk-$version
rm -rf "$topdir"
mkdir -p "$stage/man" "$stage/cron.d" "$stage/systemd" "$stage/examples" "$stage/monitoring" "$topdir/SOURCES"

# Strip exactly as cargo-deb does, so both packages carry the same binary.
strip --strip-unneeded --remove-section=.comment --remove-section=.note -o "$stage/zbk" "$binary"
chmod 0755 "$stage/zbk"
for page in man/*.[58]; do
    gzip -9n -c "$page" > "$stage/man/${page##*/}.gz"
done
install -m 0644 packaging/cron.d/zbk "$stage/cron.d/zbk"
install -m 0644 packaging/systemd/* "$stage/systemd/"
install -m 0644 packaging/examples/* "$stage/examples/"
install -m 0644 packaging/monitoring/zbk.rules.yml packaging/monitoring/zbk-dashboard.json "$stage/monitoring/"
install -m 0644 README.md "$stage/README.md"
install -m 0644 packaging/debian/copyright "$stage/copyright"

tar -C "$topdir/stage" --owner=0 --group=0 --numeric-owner -czf "$topdir/SOURCES/zbk-$version.tar.gz" "zbk-$version"

rpmbuild -bb --quiet --define "_topdir $topdir" \
    --define "packager zbk maintainers <zbk@example.org>" packaging/rpm/zbk.spec >&2
ls "$topdir"/RPMS/*/zbk-"$version"-*.rpm
