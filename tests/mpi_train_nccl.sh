#!/usr/bin/env bash
# Data parallelism over NCCL (ctest labels mpi and gpu; skipped without two GPUs): 2 ranks on two
# GPUs of this machine (rank k takes GPU k) with batch 4 each against 1 process on one GPU with
# batch 8, from the same seed: the same training loss at every one of 20 steps within 1e-4
# relative (cuDNN's algorithms differ between batch 4 and batch 8: the bound of cpu against
# cuda, tests/cli_train_cuda.sh), both ranks the same state at the end (digest), and a rank
# killed mid-training ends the other within 30 s with exit status 1 and an error naming it.
set -u
cli=${VD_CLI:?}; src=${VD_SOURCE_DIR:?}
. "$src/tests/lib.sh"
need_mpirun
need_fashion_mnist
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
[ "${gpus:-0}" -ge 2 ] || skip_hardware "second CUDA GPU (GPUs here: ${gpus:-0})"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cfg="$src/egs/fashion_mnist.cfg"
common=(--backend cuda --set run.allow_tf32=False --set train.batch_size=8 --set val.n_samples_for_validation=16
        --set train.checkpoint_and_eval_interval_in_steps=20 --threads 1 --log-every 5)
"$cli" train "$cfg" --dir "$tmp/one" "${common[@]}" --steps 20 >"$tmp/one.out" 2>&1; rc1=$?
vd_mpirun -np 2 "$cli" train "$cfg" --dir "$tmp/two" "${common[@]}" --steps 20 >"$tmp/two.out" 2>&1; rc2=$?
grep -a "NCCL\|digest\|rror" "$tmp/two.out"
grep -q "built without NCCL" "$tmp/two.out" && vd_skip "NCCL in this build (configure with VD_CUDA=ON where nccl.h is)"
check "1 process and 2 ranks train 20 steps (exit $rc1, $rc2)" "[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]"
check "the ranks sum their gradients over NCCL" "grep -aq 'gradients summed over NCCL: 2 ranks, one GPU each' '$tmp/two.out'"
read -r n worst < <(loss_difference "$tmp/one" "$tmp/two")
echo "training loss, 1 process x 8 against 2 ranks x 4 over NCCL, $n steps: worst relative difference $worst"
check "20 steps logged by both" "[ $n -eq 20 ]"
check "losses within 1e-4 relative at every step ($worst)" "awk 'BEGIN { exit !($worst <= 1e-4) }'"
d0=$(grep -ao "rank 0 of 2: step 20, state digest [0-9a-f]*" "$tmp/two.out" | sed 's/.* //')
d1=$(grep -ao "rank 1 of 2: step 20, state digest [0-9a-f]*" "$tmp/two.out" | sed 's/.* //')
check "both ranks hold the same state after 20 steps ($d0, $d1)" "[ -n '$d0' ] && [ '$d0' = '$d1' ]"

# kill -9 rank 1 mid-training: rank 0 stops on its own account, whatever it waits in
mkdir -p "$tmp/st"
vd_mpirun -np 2 sh "$src/tests/rank_status.sh" "$tmp/st" "$cli" train "$cfg" --dir "$tmp/kill" "${common[@]}" \
  --set train.total_train_steps=100000 >"$tmp/kill.out" 2>&1 &
job=$!
m="$tmp/kill/logs-fashion_mnist/metrics.jsonl"
for _ in $(seq 1200); do [ "$(grep -c '"train"' "$m" 2>/dev/null)" -ge 30 ] && [ -s "$tmp/st/pid-1" ] && break; sleep 0.1; done
victim=$(cat "$tmp/st/pid-1" 2>/dev/null)
t0=$(date +%s.%N)
kill -KILL "$victim"
for _ in $(seq 300); do kill -0 $job 2>/dev/null || break; sleep 0.1; done
kill -0 $job 2>/dev/null && kill -KILL $job 2>/dev/null  # (only if it hangs: the check below fails)
wait $job
took=$(echo "$(date +%s.%N) - $t0" | bc)
grep -a "rank 0 of 2)" "$tmp/kill.out" | head -3
check "the job ended within 30 s of the kill ($took s)" "[ -n '$victim' ] && [ \$(echo '$took < 30' | bc) -eq 1 ]"
check "rank 0 exited with status 1" "[ \"\$(cat '$tmp/st/status-0' 2>/dev/null)\" = 1 ]"
finish mpi_train_nccl
