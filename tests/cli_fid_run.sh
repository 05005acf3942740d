#!/usr/bin/env bash
# vdvae fid as a user runs it, on random weights of the network (tools/fid_weights.py --random):
# statistics of an IDX file, of the .vdpack packed from it and of a folder of its images as
# PNGs agree (FID 0 between them) and numpy reads them as pytorch-fid's; a run trained for 3
# steps gives a FID and an Inception Score of its samples, the same whatever --batch and
# --threads, other at another temperature; a progress line per tenth on stderr unless -q; two
# folders give a FID and the Inception Score of each. Uses dataset-fashion-mnist, torch
# (for the random weights), numpy and Pillow.
set -u
cli=${VD_CLI:?}; src=${VD_SOURCE_DIR:?}
. "$src/tests/lib.sh"
need_fashion_mnist
need_python_module torch numpy PIL
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cfg="$src/egs/fashion_mnist.cfg"
out="$tmp/out"; err="$tmp/err"
num() { awk -v k="$1" '$1 == k { print $2; exit }' "$2"; }
# prints 1 when the python expression over a, b is true
cmpf() { "$vd_python" -c "import math,sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(int($3))" "$1" "$2"; }

"$vd_python" "$src/tools/fid_weights.py" --random 3 "$tmp/w.pth" >/dev/null &&
  "$vd_python" "$src/tools/fid_weights.py" "$tmp/w.pth" "$tmp/w.safetensors" >/dev/null; rc=$?
check "random weights made" "[ $rc -eq 0 ]"
export VD_FID_WEIGHTS="$tmp/w.safetensors"

# 30 test images as an IDX file and as 28 x 28 grey PNGs (two folders of 15)
"$vd_python" - "$tmp" <<'EOF'
import gzip, os, sys, numpy as np
from PIL import Image
t = sys.argv[1]
with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as f:
    x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:30]
with gzip.open(f"{t}/small-idx3-ubyte.gz", "wb") as f:
    f.write(bytes([0, 0, 8, 3]) + np.array([30, 28, 28], ">u4").tobytes() + x.tobytes())
for d, part in (("all", x), ("half1", x[:15]), ("half2", x[15:])):
    os.makedirs(f"{t}/{d}")
    for i, im in enumerate(part):
        Image.fromarray(im, "L").save(f"{t}/{d}/{i:03d}.png")
EOF

"$cli" fid stats "$tmp/small-idx3-ubyte.gz" "$tmp/idx.npz" >"$out" 2>"$err"; rc=$?
check "stats of an IDX file exit 0 ($(head -c 300 "$err"))" "[ $rc -eq 0 ] && grep -q 'idx.npz: statistics of 30 images (2048 features)' '$out'"
check "progress on stderr, the last at 30/30" "grep -q '^fid: 30/30 images' '$err'"
check "numpy reads them as pytorch-fid's: float64 mu [2048], sigma [2048, 2048] symmetric" \
  "'$vd_python' -c \"import numpy as np; f = np.load('$tmp/idx.npz'); m, s = f['mu'], f['sigma']
assert m.dtype == s.dtype == np.float64 and m.shape == (2048,) and s.shape == (2048, 2048) and (s == s.T).all()\""
"$cli" data pack "$tmp/small-idx3-ubyte.gz" "$tmp/small.vdpack" >/dev/null 2>&1 &&
  "$cli" fid stats "$tmp/small.vdpack" "$tmp/pack.npz" -q >"$out" 2>"$err"; rc=$?
check "stats of a .vdpack, quiet: nothing on stderr" "[ $rc -eq 0 ] && [ ! -s '$err' ]"
"$cli" fid stats "$tmp/all" "$tmp/all.npz" -q >"$out" 2>&1; rc=$?
check "stats of a folder of grey PNGs exit 0" "[ $rc -eq 0 ]"
for f in pack all; do
  "$cli" fid "$tmp/idx.npz" "$tmp/$f.npz" >"$out" 2>&1; rc=$?
  v=$(num FID: "$out")
  check "FID between the IDX file's statistics and the $f's: 0 ($v)" "[ $rc -eq 0 ] && [ \$(cmpf '${v:-nan}' 0 'abs(a) < 1e-4') = 1 ]"
done

# samples of a run
"$cli" train "$cfg" --dir "$tmp" --steps 3 --set train.batch_size=32 --set val.n_samples_for_validation=32 \
  --threads 1 --quiet; rc=$?
check "tiny training run exits 0" "[ $rc -eq 0 ]"
run=(--dir "$tmp" --stats "$tmp/idx.npz" --n 24 --set synthesis.batch_size=8)
"$cli" fid "$cfg" "${run[@]}" >"$out" 2>"$err"; rc=$?
cp "$out" "$tmp/first"
f1=$(num FID: "$out"); is=$(num IS: "$out"); ips=$(num images/s: "$out")
check "fid of samples exits 0 ($(head -c 300 "$err"))" "[ $rc -eq 0 ] && grep -q '^samples: 24 at temperature 1, EMA weights of .*checkpoint' '$out'"
check "a finite FID > 0 ($f1), an IS >= 1 ($is), images/s > 0 ($ips)" \
  "[ \$(cmpf '${f1:-nan}' '${is:-nan}' 'math.isfinite(a) and a > 0 and b >= 1 - 1e-9') = 1 ] && [ \$(cmpf '${ips:-0}' 0 'a > 0') = 1 ]"
check "progress on stderr, the last at 24/24" "grep -q '^fid: 24/24 images' '$err'"
"$cli" fid "$cfg" "${run[@]}" --batch 5 --threads 1 -q >"$out" 2>"$err"; rc=$?
f2=$(num FID: "$out")
check "the same samples at --batch 5 --threads 1: FID $f2 as $f1" "[ $rc -eq 0 ] && [ \$(cmpf '${f2:-nan}' '${f1:-nan}' 'abs(a - b) <= 1e-4 * b') = 1 ]"
check "quiet: nothing on stderr" "[ ! -s '$err' ]"
"$cli" fid "$cfg" "${run[@]}" --temperature 0.2 -q >"$out" 2>&1; rc=$?
f3=$(num FID: "$out")
check "another temperature, another FID ($f3)" "[ $rc -eq 0 ] && grep -q 'at temperature 0.2' '$out' && [ \$(cmpf '${f3:-nan}' '${f1:-nan}' 'abs(a - b) > 1e-6 * b') = 1 ]"

# two folders
"$cli" fid "$tmp/half1" "$tmp/half2" -q >"$out" 2>&1; rc=$?
v=$(num FID: "$out")
check "two folders: a FID ($v) and two Inception Scores" \
  "[ $rc -eq 0 ] && [ \$(cmpf '${v:-nan}' 0 'math.isfinite(a) and a > 0') = 1 ] && [ \$(grep -c '^IS: ' '$out') -eq 2 ]"
finish cli_fid_run
