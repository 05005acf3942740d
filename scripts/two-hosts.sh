#!/usr/bin/env bash
# Two hosts for real, on one machine: two network namespaces joined by a veth pair
# (10.77.0.1 and 10.77.0.2), mpirun in the first starting one rank in each (its rsh agent is
# `ip netns exec` instead of ssh), the ranks talking over TCP only (btl tcp,self: no shared
# memory between them). Trains 20 steps of Fashion-MNIST at batch 8 that way (2 ranks x 4
# images) and as one process (1 x 8), and prints both runs' losses side by side and their
# largest relative difference. Needs root (namespaces), OpenMPI, a VD_MPI=ON build and
# Debian's dataset-fashion-mnist. Result recorded in bench/TWO_HOSTS.md.
#
#   sudo scripts/two-hosts.sh [BUILD_DIR]      (default build-mpi)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-mpi}
cli="$(realpath "$build/vdvae")"
[ "$(id -u)" -eq 0 ] || { echo "two-hosts: needs root (ip netns)" >&2; exit 2; }
command -v mpirun >/dev/null || { echo "two-hosts: no mpirun (Debian: openmpi-bin)" >&2; exit 2; }
"$cli" info egs/fashion_mnist.cfg | grep -q 'this build has MPI' \
  || { echo "two-hosts: $cli is not a VD_MPI=ON build (cmake -DVD_MPI=ON)" >&2; exit 2; }

tmp=$(mktemp -d)
cleanup() {
  ip netns del vd_h0 2>/dev/null || true
  ip netns del vd_h1 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

ip netns add vd_h0
ip netns add vd_h1
ip link add vd_e0 type veth peer name vd_e1
ip link set vd_e0 netns vd_h0
ip link set vd_e1 netns vd_h1
ip -n vd_h0 addr add 10.77.0.1/24 dev vd_e0
ip -n vd_h1 addr add 10.77.0.2/24 dev vd_e1
for n in 0 1; do ip -n vd_h$n link set lo up; ip -n vd_h$n link set vd_e$n up; done

# mpirun's launcher runs "AGENT HOST COMMAND" to start its daemon on another host
cat >"$tmp/agent" <<'EOF'
#!/bin/sh
host=$1; shift
case $host in
  10.77.0.1) ns=vd_h0 ;;
  10.77.0.2) ns=vd_h1 ;;
  *) echo "agent: unknown host $host" >&2; exit 1 ;;
esac
exec ip netns exec "$ns" sh -c "$*"
EOF
chmod +x "$tmp/agent"

cfg=egs/fashion_mnist.cfg
small=(--set train.batch_size=8 --set val.n_samples_for_validation=16 --set train.checkpoint_and_eval_interval_in_steps=10
       --set train.total_train_steps=1000 --set train.logging_interval_in_steps=1 --steps 20 --log-every 10)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cmd=(ip netns exec vd_h0 mpirun -np 2 --host 10.77.0.1:1,10.77.0.2:1 --mca plm_rsh_agent "$tmp/agent"
     --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24
     "$cli" train "$cfg" --dir "$tmp/two" --threads 1 "${small[@]}")
echo "\$ ${cmd[*]}" | sed "s|$tmp|\$TMP|g"
# each rank says where it runs: its namespace's address, its pid
ip netns exec vd_h0 mpirun -np 2 --host 10.77.0.1:1,10.77.0.2:1 --mca plm_rsh_agent "$tmp/agent" \
  --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24 \
  sh -c 'echo "rank $OMPI_COMM_WORLD_RANK: pid $$, address $(ip -4 -o addr show scope global | awk "{print \$4}")"'
# what each rank holds after the 20 steps (the ranks also compared it at each checkpoint)
"${cmd[@]}" >"$tmp/two.out" 2>&1 || { cat "$tmp/two.out"; exit 1; }
grep -o 'rank [0-9]* of 2: step [0-9]*, state digest [0-9a-f]*' "$tmp/two.out" | sort
"$cli" train "$cfg" --dir "$tmp/one" --threads 2 "${small[@]}" --quiet
python3 - "$tmp/two/logs-fashion_mnist/metrics.jsonl" "$tmp/one/logs-fashion_mnist/metrics.jsonl" <<'PY'
import json, sys
def losses(p):
    return {r["step"]: r["loss"] for r in map(json.loads, open(p)) if r.get("split") == "train"}
two, one = losses(sys.argv[1]), losses(sys.argv[2])
print("| step | 2 hosts x 4 images | 1 process x 8 | relative difference |")
print("|---:|---:|---:|---:|")
worst = 0.0
for s in range(1, 21):
    d = abs(two[s] - one[s]) / abs(one[s])
    worst = max(worst, d)
    print(f"| {s} | {two[s]:.8f} | {one[s]:.8f} | {d:.1e} |")
print(f"\nlargest relative difference over the 20 steps: {worst:.1e}")
sys.exit(0 if worst <= 1e-5 else 1)
PY
