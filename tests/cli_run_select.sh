#!/usr/bin/env bash
# --set run.name=X picks run X in every command: train makes it, eval and synth find it (not
# the config's own name), and a name that was never trained is refused with exit 2.
set -u
cli=${VD_CLI:?}; src=${VD_SOURCE_DIR:?}
. "$src/tests/lib.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

cfg="$src/egs/fashion_mnist.cfg"
need_fashion_mnist
small=(--set train.batch_size=4 --set val.n_samples_for_validation=4 --set synthesis.batch_size=4
       --set synthesis.n_generation_batches=1)
"$cli" train "$cfg" --dir "$tmp" --steps 1 --set run.name=picked "${small[@]}" >"$tmp/train" 2>&1
check "train --set run.name=picked exits 0" "[ $? -eq 0 ] && [ -d '$tmp/logs-picked' ]"
check "no run of the config's own name was made" "[ ! -e '$tmp/logs-fashion_mnist' ]"

"$cli" eval "$cfg" --dir "$tmp" --split val --set run.name=picked --set train.batch_size=500 \
  --json "$tmp/eval.json" >"$tmp/eval" 2>&1; rc=$?
check "eval --set run.name=picked exits 0 (rc $rc)" "[ $rc -eq 0 ]"
check "eval evaluated run picked" "grep -q 'logs-picked' '$tmp/eval.json'"

"$cli" synth "$cfg" --dir "$tmp" --mode generation --set run.name=picked --out "$tmp/gen" \
  >"$tmp/synth" 2>&1; rc=$?
check "synth --set run.name=picked exits 0 (rc $rc)" "[ $rc -eq 0 ] && ls '$tmp/gen' | grep -q png"

for cmd in eval synth; do
  "$cli" $cmd "$cfg" --dir "$tmp" >"$tmp/$cmd.none" 2>&1; rc=$?
  check "$cmd without --set refuses (rc $rc)" "[ $rc -eq 2 ] && grep -q \"no run 'fashion_mnist'\" '$tmp/$cmd.none'"
  "$cli" $cmd "$cfg" --dir "$tmp" --set run.name=other >"$tmp/$cmd.other" 2>&1; rc=$?
  check "$cmd --set run.name=other refuses naming it (rc $rc)" "[ $rc -eq 2 ] && grep -q \"no run 'other'\" '$tmp/$cmd.other'"
done

finish cli_run_select
