#!/usr/bin/env bash
# Build the libFuzzer targets with clang (build-fuzz/) and run every fuzz/fuzz_*.c for N seconds
# in all (default 60), split evenly (at least 5 s each), each on a scratch copy of its seeds:
# fuzz/corpus/<target>/ (fuzz_cfg: the .cfg files in fuzz/corpus/). Exits non-zero when a
# fuzzer finds a crash; the input that crashed is kept in build-fuzz/ as <target>-crash-*.
set -euo pipefail
secs=${1:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VD_FUZZ_BUILD_DIR:-$root/build-fuzz}

gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
CC=clang CXX=clang++ cmake -S "$root" -B "$build" "${gen[@]}" -DVD_FUZZ=ON -DVD_BENCH=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=()
for src in "$root"/fuzz/fuzz_*.c; do targets+=("$(basename "$src" .c)"); done
cmake --build "$build" --target "${targets[@]}" -j 2

each=$((secs / ${#targets[@]}))
((each >= 5)) || each=5
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  if [[ $t == fuzz_cfg ]]; then
    find "$root/fuzz/corpus" -maxdepth 1 -type f -exec cp {} "$work/$t/" \;
    opts=(-max_len=4096 -dict="$root/fuzz/cfg.dict")
  else
    [[ -d $root/fuzz/corpus/$t ]] && cp -r "$root/fuzz/corpus/$t/." "$work/$t/"
    opts=(-max_len=65536)
  fi
  echo "== $t: ${each}s"
  "$build/fuzz/$t" -max_total_time="$each" -timeout=10 -rss_limit_mb=2048 "${opts[@]}" \
    -artifact_prefix="$build/$t-" -print_final_stats=1 "$work/$t" || status=1
done
exit $status
