#!/bin/sh
# For tests under mpirun (tests/mpi_faults.sh): run one rank's command as a child, write its pid
# to DIR/pid-<rank> and, once it ends, its exit status to DIR/status-<rank>; mpirun alone would
# only report the first rank that failed. SIGTERM is left to the child (mpirun signals the
# whole process group of a rank), so the wrapper outlives it to write the status.
dir=$1; shift
rank=${OMPI_COMM_WORLD_RANK:?not started by OpenMPI}
trap '' TERM
"$@" &
child=$!
echo "$child" >"$dir/pid-$rank"
wait "$child"
echo $? >"$dir/status-$rank"
