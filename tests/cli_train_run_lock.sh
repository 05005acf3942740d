#!/usr/bin/env bash
# One writer per run: while a training holds logs-<name>/.lock, a second 'vdvae train' of the
# run exits 2 naming the first's pid and changes nothing (not even the saved config its --set
# would change), 'vdvae reset' refuses, readers (synth) are not blocked; after the first
# stops (SIGTERM: checkpoint, exit 0) a new training takes the lock. Two trainings started
# together: one trains, one exits 2. Uses Debian's Fashion-MNIST (dataset-fashion-mnist).
set -u
cli=${VD_CLI:?}; src=${VD_SOURCE_DIR:?}
. "$src/tests/lib.sh"
need_fashion_mnist
tmp=$(mktemp -d); pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
cfg="$src/egs/fashion_mnist.cfg"
small=(--set train.batch_size=8 --set val.n_samples_for_validation=16 --set train.checkpoint_and_eval_interval_in_steps=100000
       --threads 1 --log-every 1)
run="$tmp/r"; lock="$run/logs-fashion_mnist/.lock"; saved="$run/logs-fashion_mnist/hparams-fashion_mnist.cfg"
ckpts() { ls "$1"/checkpoints-fashion_mnist/checkpoint-*.safetensors 2>/dev/null | xargs -rn1 basename | tr '\n' ' '; }

# A checkpoint first, so that readers have weights to read.
"$cli" train "$cfg" --dir "$run" "${small[@]}" --steps 2 >/dev/null 2>&1; rc=$?
check "a first checkpoint (exit $rc)" "[ $rc -eq 0 ] && [ '$(ckpts "$run")' = 'checkpoint-0000000002.safetensors ' ]"

# The first writer, in the background until SIGTERM; it holds the lock once it has stepped.
"$cli" train "$cfg" --dir "$run" "${small[@]}" >"$tmp/first.out" 2>&1 &
pid=$!
for _ in $(seq 600); do grep -q '^step ' "$tmp/first.out" 2>/dev/null && break; kill -0 $pid 2>/dev/null || break; sleep 0.2; done
check "the first training runs and holds the lock with its pid" "kill -0 $pid && [ \"\$(cat '$lock')\" = '$pid' ]"

# A second writer (with an override that would rewrite the saved config): exit 2, the pid named.
sum=$(cksum <"$saved")
"$cli" train "$cfg" --dir "$run" "${small[@]}" --set train.ema_decay=0.9 --steps 1 >"$tmp/second.out" 2>"$tmp/second.err"; rc=$?
check "a second writer exits 2 ($rc)" "[ $rc -eq 2 ]"
check "and names the holder's pid: $(cat "$tmp/second.err")" \
  "grep -q \"run 'fashion_mnist' is being trained by process $pid (.*logs-fashion_mnist/.lock)\" '$tmp/second.err'"
check "and changes nothing: saved config" "[ \"\$(cksum <'$saved')\" = '$sum' ]"
check "and changes nothing: no output of a run" "! grep -q 'existing run\|resuming' '$tmp/second.out'"

# Readers take no lock: synth (generation, small) reads the run's config and checkpoint.
"$cli" synth "$cfg" --dir "$run" --mode generation --set synthesis.batch_size=4 --set 'synthesis.temperature_settings=[1.0]' \
  --out "$tmp/gen" --threads 1 --quiet >"$tmp/synth.out" 2>&1; rc=$?
check "synth reads the run meanwhile (exit $rc)" "[ $rc -eq 0 ] && [ -s '$tmp/gen/setup-0-grid.png' ]"
# (vdvae eval reads the run the same way, vd_rundir_read, but over a whole split: too slow here.)

# reset does not delete a run in training.
"$cli" reset fashion_mnist --yes --dir "$run" >"$tmp/reset.out" 2>&1; rc=$?
check "reset of a run in training exits 2 ($rc)" "[ $rc -eq 2 ] && grep -q 'being trained by process $pid' '$tmp/reset.out'"
check "and deletes nothing" "[ -f '$saved' ] && [ -d '$run/checkpoints-fashion_mnist' ]"
check "the first training still runs" "kill -0 $pid"

# SIGTERM: the step finishes, a checkpoint is written, exit 0; then the lock is free.
kill -TERM $pid; wait $pid; rc=$?; pid=
check "the first training stops with exit 0 ($rc)" "[ $rc -eq 0 ] && grep -q '^saved ' '$tmp/first.out'"
"$cli" train "$cfg" --dir "$run" "${small[@]}" --steps 1 >"$tmp/third.out" 2>&1 &
p3=$!; wait $p3; rc=$?
check "a new training takes the lock (exit $rc)" "[ $rc -eq 0 ] && grep -q resuming '$tmp/third.out' && [ \"\$(cat '$lock')\" = '$p3' ]"

# Two trainings started together on a new run: one trains, the other exits 2 at once.
both="$tmp/both"
"$cli" train "$cfg" --dir "$both" "${small[@]}" --steps 2 >"$tmp/b1.out" 2>&1 & b1=$!
"$cli" train "$cfg" --dir "$both" "${small[@]}" --steps 2 >"$tmp/b2.out" 2>&1 & b2=$!
wait $b1; r1=$?; wait $b2; r2=$?
check "started together: one exits 0, one 2 ($r1, $r2)" "[ $((r1 + r2)) -eq 2 ] && [ $((r1 * r2)) -eq 0 ]"
n=$(grep -c '"split": "train"' "$both/logs-fashion_mnist/metrics.jsonl" 2>/dev/null)
check "every metrics line once ($n train lines for 2 steps)" "[ '$n' = 2 ]"

finish cli_train_run_lock
