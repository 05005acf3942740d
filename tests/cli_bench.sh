#!/usr/bin/env bash
# vdvae bench as a user runs it: a tiny config on both CPU backends prints its figures and,
# with --profile, a per-op-family and a per-block-group table that account for the step;
# checkpointing shows recomputation; bad flags and configs exit 2. Without oneDNN (no cpu
# backend) the cpu_ref checks run and the test reports skipped.
set -u
cli=${VD_CLI:?}; src=${VD_SOURCE_DIR:?}
. "$src/tests/lib.sh"
no_cpu=
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cfg="$src/tests/reference/configs/tiny_rgb.cfg"
for be in cpu_ref cpu; do
  "$cli" bench "$cfg" --batch 2 --steps 2 --threads 1 --backend $be >"$tmp/out" 2>&1; rc=$?
  if [ $be = cpu ] && grep -q "oneDNN" "$tmp/out" && [ $rc -eq 2 ]; then no_cpu=1; continue; fi
  check "$be: exits 0 ($(head -c 300 "$tmp/out"))" "[ $rc -eq 0 ]"
  for k in "step " "images/s" "GFLOP/s" "peak RSS" "loss"; do
    check "$be: prints $k" "grep -q '^$k' '$tmp/out'"
  done
  check "$be: a finite loss" "awk '/^loss/ { exit !(\$2 + 0 > 0 && \$2 + 0 < 1e6) }' '$tmp/out'"
done
# --profile: a table of op families whose times add up to the step (the wrapper times every
# op; what it misses is host work between ops). Rows are "  name calls ms % GFLOP/s".
for be in cpu_ref cpu; do
  "$cli" bench "$cfg" --batch 2 --steps 3 --threads 1 --backend $be --profile >"$tmp/prof" 2>&1; rc=$?
  if [ $be = cpu ] && grep -q "oneDNN" "$tmp/prof" && [ $rc -eq 2 ]; then continue; fi
  check "$be --profile: exits 0 ($(head -c 300 "$tmp/prof"))" "[ $rc -eq 0 ]"
  check "$be --profile: prints the table" "grep -q '^profile ' '$tmp/prof' && grep -q '^  family ' '$tmp/prof'"
  check "$be --profile: a conv family with GFLOP/s" \
    "awk '/^  conv fwd 1x1 / && \$NF + 0 > 0 { f = 1 } END { exit !f }' '$tmp/prof'"
  check "$be --profile: a SiLU family" "grep -q '^  SiLU bwd ' '$tmp/prof'"
  sums=$(awk '/^profile / { step = $(NF-4); on = 1 } /^blocks / { on = 0 } on && /^  / && !/^  family / { s += $(NF-2) } END { print s, step }' "$tmp/prof")
  check "$be --profile: families sum to the step within 25% ($sums ms)" \
    "echo $sums | awk '{ exit !(\$2 > 0 && \$1 > 0.75 * \$2 && \$1 < 1.25 * \$2) }'"
  # the block-group table: "  name... blocks fwd recomp bwd % GFLOP/s", network order
  blocks=$(awk '/^profile / { step = $(NF-4) } /^blocks / { on = 1; next } on && /^  / && !/^  group / { s += $(NF-4) + $(NF-3) + $(NF-2); r += $(NF-3) } END { print s, step, r }' "$tmp/prof")
  check "$be --profile: block groups sum to the step within 25%, no recompute ($blocks ms)" \
    "echo $blocks | awk '{ exit !(\$2 > 0 && \$1 > 0.75 * \$2 && \$1 < 1.25 * \$2 && \$3 == 0) }'"
  check "$be --profile: groups in network order, input_conv first, output loss last" \
    "awk '/^blocks / { on = 1; next } on && /^  / && !/^  group / { n[++k] = \$1 } END { exit !(n[1] == \"input_conv\" && n[k] == \"output\") }' '$tmp/prof'"
  check "$be --profile: a down group" "grep -Eq '^  down [0-9]+x[0-9]+ ' '$tmp/prof'"
done
# with activation checkpointing the top-down and bottom-up blocks show recomputation time
"$cli" bench "$cfg" --batch 2 --steps 2 --threads 1 --backend cpu_ref --profile --set run.checkpoint_activations=True >"$tmp/ck" 2>&1; rc=$?
check "checkpointing --profile exits 0" "[ $rc -eq 0 ]"
check "checkpointing: down groups recompute" \
  "awk '/^blocks / { on = 1; next } on && /^  down / && \$(NF-3) + 0 > 0 { f = 1 } END { exit !f }' '$tmp/ck'"
check "checkpointing: input_conv does not recompute" \
  "awk '/^blocks / { on = 1; next } on && /^  input_conv / && \$(NF-3) + 0 == 0 { f = 1 } END { exit !f }' '$tmp/ck'"
check "checkpointing: the same loss" \
  "[ \"\$(grep '^loss' '$tmp/ck')\" = \"\$(VD= '$cli' bench '$cfg' --batch 2 --steps 2 --threads 1 --backend cpu_ref | grep '^loss')\" ]"
"$cli" bench "$cfg" --batch 0 >/dev/null 2>&1; rc=$?
check "--batch 0 exits 2" "[ $rc -eq 2 ]"
"$cli" bench "$cfg" --backend gpu >/dev/null 2>&1; rc=$?
check "unknown backend exits 2" "[ $rc -eq 2 ]"
"$cli" bench "$tmp/none.cfg" >"$tmp/out" 2>&1; rc=$?
check "missing config exits 2 naming it" "[ $rc -eq 2 ] && grep -q none.cfg '$tmp/out'"
finish cli_bench || exit 1
[ -z "$no_cpu" ] || vd_skip "$VD_ONEDNN" # cpu_ref passed; the cpu backend is not built
