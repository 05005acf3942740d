#!/usr/bin/env bash
# Run directories as a user meets them: the first `vdvae train` saves the config, a second
# run of the same name uses it and names the keys that differ, `vdvae reset` deletes it.
set -u
cli=${VD_CLI:?}; src=${VD_SOURCE_DIR:?}
. "$src/tests/lib.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

cfg="$src/egs/fashion_mnist.cfg"
# One step of a small batch keeps these runs short; the data is Debian's Fashion-MNIST.
need_fashion_mnist
one=(--steps 1 --set train.batch_size=4 --set val.n_samples_for_validation=4)
"$cli" train "$cfg" --dir "$tmp" "${one[@]}" >"$tmp/out1" 2>&1; rc=$?
check "first train exits 0" "[ $rc -eq 0 ]"
check "first run saves its config" "[ -f '$tmp/logs-fashion_mnist/hparams-fashion_mnist.cfg' ]"
check "first run says so" "grep -q 'new run' '$tmp/out1'"

# The saved file reads back: info accepts it and prints the same parameter count.
p1=$("$cli" info "$cfg" | grep -o 'parameters: [0-9]*')
p2=$("$cli" info "$tmp/logs-fashion_mnist/hparams-fashion_mnist.cfg" | grep -o 'parameters: [0-9]*')
check "saved config has the same model ($p1 vs $p2)" "[ -n '$p1' ] && [ '$p1' = '$p2' ]"

sed -e 's/^seed = 420/seed = 421/' -e 's/^learning_rate = .*/learning_rate = 1e-4/' "$cfg" >"$tmp/changed.cfg"
"$cli" train "$tmp/changed.cfg" --dir "$tmp" --steps 1 >"$tmp/out2" 2>&1
check "second run uses the saved config" "grep -q 'existing run' '$tmp/out2'"
check "second run names run.seed" "grep -q 'run.seed' '$tmp/out2'"
check "second run names optimizer.learning_rate" "grep -q 'optimizer.learning_rate' '$tmp/out2'"
check "saved config is unchanged" "grep -q '420' '$tmp/logs-fashion_mnist/hparams-fashion_mnist.cfg'"

"$cli" train "$cfg" --dir "$tmp" --steps 1 --set train.total_train_steps=77 >"$tmp/out3" 2>&1
check "--set on a resumed run is saved" "grep -q '77' '$tmp/logs-fashion_mnist/hparams-fashion_mnist.cfg'"

"$cli" train "$tmp/missing.cfg" --dir "$tmp" >"$tmp/out4" 2>&1; rc=$?
check "missing config exits 2" "[ $rc -eq 2 ]"
check "missing config is named" "grep -q 'missing.cfg' '$tmp/out4'"

"$cli" train "$cfg" --dir "$tmp" --set nosuch.key=1 >"$tmp/out5" 2>&1; rc=$?
check "bad --set exits 2" "[ $rc -eq 2 ]"

echo n | "$cli" reset fashion_mnist --dir "$tmp" >/dev/null 2>&1; rc=$?
check "reset without confirmation keeps the run" "[ $rc -ne 0 ] && [ -d '$tmp/logs-fashion_mnist' ]"
echo y | "$cli" reset fashion_mnist --dir "$tmp" >/dev/null 2>&1; rc=$?
check "reset confirmed with y deletes the run" "[ $rc -eq 0 ] && [ ! -d '$tmp/logs-fashion_mnist' ]"
"$cli" train "$cfg" --dir "$tmp" "${one[@]}" >/dev/null 2>&1
"$cli" reset fashion_mnist --dir "$tmp" --yes >/dev/null 2>&1; rc=$?
check "reset --yes deletes the run" "[ $rc -eq 0 ] && [ ! -d '$tmp/logs-fashion_mnist' ]"
"$cli" reset fashion_mnist --dir "$tmp" --yes >/dev/null 2>&1; rc=$?
check "reset of an unknown run exits 2" "[ $rc -eq 2 ]"
"$cli" reset ../etc --yes >/dev/null 2>&1; rc=$?
check "reset refuses a path as a name" "[ $rc -eq 2 ]"
"$cli" frobnicate >/dev/null 2>&1; rc=$?
check "unknown command exits 2" "[ $rc -eq 2 ]"
"$cli" train --bogus >/dev/null 2>&1; rc=$?
check "unknown flag exits 2" "[ $rc -eq 2 ]"

finish cli_rundir
