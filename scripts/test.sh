#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine: installs the system
# packages the tests use, starts vsftpd with explicit FTPS on 127.0.0.1, and
# runs every test, including those marked as needing vsftpd.
#
# Usage: bash scripts/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

# Two runs at once would share vsftpd's port, user and state folder, and the
# second would restart the first's server, so runs on one machine take turns.
exec 9>"${TMPDIR:-/tmp}/brightbox-sdk-test.lock"
if ! flock -n 9; then
  echo "another scripts/test.sh run holds the lock; waiting for it to finish" >&2
  flock 9
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo)
fi

missing=()
command -v vsftpd >/dev/null 2>&1 || [ -x /usr/sbin/vsftpd ] || missing+=(vsftpd)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v qemu-img >/dev/null 2>&1 || missing+=(qemu-utils)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]}" >&2
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

state_dir=${BRIGHTBOX_VSFTPD_STATE:-/tmp/brightbox-vsftpd}
# vsftpd keeps running after this script; 9>&- keeps it from holding the lock.
"${sudo_cmd[@]}" env BRIGHTBOX_VSFTPD_STATE="$state_dir" bash scripts/vsftpd.sh 9>&-
# shellcheck source=/dev/null
source "$state_dir/env"

# The slow tier moves a 4 GiB image, which takes minutes in a debug build, so it runs once,
# in release mode, after the rest.
# With --all-targets cargo builds the examples as test harnesses only, and the command-line tests
# run the example programs themselves, so they are built first.
cargo build --workspace --examples "$@"
cargo test --workspace --all-targets "$@" -- --include-ignored --skip sparse_image_over_4_gib_round_trip
cargo test --workspace --doc "$@"
cargo test --release -p brightbox-ftp --test slow "$@" -- --include-ignored
# Each fuzz target runs for FUZZ_SECONDS (20 s by default) after a build with its own flags,
# which takes several minutes on a cold target folder. BRIGHTBOX_SKIP_FUZZ=1 skips this step.
if [ "${BRIGHTBOX_SKIP_FUZZ:-0}" != 1 ]; then
  bash scripts/fuzz.sh
fi
