#!/bin/bash
# build-deb.sh: builds the .deb with cargo-deb from the [package.metadata.deb] table of Cargo.toml
#
# Usage, from the repository top, after `cargo build --release`:
#   packaging/build-deb.sh            # prints the path of the .deb it wrote
# Equivalent to `cargo deb`, minus the build.  cargo-deb strips the binary
# and gzips the man pages and the changelog itself.  Honours CARGO_TARGET_DIR.
set -euo pipefail

cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-target}
case $target_dir in /*) ;; *) target_dir=$PWD/$target_dir ;; esac

[ -x "$target_dir/release/zbk" ] || { echo "build-deb.sh: $target_dir/release/zbk missing: run cargo build --release first" >&2; exit 1; }
mkdir -p "$target_dir/debian"
rm -f "$target_dir"/debian/zbk_*.deb
cargo deb --no-build --quiet --output "$target_dir/debian/" >&2
ls "$target_dir"/debian/zbk_*.deb
