#!/usr/bin/env bash
# Benchmarks brightbox-ftp against curl and lftp on a local vsftpd (explicit FTPS, 127.0.0.1:2121).
#
# Usage (as root on Debian 12, or with sudo available): bash scripts/bench.sh
#
# Installs curl, lftp, GNU time and vsftpd when they are missing, starts vsftpd with
# scripts/vsftpd.sh unless it already accepts connections (BENCH_RESTART_VSFTPD=1 restarts it),
# and runs `cargo bench -p brightbox-ftp --bench transfer`, which is a release build.
# The tables go to stdout and to target/bench/transfer-<UTC time>.md.
#
# Settings (environment):
#   BENCH_SIZE_MIB       size of the random test file in MiB (default 2048)
#   BENCH_RUNS           runs per client and operation (default 3)
#   BENCH_DIR            directory for local test files (default: the system temporary directory)
#   BENCH_RSS_SIZES_MIB  sparse-file sizes for the peak-RSS uploads (default 1024,4096; empty skips)
#   BENCH_TOOLS          clients to run (default ours,ours-nohash,curl,lftp)
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo)
fi

missing=()
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v lftp >/dev/null 2>&1 || missing+=(lftp)
[ -x /usr/bin/time ] || missing+=(time)
command -v vsftpd >/dev/null 2>&1 || [ -x /usr/sbin/vsftpd ] || missing+=(vsftpd)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bench.sh: installing ${missing[*]}" >&2
  # The vsftpd package must not start its own daemon on port 21; scripts/vsftpd.sh starts it.
  created_policy=no
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${sudo_cmd[@]}" chmod 0755 /usr/sbin/policy-rc.d
    created_policy=yes
  fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
  if [ "$created_policy" = yes ]; then
    "${sudo_cmd[@]}" rm -f /usr/sbin/policy-rc.d
  fi
fi

state_dir=${BRIGHTBOX_VSFTPD_STATE:-/tmp/brightbox-vsftpd}
vsftpd_accepts() {
  (exec 3<>/dev/tcp/127.0.0.1/2121) 2>/dev/null
}
if [ "${BENCH_RESTART_VSFTPD:-0}" = 1 ] || [ ! -s "$state_dir/env" ] || ! vsftpd_accepts; then
  "${sudo_cmd[@]}" env BRIGHTBOX_VSFTPD_STATE="$state_dir" bash scripts/vsftpd.sh
else
  echo "bench.sh: reusing the vsftpd that accepts on 127.0.0.1:2121 (BENCH_RESTART_VSFTPD=1 restarts it)" >&2
fi
# shellcheck source=/dev/null
source "$state_dir/env"

bench_dir=${BENCH_DIR:-${TMPDIR:-/tmp}}
needed_mib=$(( ${BENCH_SIZE_MIB:-2048} * 3 ))
free_mib=$(df -Pm "$bench_dir" | awk 'NR == 2 { print $4 }')
if [ "$free_mib" -lt "$needed_mib" ]; then
  echo "bench.sh: $bench_dir has ${free_mib} MiB free; the benchmark needs about ${needed_mib} MiB" >&2
  exit 1
fi

mkdir -p target/bench
out="target/bench/transfer-$(date -u +%Y%m%dT%H%M%SZ).md"
{
  echo "# Transfer benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "- nproc: $(nproc)"
  echo "- CPU: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
  echo "- kernel: $(uname -r)"
  echo "- vsftpd: $(dpkg-query -W -f '${Version}' vsftpd 2>/dev/null || echo unknown)"
  echo "- curl: $(curl --version | head -n 1)"
  echo "- lftp: $(lftp --version | head -n 1)"
  echo "- rustc: $(rustc --version)"
  echo "- load average before the run: $(cut -d" " -f1-3 /proc/loadavg)"
} | tee "$out"

cargo bench -p brightbox-ftp --bench transfer | tee -a "$out"
echo "bench.sh: results in $out" >&2
