#!/usr/bin/env bash
# Faults of a data-parallel job (mpirun -np 2 on this machine): a rank killed mid-training ends
# the other within 30 s with an error naming it and exit status 1, and the run resumes from its
# newest checkpoint; a rank that hangs ends the job after VD_DIST_TIMEOUT; SIGUSR1 stops every
# rank after the same step with a checkpoint; ranks whose config or starting checkpoint differ
# from rank 0's are refused at the start (exit 2, naming what differs).
set -u
cli=${VD_CLI:?}; src=${VD_SOURCE_DIR:?}
. "$src/tests/lib.sh"
need_mpirun
need_fashion_mnist
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cfg="$src/egs/fashion_mnist.cfg"
small=(--set train.batch_size=8 --set val.n_samples_for_validation=16 --set train.checkpoint_and_eval_interval_in_steps=5
       --set train.total_train_steps=100000 --threads 1)
ckpts="$tmp/kill/checkpoints-fashion_mnist"
last() { ls "$1"/checkpoint-*.safetensors 2>/dev/null | tail -1; }

# kill -9 rank 1 once the run has a checkpoint; rank 0 must stop on its own account
mkdir -p "$tmp/st"
vd_mpirun -np 2 sh "$src/tests/rank_status.sh" "$tmp/st" "$cli" train "$cfg" --dir "$tmp/kill" "${small[@]}" \
  --log-every 1 >"$tmp/kill.out" 2>&1 &
job=$!
for _ in $(seq 600); do [ -n "$(last "$ckpts")" ] && [ -s "$tmp/st/pid-1" ] && break; sleep 0.1; done
sleep 0.5
victim=$(cat "$tmp/st/pid-1" 2>/dev/null)
check "the job is training with a checkpoint (rank 1 pid '$victim')" "[ -n '$victim' ] && [ -n '$(last "$ckpts")' ]"
t0=$(date +%s.%N)
kill -KILL "$victim"
for _ in $(seq 300); do kill -0 $job 2>/dev/null || break; sleep 0.1; done
kill -0 $job 2>/dev/null && kill -KILL $job 2>/dev/null  # (only if it hangs: the check below fails)
wait $job; rc=$?
took=$(echo "$(date +%s.%N) - $t0" | bc)
sed -n '/rank 0 of 2/p; /noticed\|exited on signal/p' "$tmp/kill.out" | head -5
echo "mpirun exit status $rc, $took s after the kill; rank 0 exit status $(cat "$tmp/st/status-0" 2>/dev/null)"
check "the job ended within 30 s of the kill ($took s)" "[ \$(echo '$took < 30' | bc) -eq 1 ]"
check "rank 0 exited with status 1" "[ \"\$(cat '$tmp/st/status-0' 2>/dev/null)\" = 1 ]"
check "rank 0's error names rank 1 and its pid" "grep -q 'rank 0 of 2): rank 1 (pid $victim on .*) has ended' '$tmp/kill.out'"
check "mpirun's status is non-zero" "[ $rc -ne 0 ]"
kept=$(last "$ckpts"); n=$(basename "$kept" | tr -dc 0-9)
vd_mpirun -np 2 "$cli" train "$cfg" --dir "$tmp/kill" "${small[@]}" --steps 2 >"$tmp/resume.out" 2>&1; rc=$?
check "the run resumes from its newest checkpoint (step $((10#$n)), exit $rc)" \
  "[ $rc -eq 0 ] && grep -q 'resuming from .*(step $((10#$n)))' '$tmp/resume.out'"

# a rank that hangs (SIGSTOP: alive, silent; mpirun sees nothing): the other gives up after
# VD_DIST_TIMEOUT seconds of waiting, and its exit ends the job
VD_DIST_TIMEOUT=5 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none \
  mpirun --oversubscribe -np 2 -x VD_DIST_TIMEOUT "$cli" train "$cfg" --dir "$tmp/hang" "${small[@]}" >"$tmp/hang.out" 2>&1 &
job=$!
for _ in $(seq 600); do [ -n "$(last "$tmp/hang/checkpoints-fashion_mnist")" ] && break; sleep 0.1; done
stopped=
for p in $(ps -o pid= --ppid $job); do  # rank 1: the process that mpirun told so
  tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 && stopped=$p
done
t0=$(date +%s.%N)
kill -STOP "$stopped"
for _ in $(seq 300); do kill -0 $job 2>/dev/null || break; sleep 0.1; done
kill -0 $job 2>/dev/null && kill -KILL $job "$stopped" 2>/dev/null  # (only if it hangs: the check below fails)
wait $job; rc=$?
took=$(echo "$(date +%s.%N) - $t0" | bc)
grep -a -o 'rank 0 had no answer.*' "$tmp/hang.out" | head -1
check "a stopped rank: the job ends within 30 s ($took s), exit $rc" "[ \$(echo '$took < 30' | bc) -eq 1 ] && [ $rc -ne 0 ]"
check "rank 0 says it had no answer within VD_DIST_TIMEOUT" "grep -aq 'rank 0 had no answer from the other 1 in .* for 5 s (VD_DIST_TIMEOUT)' '$tmp/hang.out'"

# SIGUSR1 to mpirun, which forwards it to every rank: all finish the same step, rank 0 writes a
# checkpoint, exit 0 (mpirun turns SIGINT and SIGTERM into SIGKILL within seconds)
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none \
  mpirun --oversubscribe -np 2 "$cli" train "$cfg" \
  --dir "$tmp/usr1" "${small[@]}" --set train.logging_interval_in_steps=1 >"$tmp/usr1.out" 2>&1 &
job=$!
m="$tmp/usr1/logs-fashion_mnist/metrics.jsonl"
for _ in $(seq 600); do [ "$(cat "$m" 2>/dev/null | grep -c '"train"')" -ge 3 ] && break; sleep 0.1; done
kill -USR1 $job; wait $job; rc=$?
at=$(grep -o 'stopped at step [0-9]*' "$tmp/usr1.out" | sed 's/.* //')
# (mpirun gives ranks a terminal: rank 0's live progress line may precede another rank's line)
d0=$(grep -o "rank 0 of 2: step $at, state digest [0-9a-f]*" "$tmp/usr1.out" | sed 's/.* //')
d1=$(grep -o "rank 1 of 2: step $at, state digest [0-9a-f]*" "$tmp/usr1.out" | sed 's/.* //')
check "SIGUSR1: every rank stops after the same step ($at), exit $rc" "[ $rc -eq 0 ] && [ -n '$at' ] && [ -n '$d0' ] && [ '$d0' = '$d1' ]"
check "and rank 0 wrote its checkpoint" "[ -f '$tmp/usr1/checkpoints-fashion_mnist/checkpoint-$(printf %010d "${at:-0}").safetensors' ]"

# a rank whose config differs (another --set) is refused, naming the key
vd_mpirun -np 1 "$cli" train "$cfg" --dir "$tmp/cfg" "${small[@]}" --steps 1 : \
          -np 1 "$cli" train "$cfg" --dir "$tmp/cfg" "${small[@]}" --steps 1 --set optimizer.learning_rate=0.5 \
  >"$tmp/cfg.out" 2>&1; rc=$?
grep 'differs between ranks' "$tmp/cfg.out" | head -1
check "a rank with another config: exit 2" "[ $rc -eq 2 ]"
check "which names rank 1 and the key" "grep -q 'rank 1: optimizer.learning_rate = 0.5' '$tmp/cfg.out'"
check "and nothing was trained" "[ -z '$(last "$tmp/cfg/checkpoints-fashion_mnist")' ]"

# a rank that would start from another checkpoint (its own copy of the run, one step ahead)
"$cli" train "$cfg" --dir "$tmp/a" "${small[@]}" --steps 2 --quiet
cp -r "$tmp/a" "$tmp/b"
"$cli" train "$cfg" --dir "$tmp/b" "${small[@]}" --steps 1 --quiet
vd_mpirun -np 1 "$cli" train "$cfg" --dir "$tmp/a" "${small[@]}" --steps 1 : \
          -np 1 "$cli" train "$cfg" --dir "$tmp/b" "${small[@]}" --steps 1 >"$tmp/ck.out" 2>&1; rc=$?
grep 'differs between ranks' "$tmp/ck.out" | head -1
check "a rank with another checkpoint: exit 2" "[ $rc -eq 2 ]"
check "which names rank 1's checkpoint and step" "grep -q 'rank 1: .*checkpoint-0000000003.safetensors (step 3)' '$tmp/ck.out'"
check "and rank 0's run did not move" "[[ '$(last "$tmp/a/checkpoints-fashion_mnist")' == *0000000002.safetensors ]]"

finish mpi_faults
