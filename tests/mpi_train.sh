#!/usr/bin/env bash
# Data-parallel training over 2 ranks (mpirun -np 2 on this machine, one thread each) computes
# what one process computes on the whole batch (docs/model.md section 5.5): the first step's
# loss and gradients within 1e-5 relative (tests/mpi_dist_train.c, drawn images), the same
# training losses for 20 steps of Fashion-MNIST, the same weights on both ranks after them (their
# state digests), and a run resumed with another number of ranks continues where it stopped.
set -u
cli=${VD_CLI:?}; src=${VD_SOURCE_DIR:?}
. "$src/tests/lib.sh"
need_mpirun
need_fashion_mnist
need_python_module
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cfg="$src/egs/fashion_mnist.cfg"
small=(--set train.batch_size=8 --set val.n_samples_for_validation=16 --set train.checkpoint_and_eval_interval_in_steps=10
       --set train.total_train_steps=1000 --set train.logging_interval_in_steps=1)

vd_mpirun -np 2 "${VD_MPI_TEST_BIN:?}" >"$tmp/grad.out" 2>&1; rc=$?
cat "$tmp/grad.out"
check "2 ranks x B/2 = 1 x B: loss and gradients within 1e-5 (exit $rc)" "[ $rc -eq 0 ]"

"$cli" train "$cfg" --dir "$tmp/one" "${small[@]}" --threads 2 --steps 20 --quiet; rc1=$?
vd_mpirun -np 2 "$cli" train "$cfg" --dir "$tmp/two" "${small[@]}" --threads 1 --steps 20 >"$tmp/two.out" 2>&1; rc2=$?
check "1 process and 2 ranks train 20 steps (exit $rc1, $rc2)" "[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]"
# (mpirun gives ranks a terminal: rank 0's live progress line may precede another rank's line)
d0=$(grep -o 'rank 0 of 2: step 20, state digest [0-9a-f]*' "$tmp/two.out" | sed 's/.* //')
d1=$(grep -o 'rank 1 of 2: step 20, state digest [0-9a-f]*' "$tmp/two.out" | sed 's/.* //')
echo "state digests after 20 steps: rank 0 $d0, rank 1 $d1"
check "both ranks hold the same weights, moments and EMA after 20 steps" "[ -n '$d0' ] && [ '$d0' = '$d1' ]"
check "rank 0 alone wrote the logs: one line per step" "[ \$(grep -c '\"split\": \"train\"' '$tmp/two/logs-fashion_mnist/metrics.jsonl') -eq 20 ]"

# every logged training loss of the 20 steps, 2 ranks against 1 process
cmp_losses() {
  "$vd_python" - "$1" "$2" "$3" "$4" <<'PY'
import json, sys
a, b, first, last = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def losses(p):
    return {r["step"]: r["loss"] for r in map(json.loads, open(p)) if r.get("split") == "train"}
la, lb = losses(a), losses(b)
steps = range(first, last + 1)
worst = max(abs(la[s] - lb[s]) / abs(lb[s]) for s in steps)
print(f"steps {first}-{last}: worst relative loss difference {worst:.2e} (step {first}: {la[first]:.8f} vs {lb[first]:.8f}, step {last}: {la[last]:.8f} vs {lb[last]:.8f})")
sys.exit(0 if worst <= 1e-5 else 1)
PY
}
m="logs-fashion_mnist/metrics.jsonl"
cmp_losses "$tmp/two/$m" "$tmp/one/$m" 1 20; rc=$?
check "the 20 training losses of 2 ranks equal one process's within 1e-5" "[ $rc -eq 0 ]"

# resume with another number of ranks: 2 ranks for 10 steps, then 1 process for 10 more, against 1
# process for 20 (the data order and the noise do not depend on the number of ranks)
vd_mpirun -np 2 "$cli" train "$cfg" --dir "$tmp/mix" "${small[@]}" --threads 1 --steps 10 >/dev/null 2>&1; rc1=$?
"$cli" train "$cfg" --dir "$tmp/mix" "${small[@]}" --threads 2 --steps 10 >"$tmp/mix.out" 2>&1; rc2=$?
check "2 ranks, then 1 process resuming (exit $rc1, $rc2)" "[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && grep -q 'resuming from .*(step 10)' '$tmp/mix.out'"
cmp_losses "$tmp/mix/$m" "$tmp/one/$m" 11 20; rc=$?
check "steps 11-20 after the change of ranks equal one process's within 1e-5" "[ $rc -eq 0 ]"

finish mpi_train
