#!/usr/bin/env bash
# Training survives being stopped: N steps in one go and N/2 + stop + resume + N/2 give the
# same checkpoint byte for byte (parameters, EMA, optimizer moments, step, data position);
# SIGINT finishes the step, writes a checkpoint and exits 0; SIGKILL loses at most the steps
# since the last checkpoint. Uses Debian's Fashion-MNIST (dataset-fashion-mnist).
set -u
cli=${VD_CLI:?}; src=${VD_SOURCE_DIR:?}
. "$src/tests/lib.sh"
need_fashion_mnist
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); else echo "FAIL: $1"; fail=$((fail+1)); fi; }
cfg="$src/egs/fashion_mnist.cfg"
small=(--set train.batch_size=8 --set val.n_samples_for_validation=16 --set train.checkpoint_and_eval_interval_in_steps=6
       --set train.total_train_steps=1000 --threads 2 --quiet)
last() { ls "$1"/checkpoints-fashion_mnist/checkpoint-*.safetensors 2>/dev/null | tail -1; }

"$cli" train "$cfg" --dir "$tmp/a" "${small[@]}" --steps 10; rc=$?
check "10 steps in one go exit 0" "[ $rc -eq 0 ]"
"$cli" train "$cfg" --dir "$tmp/b" "${small[@]}" --steps 5; rc1=$?
"$cli" train "$cfg" --dir "$tmp/b" "${small[@]}" --steps 5; rc2=$?
check "5 + 5 steps exit 0" "[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]"
a=$(last "$tmp/a"); b=$(last "$tmp/b")
check "both end at step 10 ($a, $b)" "[[ '$a' == *0000000010.safetensors ]] && [[ '$b' == *0000000010.safetensors ]]"
check "resumed run is bitwise identical to the uninterrupted one" "cmp -s '$a' '$b'"

# SIGINT: finish the step, checkpoint, exit 0; a later run resumes from there.
"$cli" train "$cfg" --dir "$tmp/c" "${small[@]}" --set train.checkpoint_and_eval_interval_in_steps=100000 &
pid=$!
sleep 4; kill -INT $pid; wait $pid; rc=$?
c=$(last "$tmp/c")
check "SIGINT exits 0" "[ $rc -eq 0 ]"
check "SIGINT leaves a checkpoint ($c)" "[ -n '$c' ]"
"$cli" train "$cfg" --dir "$tmp/c" "${small[@]}" --steps 2 >/dev/null 2>&1
c2=$(last "$tmp/c")
n1=$(basename "$c" | tr -dc 0-9); n2=$(basename "$c2" | tr -dc 0-9)
check "a run after SIGINT resumes and continues ($n1 -> $n2)" "[ $((10#$n2)) -eq $((10#$n1 + 2)) ]"

# SIGKILL at a random moment: the newest complete checkpoint still loads and training goes on.
"$cli" train "$cfg" --dir "$tmp/d" "${small[@]}" --set train.checkpoint_and_eval_interval_in_steps=2 &
pid=$!
sleep 3; kill -KILL $pid; wait $pid 2>/dev/null
"$cli" train "$cfg" --dir "$tmp/d" "${small[@]}" --steps 1 >"$tmp/d.out" 2>&1; rc=$?
check "after SIGKILL the run resumes (exit $rc)" "[ $rc -eq 0 ]"

# A truncated newest checkpoint is skipped with a warning; the previous complete one is used.
cp -r "$tmp/b" "$tmp/t"
t=$(last "$tmp/t"); truncate -s 5000 "$t"
"$cli" train "$cfg" --dir "$tmp/t" "${small[@]}" --steps 1 >"$tmp/t.out" 2>&1; rc=$?
check "a truncated newest checkpoint: resumes from the previous one (exit $rc)" "[ $rc -eq 0 ] && grep -q 'skipping checkpoint' '$tmp/t.out'"

# A checkpoint written by another model config is refused with a clear error (exit 2).
"$cli" train "$cfg" --dir "$tmp/o" "${small[@]}" --set model.num_output_mixtures=3 --steps 1 >/dev/null 2>&1
mkdir -p "$tmp/x"; cp -r "$tmp/a/logs-fashion_mnist" "$tmp/x/"
mkdir -p "$tmp/x/checkpoints-fashion_mnist"; cp "$(last "$tmp/o")" "$tmp/x/checkpoints-fashion_mnist/"
"$cli" train "$cfg" --dir "$tmp/x" "${small[@]}" --steps 1 >"$tmp/x.out" 2>&1; rc=$?
check "a checkpoint of another config exits 2 ($rc)" "[ $rc -eq 2 ]"
check "and says why" "grep -q 'different model config' '$tmp/x.out'"

echo "cli_train_resume: $pass passed, $fail failed"
[ $fail -eq 0 ]
