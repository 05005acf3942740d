#!/usr/bin/env bash
# The cuda backend trains as the cpu backend does (ctest label gpu; skipped without a GPU): the
# demo config for 20 steps from the same seed, data and noise on both, exact fp32 on the GPU
# (run.allow_tf32 = False): the training loss of every step within 1e-4 relative. Then prior
# samples from both runs' step-20 checkpoints with the same seed: the pixel values may differ
# only where output sampling rounds differently (a logistic sample landing on the other side of
# a quantisation edge); the script prints how many pixels differ and by how much, and requires
# at most 1% of pixels off, none by more than 8 levels (a bound set before any GPU run: the
# first one measures it, and the figure belongs in bench/GPU.md).
set -u
cli=${VD_CLI:?}; src=${VD_SOURCE_DIR:?}
. "$src/tests/lib.sh"
need_fashion_mnist
need_python_module numpy PIL
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cfg="$src/egs/fashion_mnist.cfg"
train() { # backend
  "$cli" train "$cfg" --dir "$tmp/$1" --steps 20 --threads 2 --log-every 1 --quiet --backend "$1" \
    --set run.allow_tf32=False --set train.checkpoint_and_eval_interval_in_steps=20 \
    --set val.n_samples_for_validation=64
}
train cuda 2>"$tmp/cuda.err"; rc=$?
if [ $rc -ne 0 ] && grep -q "no usable GPU\|has no CUDA GPU\|not in this build" "$tmp/cuda.err"; then
  cat "$tmp/cuda.err"; skip_hardware "CUDA GPU"
fi
cat "$tmp/cuda.err"
check "cuda training exits 0" "[ $rc -eq 0 ]"
train cpu; rc=$?
check "cpu training exits 0" "[ $rc -eq 0 ]"
read -r n worst < <(loss_difference "$tmp/cpu" "$tmp/cuda")
echo "training loss, cpu vs cuda over $n steps: worst relative difference $worst"
check "20 training steps logged by both" "[ $n -eq 20 ]"
check "losses within 1e-4 relative at every step ($worst)" "awk 'BEGIN { exit !($worst <= 1e-4) }'"
gen() { # backend
  "$cli" synth "$cfg" --dir "$tmp/$1" --quiet --backend "$1" --mode generation --out "$tmp/gen-$1" \
    --set run.allow_tf32=False --set synthesis.batch_size=16 --set synthesis.n_generation_batches=2 \
    --set "synthesis.temperature_settings=[1.0]"
}
gen cpu; rc1=$?; gen cuda; rc2=$?
check "generation exits 0 on both" "[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]"
"$vd_python" - "$tmp/gen-cpu" "$tmp/gen-cuda" > "$tmp/cmp" <<'PY'
import glob, os, sys
import numpy as np
from PIL import Image
a, b = sys.argv[1], sys.argv[2]
names = sorted(os.path.basename(p) for p in glob.glob(a + "/*-image-*.png"))
off = worst = total = 0
for n in names:
    x = np.asarray(Image.open(os.path.join(a, n)), dtype=np.int16)
    y = np.asarray(Image.open(os.path.join(b, n)), dtype=np.int16)
    d = np.abs(x - y)
    off += int((d > 0).sum()); worst = max(worst, int(d.max())); total += d.size
print(len(names), off, total, worst)
PY
read -r n_img off total worst < "$tmp/cmp"
echo "generation, cpu vs cuda: $n_img images, $off of $total pixels differ, by at most $worst levels"
check "32 images from both" "[ '$n_img' = 32 ]"
check "at most 1% of pixels differ ($off of $total)" "[ $((off * 100)) -le $total ]"
check "none by more than 8 levels ($worst)" "[ $worst -le 8 ]"
finish cli_train_cuda
