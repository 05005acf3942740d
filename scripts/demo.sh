#!/usr/bin/env bash
# The main job: train the default model (egs/fashion_mnist.cfg) on Debian's Fashion-MNIST for
# a bounded time, then evaluate the test NLL with the EMA weights and write a grid of samples.
# VD_DEMO_SECONDS (default 600) bounds the training; running it again continues the run.
set -euo pipefail
build=${1:-build}
vdvae="$build/vdvae"
cfg=egs/fashion_mnist.cfg
workdir=${VD_DEMO_DIR:-out/demo}
seconds=${VD_DEMO_SECONDS:-600}
mkdir -p "$workdir"

echo "== the model: $cfg"
"$vdvae" info "$cfg"

echo "== training for at most ${seconds}s (run directory: $workdir; Ctrl-C stops cleanly)"
"$vdvae" train "$cfg" --dir "$workdir" --time "$seconds" --log-every 100

echo "== test NLL and samples"
"$vdvae" eval "$cfg" --dir "$workdir" --split test
echo "demo: samples in $workdir/logs-fashion_mnist/samples-test.png,"
echo "      test NLL in $workdir/logs-fashion_mnist/eval-test.json,"
echo "      TensorBoard logs in $workdir/logs-fashion_mnist/{train,val}"
