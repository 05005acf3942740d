#!/usr/bin/env bash
# vdvae synth on a run trained for 3 steps: generation is the same byte for byte at 1 and 2
# threads; reconstruction's NELBO agrees with vdvae eval on the same checkpoint; div_stats is
# a .npy numpy loads without pickle; masked reconstruction keeps everything at quantile 1 and
# loses detail at a small quantile; bad settings and missing div_stats exit 2.
# Batches of 32 keep the 5000-image test split to seconds. Uses dataset-fashion-mnist.
set -u
cli=${VD_CLI:?}; src=${VD_SOURCE_DIR:?}
. "$src/tests/lib.sh"
need_fashion_mnist
need_python_module numpy
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cfg="$src/egs/fashion_mnist.cfg"
logs="$tmp/logs-fashion_mnist"
json() { "$vd_python" -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
# prints 1 when the python expression over a, b is true
cmpf() { "$vd_python" -c "import math,sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(int($3))" "$1" "$2"; }

"$cli" train "$cfg" --dir "$tmp" --steps 3 --set train.batch_size=32 --set val.n_samples_for_validation=32 \
  --threads 1 --quiet; rc=$?
check "tiny training run exits 0" "[ $rc -eq 0 ]"
syn=(--dir "$tmp" --quiet --set synthesis.batch_size=32)

# generation: 2 settings x 2 batches x 4 images, identical at 1 and 2 threads
gen=(--dir "$tmp" --quiet --mode generation --set synthesis.batch_size=4 --set synthesis.n_generation_batches=2
     --set "synthesis.temperature_settings=[0.9, ('linear', 0.5, 1.0)]")
"$cli" synth "$cfg" "${gen[@]}" --threads 1 --out "$tmp/g1"; rc1=$?
"$cli" synth "$cfg" "${gen[@]}" --threads 2 --out "$tmp/g2"; rc2=$?
check "generation exits 0" "[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]"
n=$(ls "$tmp"/g1/setup-*-image-*.png 2>/dev/null | wc -l)
check "16 generated images (got $n)" "[ $n -eq 16 ]"
check "a grid per setting" "[ -f '$tmp/g1/setup-0-grid.png' ] && [ -f '$tmp/g1/setup-1-grid.png' ]"
same=1; for f in "$tmp"/g1/*.png; do cmp -s "$f" "$tmp/g2/$(basename "$f")" || same=0; done
check "same PNG bytes at 1 and 2 threads" "[ $same -eq 1 ]"
check "settings differ" "! cmp -s '$tmp/g1/setup-0-image-0000.png' '$tmp/g1/setup-1-image-0000.png'"

# reconstruction against vdvae eval (same images and weights, other posterior noise)
"$cli" eval "$cfg" --dir "$tmp" --quiet --threads 1 --json "$tmp/eval.json"; rc=$?
check "eval exits 0" "[ $rc -eq 0 ]"
"$cli" synth "$cfg" "${syn[@]}" --threads 1 --mode reconstruction; rc=$?
r="$logs/synthesis-reconstruction"
check "reconstruction exits 0" "[ $rc -eq 0 ] && [ -f '$r/summary.json' ]"
for k in nelbo reconstruction kl ssim images step; do
  check "summary has $k" "json '$r/summary.json' $k >/dev/null 2>&1"
done
nelbo=$(json "$r/summary.json" nelbo); enelbo=$(json "$tmp/eval.json" nelbo)
check "NELBO $nelbo finite and within 2% of eval's $enelbo" "[ \$(cmpf $nelbo $enelbo 'math.isfinite(a) and abs(a - b) < 0.02 * b') = 1 ]"
imgs=$(json "$r/summary.json" images)
check "one PNG per image ($imgs)" "[ \$(ls '$r' | grep -c '^image-') -eq $imgs ] && [ -f '$r/grid.png' ]"

# div_stats, then masked reconstruction
"$cli" synth "$cfg" "${syn[@]}" --threads 1 --mode div_stats --set synthesis.div_stats_subset_ratio=0.01; rc=$?
d="$logs/synthesis-div_stats/div_stats.npy"
check "div_stats exits 0" "[ $rc -eq 0 ]"
# [n_td, V_max] float32; a row's values past its group's V are NaN
check "div_stats.npy loads with numpy: 10 rows, each finite values >= 0 then NaN padding" \
  "'$vd_python' -c \"import numpy as np; a = np.load('$d', allow_pickle=False); assert a.ndim == 2 and a.shape[0] == 10 and a.dtype == np.float32
for r in a: v = int(np.isfinite(r).sum()); assert v > 0 and np.isfinite(r[:v]).all() and (r[:v] >= 0).all() and np.isnan(r[v:]).all()\""
mask=(--set synthesis.mask_reconstruction=True --mode reconstruction --threads 1)
"$cli" synth "$cfg" "${syn[@]}" "${mask[@]}" --set synthesis.variate_masks_quantile=1.0 --out "$tmp/m1"; rc1=$?
"$cli" synth "$cfg" "${syn[@]}" "${mask[@]}" --set synthesis.variate_masks_quantile=0.05 --out "$tmp/m05"; rc2=$?
check "masked reconstructions exit 0" "[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]"
r0=$(json "$r/summary.json" reconstruction); r1=$(json "$tmp/m1/summary.json" reconstruction)
r05=$(json "$tmp/m05/summary.json" reconstruction)
check "quantile 1.0 ($r1) equals unmasked ($r0) within noise" "[ \$(cmpf $r1 $r0 'abs(a - b) < 0.005 * b') = 1 ]"
check "quantile 0.05 ($r05) reconstructs worse than 1.0 ($r1)" "[ \$(cmpf $r05 $r1 'a > b') = 1 ]"

# bad input
"$cli" synth "$cfg" "${syn[@]}" --mode generation --set "synthesis.temperature_settings=[('cubic', 1, 2)]" 2>"$tmp/err"; rc=$?
check "malformed temperature setting exits 2" "[ $rc -eq 2 ] && grep -q temperature_settings '$tmp/err'"
"$cli" synth "$cfg" "${syn[@]}" "${mask[@]}" --div-stats "$tmp/none.npy" 2>"$tmp/err"; rc=$?
check "missing div_stats exits 2 naming the file" "[ $rc -eq 2 ] && grep -q '$tmp/none.npy' '$tmp/err'"
"$cli" synth "$cfg" "${syn[@]}" --mode bogus 2>/dev/null; rc=$?
check "unknown mode exits 2" "[ $rc -eq 2 ]"
"$cli" synth "$cfg" --dir "$tmp/nowhere" --quiet 2>/dev/null; rc=$?
check "untrained run exits 2" "[ $rc -eq 2 ]"

finish cli_synth
