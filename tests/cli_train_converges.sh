#!/usr/bin/env bash
# Training learns: the demo config (egs/fashion_mnist.cfg) trained for 150 steps brings the
# validation NELBO below a threshold measured on this project's machine (bench/TRAINING.md),
# and lower than at step 75. Also: a log directory that cannot be created is a clear error.
set -u
cli=${VD_CLI:?}; src=${VD_SOURCE_DIR:?}
. "$src/tests/lib.sh"
need_fashion_mnist
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
THRESHOLD=${VD_NELBO_THRESHOLD:-3.4}   # bits/dim; measured 3.19 (bench/TRAINING.md)
cfg="$src/egs/fashion_mnist.cfg"
"$cli" train "$cfg" --dir "$tmp/run" --steps 150 --threads 2 --quiet \
  --set train.checkpoint_and_eval_interval_in_steps=75 --set val.n_samples_for_validation=256; rc=$?
check "training exits 0" "[ $rc -eq 0 ]"
m=$(ls "$tmp"/run/logs-*/metrics.jsonl 2>/dev/null | head -1)
val() { grep "\"step\": $1, \"split\": \"val\"" "$m" | sed 's/.*"nelbo": \([0-9.eE+-]*\).*/\1/'; }
n75=$(val 75); n150=$(val 150)
echo "validation NELBO: step 75 $n75, step 150 $n150 bits/dim (threshold $THRESHOLD)"
check "a validation NELBO at step 150" "[ -n '$n150' ]"
check "NELBO at step 150 ($n150) below $THRESHOLD" "awk 'BEGIN { exit !($n150 < $THRESHOLD) }'"
check "NELBO falls from step 75 ($n75) to 150 ($n150)" "awk 'BEGIN { exit !($n150 < $n75) }'"
check "train scalars logged" "grep -q '\"split\": \"train\"' '$m'"
check "TensorBoard files written" "ls '$tmp'/run/logs-*/train/events.out.tfevents.* '$tmp'/run/logs-*/val/events.out.tfevents.* >/dev/null"

: >"$tmp/file"
"$cli" train "$cfg" --dir "$tmp/file/sub" --steps 1 --quiet >"$tmp/err" 2>&1; rc=$?
check "a log directory under a regular file exits 2 ($rc)" "[ $rc -eq 2 ]"
check "and names it" "grep -q '$tmp/file' '$tmp/err'"
finish cli_train_converges
