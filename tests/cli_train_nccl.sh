#!/usr/bin/env bash
# The NCCL path on one GPU (ctest label gpu; skipped without a GPU): the demo config for 20 steps
# on cuda with its gradients summed by a one-rank NCCL communicator (VD_NCCL=1: the buckets are
# queued on NCCL's stream during backward, events order them, the wait polls) against the same
# run without a communicator: the same training loss at every step within 1e-5 relative (the
# sum over one rank changes nothing; cuDNN may pick other algorithms in the second run) and a
# step-20 checkpoint from both. What one GPU cannot show, sums between GPUs, is
# tests/mpi_train_nccl.sh's (two GPUs).
set -u
cli=${VD_CLI:?}; src=${VD_SOURCE_DIR:?}
. "$src/tests/lib.sh"
need_fashion_mnist
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cfg="$src/egs/fashion_mnist.cfg"
train() { # name, then VAR=value...
  local name=$1; shift
  env "$@" "$cli" train "$cfg" --dir "$tmp/$name" --steps 20 --threads 2 --log-every 5 --backend cuda \
    --set run.allow_tf32=False --set train.checkpoint_and_eval_interval_in_steps=20 \
    --set val.n_samples_for_validation=64 >"$tmp/$name.out" 2>&1
}
t0=$SECONDS; train plain VD_NCCL=0; rc=$?; t_plain=$((SECONDS - t0))
if [ $rc -ne 0 ] && grep -q "no usable GPU\|has no CUDA GPU\|not in this build" "$tmp/plain.out"; then
  cat "$tmp/plain.out"; skip_hardware "CUDA GPU"
fi
check "cuda training without a communicator exits 0 (${t_plain} s)" "[ $rc -eq 0 ]"
t0=$SECONDS; train nccl VD_NCCL=1; rc=$?; t_nccl=$((SECONDS - t0))
grep -i "nccl\|error\|digest" "$tmp/nccl.out"
grep -q "built without NCCL" "$tmp/nccl.out" && vd_skip "NCCL in this build (configure with VD_CUDA=ON where nccl.h is)"
check "cuda training with VD_NCCL=1 exits 0 (${t_nccl} s)" "[ $rc -eq 0 ]"
check "it says its gradients go over NCCL" "grep -q 'gradients summed over NCCL: 1 rank, one GPU each' '$tmp/nccl.out'"
check "and prints its state digest at the end" "grep -q 'rank 0 of 1: step 20, state digest' '$tmp/nccl.out'"
read -r n worst < <(loss_difference "$tmp/plain" "$tmp/nccl")
echo "training loss, without and with NCCL over $n steps: worst relative difference $worst"
check "20 training steps logged by both" "[ $n -eq 20 ]"
check "losses within 1e-5 relative at every step ($worst)" "awk 'BEGIN { exit !($worst <= 1e-5) }'"
check "a step-20 checkpoint from both" \
  "ls '$tmp'/plain/checkpoints-*/checkpoint-0000000020.safetensors '$tmp'/nccl/checkpoints-*/checkpoint-0000000020.safetensors >/dev/null"
finish cli_train_nccl
