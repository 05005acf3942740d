#!/usr/bin/env bash
# bf16 mixed precision trains as well as float32: the demo config trained for 150 steps with
# run.precision = 'bf16' ends within 2% of the float32 run's validation NELBO (same seed, data
# and noise), while its numbers are not float32's (bf16 is really on). 2%, not the issue's
# 0.5%: at 150 steps float32 alone moves 1.1% between 1 and 2 threads (summation order);
# the 0.5% figure is measured at a longer budget (bench/RESULTS.md). Activation
# checkpointing leaves training unchanged: the same metrics, bit for bit.
set -u
cli=${VD_CLI:?}; src=${VD_SOURCE_DIR:?}
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || { echo "SKIP: dataset-fashion-mnist not installed"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); else echo "FAIL: $1"; fail=$((fail+1)); fi; }
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
check "bf16 within 2% of fp32 ($b vs $a)" "awk 'BEGIN { d = ($b - $a) / $a; if (d < 0) d = -d; exit !(d <= 0.02) }'"
check "bf16 is not fp32 (the numbers differ)" "[ '$a' != '$b' ]"
strip() { sed 's/"time[a-z_]*": [0-9.eE+-]*//g; s/"seconds[a-z_]*": [0-9.eE+-]*//g; s/"images_per_s[a-z_]*": [0-9.eE+-]*//g' "$@"; }
check "checkpointing: the same metrics as without" \
  "diff <(strip $tmp/fp32/logs-*/metrics.jsonl) <(strip $tmp/ckpt/logs-*/metrics.jsonl) >/dev/null"
echo "cli_train_bf16: $pass passed, $fail failed"
[ $fail -eq 0 ]
