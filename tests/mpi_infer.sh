#!/usr/bin/env bash
# Inference over 2 ranks (mpirun -np 2 on this machine) gives what one process gives: vdvae eval
# the same JSON (NELBO, its parts, SSIM, image count; a partial last batch included), vdvae synth
# reconstruction and generation the same files byte for byte, div_stats the same statistics up to
# the order of float sums. Runs on a slice of Fashion-MNIST (400 training, 220 test-file images)
# so that every image of the split is written in seconds.
set -u
cli=${VD_CLI:?}; src=${VD_SOURCE_DIR:?}
. "$src/tests/lib.sh"
need_mpirun
need_fashion_mnist
need_python_module
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cfg="$src/egs/fashion_mnist.cfg"

# the first images of each IDX file, as IDX files of their own
"$vd_python" - "$VD_FASHION_MNIST_DIR" "$tmp/data" <<'PY'
import gzip, os, struct, sys
src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst)
for name, n in (("train-images-idx3-ubyte.gz", 400), ("t10k-images-idx3-ubyte.gz", 220)):
    raw = gzip.open(os.path.join(src, name)).read()
    magic, _, h, w = struct.unpack(">IIII", raw[:16])
    with gzip.open(os.path.join(dst, name), "wb") as f:
        f.write(struct.pack(">IIII", magic, n, h, w) + raw[16:16 + n * h * w])
PY
data=(--set "data.train_data_path='$tmp/data/'" --set "data.val_data_path='$tmp/data/'"
      --set "data.synthesis_data_path='$tmp/data/'")
"$cli" train "$cfg" --dir "$tmp/run" "${data[@]}" --set train.batch_size=8 --set val.n_samples_for_validation=16 \
  --set train.checkpoint_and_eval_interval_in_steps=4 --steps 4 --threads 2 --quiet; rc=$?
check "a 4-step run to infer from (exit $rc)" "[ $rc -eq 0 ]"

# eval: 110 test images in batches of 16, the last one partial
ev=(--dir "$tmp/run" --set train.batch_size=16 --quiet)
"$cli" eval "$cfg" "${ev[@]}" --threads 2 --json "$tmp/eval1.json" --samples "$tmp/s1.png"; rc1=$?
vd_mpirun -np 2 "$cli" eval "$cfg" "${ev[@]}" --threads 1 --json "$tmp/eval2.json" --samples "$tmp/s2.png"; rc2=$?
cat "$tmp/eval2.json"
check "eval: 1 process and 2 ranks (exit $rc1, $rc2)" "[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]"
check "the same NELBO, parts, SSIM and image count (identical JSON)" "cmp -s '$tmp/eval1.json' '$tmp/eval2.json'"
check "over every test image, the last batch partial" "grep -q '\"images\": 110,' '$tmp/eval2.json'"
check "the same sample grid" "cmp -s '$tmp/s1.png' '$tmp/s2.png'"

# synth: files of one process and of 2 ranks
sy=(--dir "$tmp/run" --set synthesis.batch_size=16 --set synthesis.n_generation_batches=3 --quiet)
for mode in reconstruction generation div_stats; do
  "$cli" synth "$cfg" "${sy[@]}" --mode $mode --threads 2 --out "$tmp/$mode-1"; rc1=$?
  vd_mpirun -np 2 "$cli" synth "$cfg" "${sy[@]}" --mode $mode --threads 1 --out "$tmp/$mode-2"; rc2=$?
  check "synth $mode: 1 process and 2 ranks (exit $rc1, $rc2)" "[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]"
done
n=$(ls "$tmp/reconstruction-2" | grep -c '^image-')
check "reconstruction: the same $n images, grid and summary, byte for byte" \
  "[ $n -eq 110 ] && diff -r '$tmp/reconstruction-1' '$tmp/reconstruction-2' >/dev/null"
n=$(ls "$tmp/generation-2" | grep -c 'image')
check "generation: the same $n images and grids, byte for byte" \
  "[ $n -gt 0 ] && diff -r '$tmp/generation-1' '$tmp/generation-2' >/dev/null"
"$vd_python" - "$tmp/div_stats-1/div_stats.npy" "$tmp/div_stats-2/div_stats.npy" <<'PY'; rc=$?
import math, struct, sys
def floats(p):
    raw = open(p, "rb").read()
    start = 10 + struct.unpack("<H", raw[8:10])[0]
    return struct.unpack("<%df" % ((len(raw) - start) // 4), raw[start:])
a, b = floats(sys.argv[1]), floats(sys.argv[2])
pairs = [(x, y) for x, y in zip(a, b) if not (math.isnan(x) and math.isnan(y))]
worst = max(abs(x - y) / max(abs(y), 1e-30) for x, y in pairs)
print(f"div_stats: {len(pairs)} variates, worst relative difference {worst:.2e}")
sys.exit(0 if len(a) == len(b) and worst <= 1e-5 else 1)
PY
check "div_stats: the same statistics within 1e-5" "[ $rc -eq 0 ]"

vd_mpirun -np 2 "$cli" synth "$cfg" "${sy[@]}" --mode encoding --threads 1 >"$tmp/enc.out" 2>&1; rc=$?
check "encoding over 2 ranks is refused, saying to run it as one process (exit $rc)" \
  "[ $rc -eq 2 ] && grep -q 'does not run over several ranks yet' '$tmp/enc.out'"

finish mpi_infer
