#!/usr/bin/env bash
# A run whose every update is skipped (openai/vdvae#25) warns once at train.skip_warning_after
# skips in a row and stops with exit 1 at train.skip_stop_after, writing no checkpoint of that
# state: the newest one stays the last from before the streak (or there is none). 0 turns both
# off. Uses Debian's Fashion-MNIST (dataset-fashion-mnist).
set -u
cli=${VD_CLI:?}; src=${VD_SOURCE_DIR:?}
. "$src/tests/lib.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cfg="$src/egs/fashion_mnist.cfg"
small=(--set train.batch_size=8 --set val.n_samples_for_validation=16 --set train.checkpoint_and_eval_interval_in_steps=3
       --threads 2 --log-every 1)
# every norm is >= this threshold, so every update is skipped
stuck=(--set optimizer.gradient_skip_threshold=1e-9 --set train.skip_warning_after=2 --set train.skip_stop_after=5)
ckpts() { ls "$1"/checkpoints-fashion_mnist/checkpoint-*.safetensors 2>/dev/null | xargs -rn1 basename | tr '\n' ' '; }

# The keys' ranges are checked before anything is written (no dataset needed).
"$cli" train "$cfg" --dir "$tmp/bad" --set train.skip_stop_after=-1 >"$tmp/bad.out" 2>&1; rc=$?
check "skip_stop_after = -1 exits 2 ($rc)" "[ $rc -eq 2 ] && grep -q 'train.skip_stop_after must be >= 0' '$tmp/bad.out'"
"$cli" train "$cfg" --dir "$tmp/bad" --set train.skip_warning_after=10 --set train.skip_stop_after=5 >"$tmp/bad2.out" 2>&1; rc=$?
check "skip_warning_after >= skip_stop_after exits 2 ($rc)" \
  "[ $rc -eq 2 ] && grep -q 'train.skip_warning_after (10) must be below train.skip_stop_after (5)' '$tmp/bad2.out'"
check "a refused config writes nothing" "[ ! -e '$tmp/bad' ]"

need_fashion_mnist

# Healthy first: 3 steps, a checkpoint at step 3, no warning.
"$cli" train "$cfg" --dir "$tmp/a" "${small[@]}" --steps 3 >"$tmp/a1.out" 2>"$tmp/a1.err"; rc=$?
check "3 healthy steps exit 0 ($rc)" "[ $rc -eq 0 ]"
check "healthy steps do not warn" "! grep -q 'in a row skipped' '$tmp/a1.err'"
check "a checkpoint at step 3 ($(ckpts "$tmp/a"))" "[ '$(ckpts "$tmp/a")' = 'checkpoint-0000000003.safetensors ' ]"

# Then every update skipped: steps 4..8; the warning at step 5 (2 in a row), the checkpoint of
# step 6 held back, the stop at step 8 (5 in a row) with exit 1.
"$cli" train "$cfg" --dir "$tmp/a" "${small[@]}" "${stuck[@]}" >"$tmp/a2.out" 2>"$tmp/a2.err"; rc=$?
check "the stuck run exits 1 ($rc)" "[ $rc -eq 1 ]"
check "the warning names the streak and threshold" \
  "grep -q '^warning: step 5: 2 updates in a row skipped (train.skip_warning_after = 2; .*optimizer.gradient_skip_threshold = 1e-09)' '$tmp/a2.err'"
check "the warning comes once per streak ($(grep -c 'in a row skipped (train.skip_warning_after' "$tmp/a2.err"))" \
  "[ $(grep -c 'in a row skipped (train.skip_warning_after' "$tmp/a2.err") -eq 1 ]"
check "the stop names the streak and threshold" \
  "grep -q 'stopped at step 8: 5 updates in a row skipped (train.skip_stop_after = 5; .*optimizer.gradient_skip_threshold = 1e-09)' '$tmp/a2.err'"
check "the stop names the last good checkpoint" "grep -q 'checkpoint-0000000003.safetensors, is from before the streak' '$tmp/a2.err'"
check "the checkpoint of step 6 is held back" "grep -q '^not saving step 6' '$tmp/a2.out'"
check "the newest checkpoint is still step 3 ($(ckpts "$tmp/a"))" "[ '$(ckpts "$tmp/a")' = 'checkpoint-0000000003.safetensors ' ]"
check "metrics.jsonl records the warning and the stop" \
  "grep -q '\"step\": 5, \"split\": \"skip_warning\"' '$tmp/a/logs-fashion_mnist/metrics.jsonl' &&
   grep -q '\"step\": 8, \"split\": \"skip_stop\"' '$tmp/a/logs-fashion_mnist/metrics.jsonl'"
# A rerun resumes from the good checkpoint, the step before the streak.
"$cli" train "$cfg" --dir "$tmp/a" "${small[@]}" --steps 1 >"$tmp/a3.out" 2>&1
check "a rerun resumes from step 3" "grep -q 'resuming from .*checkpoint-0000000003.safetensors (step 3)' '$tmp/a3.out'"

# Stuck from the first step: exit 1 and no checkpoint at all.
"$cli" train "$cfg" --dir "$tmp/b" "${small[@]}" "${stuck[@]}" >"$tmp/b.out" 2>"$tmp/b.err"; rc=$?
check "a run stuck from the start exits 1 ($rc)" "[ $rc -eq 1 ]"
check "and says there is no checkpoint" "grep -q 'there is no checkpoint of this run' '$tmp/b.err'"
check "and writes none ($(ckpts "$tmp/b"))" "[ -z '$(ckpts "$tmp/b")' ]"

# 0 turns both off: the same stuck run goes on, silent, and checkpoints as before.
"$cli" train "$cfg" --dir "$tmp/c" "${small[@]}" --set optimizer.gradient_skip_threshold=1e-9 \
  --set train.skip_warning_after=0 --set train.skip_stop_after=0 --steps 7 >"$tmp/c.out" 2>"$tmp/c.err"; rc=$?
check "with both 0 the stuck run exits 0 ($rc)" "[ $rc -eq 0 ]"
check "without a warning" "! grep -q 'in a row skipped' '$tmp/c.err'"
check "and with its checkpoints ($(ckpts "$tmp/c"))" \
  "[ '$(ckpts "$tmp/c")' = 'checkpoint-0000000003.safetensors checkpoint-0000000006.safetensors checkpoint-0000000007.safetensors ' ]"

finish cli_train_skip_streak
