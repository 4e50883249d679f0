#!/usr/bin/env bash
# Checks the dependency tree with cargo-deny against deny.toml: licences,
# banned and duplicate crates, and crate sources (crates.io only).
#
# The RustSec advisory check needs the advisory database, which cargo-deny
# clones from GitHub. When GitHub cannot be reached, the script prints a line
# saying the advisory check was skipped and still passes; the other checks
# work offline.
#
# Installs cargo-deny with `cargo install --locked cargo-deny` when it is
# missing (about 4 minutes on a 2-core machine).
#
# Usage: bash scripts/deny.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deny --version >/dev/null 2>&1; then
  echo "installing cargo-deny" >&2
  started=$(date +%s)
  cargo install --locked cargo-deny
  echo "cargo-deny installed in $(( $(date +%s) - started )) s" >&2
fi

cargo deny check bans licenses sources

advisory_db=https://github.com/rustsec/advisory-db
if timeout 20 git ls-remote --exit-code "$advisory_db" HEAD >/dev/null 2>&1; then
  cargo deny check advisories
else
  echo "skipped: cargo deny check advisories ($advisory_db cannot be reached from this machine)"
fi
