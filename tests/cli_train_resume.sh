#!/usr/bin/env bash
# Training survives being stopped: N steps in one go and N/2 + stop + resume + N/2 give the
# same checkpoint byte for byte (parameters, EMA, optimizer moments, step, data position);
# SIGINT finishes the step, writes a checkpoint and exits 0; SIGKILL, even inside a checkpoint
# write, loses at most the steps since the last complete checkpoint. Uses Debian's Fashion-MNIST (dataset-fashion-mnist).
set -u
cli=${VD_CLI:?}; src=${VD_SOURCE_DIR:?}
. "$src/tests/lib.sh"
need_fashion_mnist
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
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

# SIGKILL inside a checkpoint write: once the run has a checkpoint, kill the trainer the moment
# a temporary file of its own appears (a save under way). A kill counts as mid-write when that
# temporary is still there afterwards; the newest complete checkpoint must load and training
# must resume from it (not start over).
ckd="$tmp/d/checkpoints-fashion_mnist"; mid=0; tries=0
while [ $mid -eq 0 ] && [ $tries -lt 4 ]; do
  tries=$((tries + 1))
  "$cli" train "$cfg" --dir "$tmp/d" "${small[@]}" --set train.checkpoint_and_eval_interval_in_steps=2 &
  pid=$!
  for _ in $(seq 1200); do [ -n "$(last "$tmp/d")" ] && break; kill -0 $pid 2>/dev/null || break; sleep 0.1; done
  for _ in $(seq 200000); do compgen -G "$ckd/*.tmp.$pid.*" >/dev/null && break; kill -0 $pid 2>/dev/null || break; done
  kill -KILL $pid 2>/dev/null; wait $pid 2>/dev/null
  compgen -G "$ckd/*.tmp.$pid.*" >/dev/null && mid=1
done
check "a SIGKILL landed inside a checkpoint write ($tries tries)" "[ $mid -eq 1 ]"
loud=(); for a in "${small[@]}"; do [ "$a" = --quiet ] || loud+=("$a"); done
"$cli" train "$cfg" --dir "$tmp/d" "${loud[@]}" --steps 1 >"$tmp/d.out" 2>&1; rc=$?
from=$(sed -n 's/^resuming from .*(step \([0-9]*\)).*/\1/p' "$tmp/d.out")
check "after SIGKILL the run resumes (exit $rc)" "[ $rc -eq 0 ]"
check "from a checkpoint (step '$from'), not from scratch" "[ -n '$from' ] && [ '$from' -ge 2 ]"
check "and the dead writer's temporary is gone" "! compgen -G '$ckd/*.tmp.*' >/dev/null"

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

finish cli_train_resume
