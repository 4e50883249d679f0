#!/usr/bin/env bash
# Checks that the five library crates can be published to crates.io, without uploading
# anything: `cargo publish --dry-run` packages each crate, builds the packaged sources, and
# stops before the upload.
#
# Usage: bash scripts/publish-check.sh
#
# The crates depend on each other by path and version, and none of them is on crates.io yet.
# A dry run of one crate alone therefore fails for every crate that depends on a sibling
# (brightbox-library: "no matching package named `brightbox-api` found"). Cargo 1.90 and newer
# publish several packages in one command: cargo packages them in dependency order and
# verifies each against a local registry overlay (target/package/tmp-registry) that contains
# the siblings packaged before it. This script uses that form, so it needs the network only
# for the crates.io index and the sources of the external dependencies.
#
# It also fails when cargo warns that a manifest lacks metadata crates.io shows (description,
# license, documentation, homepage or repository), or when a package does not contain its
# README.md and both license files.
#
# `--allow-dirty` is passed because this is a check of the package contents, run during
# development; a real `cargo publish` still refuses uncommitted changes.
set -euo pipefail
cd "$(dirname "$0")/.."

# Dependency order: brightbox-library depends on api, ftp and orbit, and its tests use the
# emulator. Cargo sorts the packages itself; the list states what is checked.
crates=(brightbox-api brightbox-ftp brightbox-orbit brightbox-emulator brightbox-library)

package_args=()
for crate in "${crates[@]}"; do
  package_args+=(-p "$crate")
done

for crate in "${crates[@]}"; do
  files=$(cargo package --list --allow-dirty -p "$crate")
  for required in Cargo.toml README.md LICENSE-MIT LICENSE-APACHE src/lib.rs; do
    if ! grep -qx "$required" <<<"$files"; then
      echo "error: the $crate package does not contain $required" >&2
      exit 1
    fi
  done
done

log=$(mktemp)
trap 'rm -f "$log"' EXIT

start=$SECONDS
if ! cargo publish --dry-run --allow-dirty "${package_args[@]}" 2>&1 | tee "$log"; then
  echo "error: cargo publish --dry-run failed; see the output above" >&2
  exit 1
fi
if grep -q "warning: manifest has no" "$log"; then
  echo "error: a manifest lacks crates.io metadata:" >&2
  grep "warning: manifest has no" "$log" >&2
  exit 1
fi
echo "publish check passed for ${crates[*]} in $((SECONDS - start)) s" >&2
