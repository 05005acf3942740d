#!/usr/bin/env bash
# How a build meets mpirun (README "Several processes and hosts"): vdvae info says whether this
# build has MPI and which numbers of ranks split the config's batch; a build without MPI that a
# launcher starts as one of several ranks refuses to train alone (exit 2, saying how to build
# it), where it would otherwise train N copies of the run side by side.
set -u
cli=${VD_CLI:?}; src=${VD_SOURCE_DIR:?}
. "$src/tests/lib.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cfg="$src/egs/fashion_mnist.cfg"

out=$("$cli" info "$cfg" --set train.batch_size=12); rc=$?
check "info exits 0 ($rc)" "[ $rc -eq 0 ]"
check "info lists the ranks that split batch 12" "grep -q 'N in {1, 2, 3, 4, 6, 12}' <<<\"\$out\""
check "info explains run.num_gpus" "grep -q 'run.num_gpus = 2 is not read' <<<\"\$out\""
if grep -q 'this build has no MPI' <<<"$out"; then
  # what mpirun sets for the ranks it starts (OpenMPI; PMI_SIZE for MPICH and Slurm)
  for var in OMPI_COMM_WORLD_SIZE PMI_SIZE; do
    env "$var=2" "$cli" train "$cfg" --dir "$tmp" --steps 1 --quiet >"$tmp/out" 2>&1; rc=$?
    check "a build without MPI started as 1 of 2 ranks ($var=2): exit 2 ($rc)" "[ $rc -eq 2 ]"
    check "saying to configure with -DVD_MPI=ON" "grep -q 'built without MPI.*-DVD_MPI=ON' '$tmp/out'"
  done
  check "and nothing was trained" "[ ! -d '$tmp/checkpoints-fashion_mnist' ]"
else
  check "an MPI build says so" "grep -q 'this build has MPI' <<<\"\$out\""
fi
finish cli_mpi_launch
