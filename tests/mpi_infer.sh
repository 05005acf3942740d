#!/usr/bin/env bash
# Inference over 2 ranks (mpirun -np 2 on this machine) gives what one process gives: vdvae eval
# the same JSON (NELBO, its parts, SSIM, image count; a partial last batch included), vdvae synth
# reconstruction, generation, encoding and decoding the same files byte for byte, div_stats the
# same statistics up to the order of float sums. Runs on a slice of Fashion-MNIST (400 training, 220 test-file images)
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

# masked reconstruction over 2 ranks: the same files as one process; without its div_stats every
# rank exits 2 with the same error (no abort of the job)
mr=("${sy[@]}" --mode reconstruction --set synthesis.mask_reconstruction=True --set synthesis.variate_masks_quantile=0.5)
"$cli" synth "$cfg" "${mr[@]}" --div-stats "$tmp/div_stats-1/div_stats.npy" --threads 2 --out "$tmp/masked-1"; rc1=$?
vd_mpirun -np 2 "$cli" synth "$cfg" "${mr[@]}" --div-stats "$tmp/div_stats-1/div_stats.npy" --threads 1 --out "$tmp/masked-2"; rc2=$?
check "masked reconstruction: 1 process and 2 ranks, the same files (exit $rc1, $rc2)" \
  "[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && diff -r '$tmp/masked-1' '$tmp/masked-2' >/dev/null"
vd_mpirun -np 2 "$cli" synth "$cfg" "${mr[@]}" --div-stats "$tmp/none.npy" --threads 1 --out "$tmp/masked-3" >"$tmp/mr.out" 2>&1; rc=$?
head -3 "$tmp/mr.out"
check "masked reconstruction without its div_stats: exit 2 on every rank, naming the file, no abort (exit $rc)" \
  "[ $rc -eq 2 ] && [ \$(grep -c 'none.npy' '$tmp/mr.out') -ge 2 ] && ! grep -q MPI_ABORT '$tmp/mr.out'"

# encoding: 100 training images in batches of 16, the last one partial (rank 0 alone in the last
# round), half the variates kept by the div_stats of one process; 2 ranks with and without logits
cod=("${sy[@]}" --set synthesis.variate_masks_quantile=0.5)
enc=("${cod[@]}" --mode encoding --div-stats "$tmp/div_stats-1/div_stats.npy" --limit 100)
"$cli" synth "$cfg" "${enc[@]}" --threads 2 --out "$tmp/encoding-1" --dump-logits "$tmp/enc1.npy"; rc1=$?
vd_mpirun -np 2 "$cli" synth "$cfg" "${enc[@]}" --threads 1 --out "$tmp/encoding-2"; rc2=$?
vd_mpirun -np 2 "$cli" synth "$cfg" "${enc[@]}" --threads 1 --out "$tmp/encoding-2l" --dump-logits "$tmp/enc2.npy"; rc3=$?
check "synth encoding: 1 process and 2 ranks, without and with logits (exit $rc1, $rc2, $rc3)" \
  "[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && [ $rc3 -eq 0 ]"
# the zip stamps each member with the time it was written, so two runs of one process differ
# there too: the same members in the same order, each byte for byte
"$vd_python" - "$tmp/encoding-1/encodings.npz" "$tmp/encoding-2/encodings.npz" "$tmp/encoding-2l/encodings.npz" <<'PY'; rc=$?
import sys, zipfile
def members(p):
    with zipfile.ZipFile(p) as z:
        return [(i.filename, i.compress_type, i.CRC, z.read(i)) for i in z.infolist()]
a = members(sys.argv[1])
print(f"encodings.npz: {len(a)} members, {sum(len(m[3]) for m in a)} bytes")
sys.exit(0 if a and all(members(p) == a for p in sys.argv[2:]) else 1)
PY
check "encoding: the same encodings.npz, every member byte for byte" "[ $rc -eq 0 ]"
check "encoding: the same logits, byte for byte" "[ -s '$tmp/enc1.npy' ] && cmp -s '$tmp/enc1.npy' '$tmp/enc2.npy'"

# decoding of one process's file (--out does not move the input: it is named)
dec=("${cod[@]}" --mode decoding --input "$tmp/encoding-1/encodings.npz")
"$cli" synth "$cfg" "${dec[@]}" --threads 2 --out "$tmp/decoding-1" --dump-logits "$tmp/dec1.npy"; rc1=$?
vd_mpirun -np 2 "$cli" synth "$cfg" "${dec[@]}" --threads 1 --out "$tmp/decoding-2" --dump-logits "$tmp/dec2.npy"; rc2=$?
check "synth decoding: 1 process and 2 ranks (exit $rc1, $rc2)" "[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]"
n=$(ls "$tmp/decoding-2" | grep -c '^image_')
check "decoding: the same $n images and grid, byte for byte" \
  "[ $n -eq 100 ] && diff -r '$tmp/decoding-1' '$tmp/decoding-2' >/dev/null"
check "decoding: the same logits, byte for byte" "[ -s '$tmp/dec1.npy' ] && cmp -s '$tmp/dec1.npy' '$tmp/dec2.npy'"

finish mpi_infer
