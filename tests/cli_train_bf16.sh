#!/usr/bin/env bash
# bf16 mixed precision trains as well as float32: the demo config trained for 150 steps with
# run.precision = 'bf16' falls below the convergence threshold of tests/cli_train_converges.sh
# and lands within 5% of the float32 run's validation NELBO (same seed, data and noise), while
# its numbers are not float32's (bf16 is really on). 5%, not the issue's 0.5%: 150 steps is
# early, and two trajectories that differ in rounding drift apart (measured 0.6% and 1.9%
# between bf16 and fp32, 1.1% between fp32 at 1 and 2 threads); the 0.5% figure is measured
# after 1000 steps in bench/RESULTS.md. Activation checkpointing leaves training unchanged:
# the same metrics, bit for bit.
set -u
cli=${VD_CLI:?}; src=${VD_SOURCE_DIR:?}
. "$src/tests/lib.sh"
need_fashion_mnist
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cfg="$src/egs/fashion_mnist.cfg"
train() { # dir, extra --set
  "$cli" train "$cfg" --dir "$tmp/$1" --steps 150 --threads 2 --quiet \
    --set train.checkpoint_and_eval_interval_in_steps=75 --set val.n_samples_for_validation=256 "${@:2}"
}
train fp32 --set run.precision=fp32; rc=$?
check "fp32 training exits 0" "[ $rc -eq 0 ]"
train bf16 --set run.precision=bf16; rc=$?
check "bf16 training exits 0" "[ $rc -eq 0 ]"
train ckpt --set run.precision=fp32 --set run.checkpoint_activations=True; rc=$?
check "checkpointed training exits 0" "[ $rc -eq 0 ]"
val() { grep "\"step\": $2, \"split\": \"val\"" "$tmp"/$1/logs-*/metrics.jsonl | sed 's/.*"nelbo": \([0-9.eE+-]*\).*/\1/'; }
a=$(val fp32 150); b=$(val bf16 150)
echo "validation NELBO at step 150: fp32 $a, bf16 $b bits/dim"
check "both have a step-150 NELBO" "[ -n '$a' ] && [ -n '$b' ]"
THRESHOLD=${VD_NELBO_THRESHOLD:-3.4}
b75=$(val bf16 75)
check "bf16 below $THRESHOLD at step 150 ($b)" "awk 'BEGIN { exit !($b < $THRESHOLD) }'"
check "bf16 falls from step 75 ($b75) to 150 ($b)" "awk 'BEGIN { exit !($b < $b75) }'"
check "bf16 within 5% of fp32 ($b vs $a)" "awk 'BEGIN { d = ($b - $a) / $a; if (d < 0) d = -d; exit !(d <= 0.05) }'"
check "bf16 is not fp32 (the numbers differ)" "[ '$a' != '$b' ]"
strip() { sed 's/"time[a-z_]*": [0-9.eE+-]*//g; s/"seconds[a-z_]*": [0-9.eE+-]*//g; s/"images_per_s[a-z_]*": [0-9.eE+-]*//g' "$@"; }
check "checkpointing: the same metrics as without" \
  "diff <(strip $tmp/fp32/logs-*/metrics.jsonl) <(strip $tmp/ckpt/logs-*/metrics.jsonl) >/dev/null"
finish cli_train_bf16
