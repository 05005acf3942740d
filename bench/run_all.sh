#!/usr/bin/env bash
# `make bench`: every benchmark in one go, on this machine, with the thread count of a user's
# laptop (2). Prints what bench/*.md record; it asserts nothing (speed is not a test).
set -u
build=${1:-build}
threads=${VD_BENCH_THREADS:-2}
# the reference configs ship in egs/reference; run from the repository root like `make bench`
egs=egs/reference
export OMP_NUM_THREADS=$threads
echo "== machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $threads threads"
echo "== convolution primitives (bench/CONV_RATES.md)"
"$build/bench/conv_rates" || true
echo "== data loader (bench/LOADER.md)"
"$build/bench/loader_bench" --threads 2 --seconds 3 || true
echo "== training steps (bench/STEP.md)"
for prec in fp32 bf16; do
  for ck in False True; do
    "$build/vdvae" bench "$egs/binarized_mnist_baseline.cfg" --batch 32 --steps 3 --threads "$threads" \
      --set run.precision=$prec --set run.checkpoint_activations=$ck || true
    "$build/vdvae" bench "$egs/cifar10_baseline.cfg" --batch 8 --steps 3 --threads "$threads" \
      --set run.precision=$prec --set run.checkpoint_activations=$ck || true
  done
done
echo "== side by side with the PyTorch twin (bench/RESULTS.md)"
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
  for prec in fp32 bf16; do
    python3 "$(dirname "$0")/compare_torch.py" "$egs/binarized_mnist_baseline.cfg" --batch 32 --threads "$threads" --precision $prec --vdvae "$build/vdvae" || true
    python3 "$(dirname "$0")/compare_torch.py" "$egs/cifar10_baseline.cfg" --batch 8 --threads "$threads" --precision $prec --vdvae "$build/vdvae" || true
  done
else
  echo "(no torch for /usr/bin/python3: install python3-torch)"
fi
"$build/vdvae" bench egs/fashion_mnist.cfg --steps 5 --threads "$threads" || true
echo "== the FID Inception network, ours and PyTorch's (bench/FID.md)"
"$(dirname "$0")/run_fid.sh" "$build" --batch 16 --rounds 1 --threads "$threads" || true
