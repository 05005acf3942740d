#!/usr/bin/env bash
# Data-parallel step time (bench/RESULTS.md "Data parallel"): one process of 2 threads against
# mpirun -np 2 ranks of 1 thread on the same global batch, alternated until each has ROUNDS
# clean runs; each line is one run's median step (bench/dist_step.c). A run is clean when the
# machine's busy CPU time over its wall time, less its own CPU time, stayed under 5% of a core:
# on a shared VM another tenant's process would otherwise decide the figure (two OpenMP threads
# wait for each other when one loses its core), and each run waits for an idle machine to start.
# Needs a VD_MPI=ON build.
#   bench/dist_step.sh BUILD CFG BATCH [STEPS] [ROUNDS]
set -u
build=${1:?build dir}; cfg=${2:?config}; batch=${3:?global batch}; steps=${4:-5}; rounds=${5:-3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
busy() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; } # jiffies, all cores
hz=$(getconf CLK_TCK)
echo "== $(lscpu | sed -n 's/^Model name: *//p') (family $(lscpu | sed -n 's/^CPU family: *//p'), model $(lscpu | sed -n 's/^Model: *//p')), $(nproc) cores"
# run CMD...: its output line, and whether the machine did anything else meanwhile
run() {
  local b0 b1 t0 t1 out own
  b0=$(busy); t0=$(date +%s.%N)
  out=$(/usr/bin/time -f 'CPU %U %S' "$@" 2>&1)
  b1=$(busy); t1=$(date +%s.%N)
  own=$(sed -n 's/^CPU \([0-9.]*\) \([0-9.]*\)$/\1 + \2/p' <<<"$out" | bc)
  foreign=$(echo "scale=3; (($b1 - $b0) / $hz - $own) / ($t1 - $t0)" | bc)
  echo "$(grep -v '^CPU ' <<<"$out")   [other processes: $foreign cores]"
  [ "$(echo "$foreign < 0.05" | bc)" -eq 1 ]
}
# wait (up to 20 minutes) for 5 s in which the machine is idle, so that a run starts clean
idle() {
  local b0 i
  for i in $(seq 240); do
    b0=$(busy); sleep 5
    [ "$(echo "($(busy) - $b0) / $hz / 5 < 0.05" | bc)" -eq 1 ] && return 0
  done
  return 1
}
one=0 two=0 tries=0
while { [ $one -lt "$rounds" ] || [ $two -lt "$rounds" ]; } && [ $tries -lt $((rounds * 6)) ]; do
  tries=$((tries + 1))
  [ $one -lt "$rounds" ] && idle && run "$build/bench/dist_step" "$cfg" --batch "$batch" --threads 2 --steps "$steps" && one=$((one + 1))
  [ $two -lt "$rounds" ] && idle && run mpirun --oversubscribe -np 2 "$build/bench/dist_step" "$cfg" --batch "$batch" --threads 1 \
    --steps "$steps" && two=$((two + 1))
done
echo "clean runs: 1 process $one, 2 ranks $two (of $tries tries each at most)"
