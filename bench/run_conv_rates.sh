#!/usr/bin/env bash
# Runs the convolution-rate benchmark as bench/CONV_RATES.md records it: 2 OpenMP threads,
# preceded by the machine facts (CPU model, cores, load, date) that make its numbers comparable.
# usage: bench/run_conv_rates.sh [BUILD_DIR] [conv_rates options...]   (BUILD_DIR default: build)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$REPO/build}"
(($#)) && shift
BIN="$BUILD/bench/conv_rates"
[[ -x "$BIN" ]] || { echo "run_conv_rates: no $BIN; build first (ninja -C $BUILD conv_rates)" >&2; exit 1; }

export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
family="$(awk -F': ' '/^cpu family/ {f = $2} /^model\t/ {m = $2} END {print "family " f " model " m}' /proc/cpuinfo)"
echo "cpu:     $(lscpu | sed -n 's/^Model name: *//p' | head -n1) ($family), $(nproc) cores available"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: OMP_NUM_THREADS=$OMP_NUM_THREADS $BIN $*"
echo
exec "$BIN" "$@"
