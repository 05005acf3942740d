#!/usr/bin/env bash
# bf16 against float32 after the same training budget: the demo config (egs/fashion_mnist.cfg)
# trained for STEPS steps in fp32 and in bf16 (same seed, data order and noise), then each
# run's test NELBO (EMA weights, whole test split, evaluated in the run's own precision). A
# second fp32 run with another seed shows how far two float32 runs land apart by chance.
# usage: bench/bf16_nelbo.sh [BUILD_DIR] [STEPS] [THREADS]   (results: bench/RESULTS.md)
set -eu
build=${1:-build}; steps=${2:-1000}; threads=${3:-2}
cli="$build/vdvae"; cfg="$(dirname "$0")/../egs/fashion_mnist.cfg"
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
run() { # name, --set ...
  local name=$1; shift
  local t0=$(date +%s)
  "$cli" train "$cfg" --dir "$out/$name" --steps "$steps" --threads "$threads" --quiet \
    --set train.checkpoint_and_eval_interval_in_steps="$steps" "$@" >/dev/null
  local t1=$(date +%s)
  "$cli" eval "$cfg" --dir "$out/$name" --threads "$threads" --quiet --json "$out/$name.json" >/dev/null
  local nelbo=$(sed 's/.*"nelbo": *\([0-9.eE+-]*\).*/\1/' "$out/$name.json")
  printf '%-14s %8s %12s s\n' "$name" "$nelbo" "$((t1 - t0))"
  echo "$nelbo" >"$out/$name.nelbo"
}
echo "egs/fashion_mnist.cfg, $steps steps, $threads threads; test NELBO (bits/dim, EMA) and training time"
printf '%-14s %8s %14s\n' run nelbo "train time"
run fp32 --set run.precision=fp32
run bf16 --set run.precision=bf16
run fp32-seed421 --set run.precision=fp32 --set run.seed=421
a=$(cat "$out/fp32.nelbo"); b=$(cat "$out/bf16.nelbo"); c=$(cat "$out/fp32-seed421.nelbo")
awk -v a="$a" -v b="$b" -v c="$c" 'BEGIN {
  d = (b - a) / a * 100; s = (c - a) / a * 100
  printf "bf16 vs fp32: %+.3f%%   (fp32 seed 421 vs seed 420: %+.3f%%)\n", d, s }'
