#!/usr/bin/env bash
# vdvae bench as a user runs it: a tiny config on both CPU backends prints its figures;
# bad flags and configs exit 2.
set -u
cli=${VD_CLI:?}; src=${VD_SOURCE_DIR:?}
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); else echo "FAIL: $1"; fail=$((fail+1)); fi; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cfg="$src/tests/reference/configs/tiny_rgb.cfg"
for be in cpu_ref cpu; do
  "$cli" bench "$cfg" --batch 2 --steps 2 --threads 1 --backend $be >"$tmp/out" 2>&1; rc=$?
  if [ $be = cpu ] && grep -q "oneDNN" "$tmp/out" && [ $rc -eq 2 ]; then echo "note: cpu backend not built"; continue; fi
  check "$be: exits 0 ($(head -c 300 "$tmp/out"))" "[ $rc -eq 0 ]"
  for k in "step " "images/s" "GFLOP/s" "peak RSS" "loss"; do
    check "$be: prints $k" "grep -q '^$k' '$tmp/out'"
  done
  check "$be: a finite loss" "awk '/^loss/ { exit !(\$2 + 0 > 0 && \$2 + 0 < 1e6) }' '$tmp/out'"
done
"$cli" bench "$cfg" --batch 0 >/dev/null 2>&1; rc=$?
check "--batch 0 exits 2" "[ $rc -eq 2 ]"
"$cli" bench "$cfg" --backend gpu >/dev/null 2>&1; rc=$?
check "unknown backend exits 2" "[ $rc -eq 2 ]"
"$cli" bench "$tmp/none.cfg" >"$tmp/out" 2>&1; rc=$?
check "missing config exits 2 naming it" "[ $rc -eq 2 ] && grep -q none.cfg '$tmp/out'"
echo "cli_bench: $pass passed, $fail failed"
[ $fail -eq 0 ]
