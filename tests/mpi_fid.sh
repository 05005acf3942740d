#!/usr/bin/env bash
# vdvae fid over 2 ranks (mpirun -np 2 on this machine) gives what one process gives, on random
# weights of the network (tools/fid_weights.py --random): `fid stats` of an IDX file the same
# statistics file (every member byte for byte: the zip stamps times) and logits, the image
# batches shared with a partial last round; `fid RUN_CFG --stats` of a run trained for 4 steps
# the same FID and IS lines and logits for a --n that is no multiple of the sampler's batch;
# `fid FOLDER REF.npz` the same FID and IS; a missing --weights file ends both ranks with exit 2
# naming it, and so does one missing on rank 1 alone, or a run that is not there, without an
# abort of the job. Uses dataset-fashion-mnist, torch and numpy (for the random weights).
set -u
cli=${VD_CLI:?}; src=${VD_SOURCE_DIR:?}
. "$src/tests/lib.sh"
need_mpirun
need_fashion_mnist
need_python_module torch numpy
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cfg="$src/egs/fashion_mnist.cfg"

"$vd_python" "$src/tools/fid_weights.py" --random 5 "$tmp/w.pth" >/dev/null &&
  "$vd_python" "$src/tools/fid_weights.py" "$tmp/w.pth" "$tmp/w.safetensors" >/dev/null; rc=$?
check "random weights made" "[ $rc -eq 0 ]"
export VD_FID_WEIGHTS="$tmp/w.safetensors"

# the first images of each IDX file as IDX files of their own (the run's data), 30 test images
# as one more IDX file and 15 of them as grey PNGs
"$vd_python" - "$VD_FASHION_MNIST_DIR" "$tmp" <<'PY'
import gzip, os, struct, sys, zlib
src, t = sys.argv[1], sys.argv[2]
os.makedirs(f"{t}/data"), os.makedirs(f"{t}/pngs")
def head(name, n):
    raw = gzip.open(os.path.join(src, name)).read()
    magic, _, h, w = struct.unpack(">IIII", raw[:16])
    return struct.pack(">IIII", magic, n, h, w) + raw[16:16 + n * h * w], h, w
for name, n in (("train-images-idx3-ubyte.gz", 200), ("t10k-images-idx3-ubyte.gz", 100)):
    with gzip.open(os.path.join(t, "data", name), "wb") as f:
        f.write(head(name, n)[0])
raw, h, w = head("t10k-images-idx3-ubyte.gz", 30)
with gzip.open(f"{t}/small-idx3-ubyte.gz", "wb") as f:
    f.write(raw)
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
for i in range(15):
    px = raw[16 + i * h * w:16 + (i + 1) * h * w]
    rows = b"".join(b"\0" + px[r * w:(r + 1) * w] for r in range(h))
    open(f"{t}/pngs/{i:03d}.png", "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                                            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
PY
# the same members (names, compression, CRC, bytes) in the same order
same_zip() {
  "$vd_python" - "$@" <<'PY'
import sys, zipfile
def members(p):
    with zipfile.ZipFile(p) as z:
        return [(i.filename, i.compress_type, i.CRC, z.read(i)) for i in z.infolist()]
a = members(sys.argv[1])
sys.exit(0 if a and all(members(p) == a for p in sys.argv[2:]) else 1)
PY
}

# stats of 30 images in network batches of 7: 5 batches, rank 0 alone in the last round
st=(fid stats "$tmp/small-idx3-ubyte.gz" --batch 7 --threads 1 -q)
"$cli" "${st[@]}" "$tmp/ref1.npz" --dump-logits "$tmp/sl1.npy" >"$tmp/s1.out" 2>&1; rc1=$?
vd_mpirun -np 2 "$cli" "${st[@]}" "$tmp/ref2.npz" --dump-logits "$tmp/sl2.npy" >"$tmp/s2.out" 2>&1; rc2=$?
cat "$tmp/s2.out"
check "fid stats: 1 process and 2 ranks (exit $rc1, $rc2)" "[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]"
check "fid stats: rank 0 alone prints, what one process prints" \
  "diff <(grep -v '^images/s' '$tmp/s1.out' | sed 's/ref1/ref/') <(grep -v '^images/s' '$tmp/s2.out' | sed 's/ref2/ref/') >/dev/null \
   && [ \$(grep -c 'statistics of 30 images' '$tmp/s2.out') -eq 1 ]"
check "fid stats: the same statistics file, every member byte for byte" "same_zip '$tmp/ref1.npz' '$tmp/ref2.npz'"
check "fid stats: the same logits, byte for byte" "[ -s '$tmp/sl1.npy' ] && cmp -s '$tmp/sl1.npy' '$tmp/sl2.npy'"

# a run to sample from
"$cli" train "$cfg" --dir "$tmp/run" --set "data.train_data_path='$tmp/data/'" --set "data.val_data_path='$tmp/data/'" \
  --set "data.synthesis_data_path='$tmp/data/'" --set train.batch_size=8 --set val.n_samples_for_validation=16 \
  --set train.checkpoint_and_eval_interval_in_steps=4 --steps 4 --threads 2 --quiet; rc=$?
check "a 4-step run to sample from (exit $rc)" "[ $rc -eq 0 ]"

# 38 samples in sampler batches of 8 (the last of 6), each through the network in pieces of 5:
# 5 batches, rank 0 alone in the last round
fs=(fid "$cfg" --dir "$tmp/run" --stats "$tmp/ref1.npz" --n 38 --set synthesis.batch_size=8 --batch 5 --threads 1)
"$cli" "${fs[@]}" --dump-logits "$tmp/fl1.npy" >"$tmp/f1.out" 2>"$tmp/f1.err"; rc1=$?
vd_mpirun -np 2 "$cli" "${fs[@]}" --dump-logits "$tmp/fl2.npy" >"$tmp/f2.out" 2>"$tmp/f2.err"; rc2=$?
cat "$tmp/f2.out"
check "fid of samples: 1 process and 2 ranks (exit $rc1, $rc2)" "[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]"
check "the same samples, FID and IS lines" \
  "[ \$(grep -c '^FID: ' '$tmp/f2.out') -eq 1 ] && diff <(grep -E '^(samples|FID|IS):' '$tmp/f1.out') <(grep -E '^(samples|FID|IS):' '$tmp/f2.out') >/dev/null"
check "the same logits, byte for byte" "[ -s '$tmp/fl1.npy' ] && cmp -s '$tmp/fl1.npy' '$tmp/fl2.npy'"
check "progress from rank 0 alone, the last at 38/38" \
  "[ \$(grep -c '^fid: 38/38 images' '$tmp/f2.err') -eq 1 ] && diff <(sed 's/, [0-9.]* images.s//' '$tmp/f1.err') <(sed 's/, [0-9.]* images.s//' '$tmp/f2.err') >/dev/null"

# a folder of 15 images against the statistics
"$cli" fid "$tmp/pngs" "$tmp/ref1.npz" --batch 4 --threads 1 -q >"$tmp/p1.out" 2>&1; rc1=$?
vd_mpirun -np 2 "$cli" fid "$tmp/pngs" "$tmp/ref1.npz" --batch 4 --threads 1 -q >"$tmp/p2.out" 2>&1; rc2=$?
check "fid FOLDER REF.npz: 1 process and 2 ranks, the same FID and IS lines (exit $rc1, $rc2)" \
  "[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && [ \$(grep -c '^FID: ' '$tmp/p2.out') -eq 1 ] \
   && diff <(grep -E '^(FID|IS):' '$tmp/p1.out') <(grep -E '^(FID|IS):' '$tmp/p2.out') >/dev/null"

# failures: every rank exits 2 with the error, no abort of the job
vd_mpirun -np 2 "$cli" "${st[@]}" "$tmp/ref3.npz" --weights "$tmp/none.safetensors" >"$tmp/e1.out" 2>&1; rc=$?
head -3 "$tmp/e1.out"
check "fid stats without its weights file: exit 2 on every rank, naming it, no abort (exit $rc)" \
  "[ $rc -eq 2 ] && [ \$(grep -c 'none.safetensors' '$tmp/e1.out') -ge 2 ] && ! grep -q MPI_ABORT '$tmp/e1.out' && [ ! -e '$tmp/ref3.npz' ]"
vd_mpirun -np 2 "$cli" "${fs[@]}" --weights "$tmp/none.safetensors" >"$tmp/e2.out" 2>&1; rc=$?
check "fid of samples without its weights file: the same (exit $rc)" \
  "[ $rc -eq 2 ] && [ \$(grep -c 'none.safetensors' '$tmp/e2.out') -ge 2 ] && ! grep -q MPI_ABORT '$tmp/e2.out'"
# weights missing on rank 1 alone (its $VD_FID_WEIGHTS points nowhere): rank 0 stops with it too
vd_mpirun -np 2 bash -c '[ "$OMPI_COMM_WORLD_RANK" = 1 ] && export VD_FID_WEIGHTS="$0/nowhere.safetensors"; exec "$@"' \
  "$tmp" "$cli" "${fs[@]}" >"$tmp/e4.out" 2>&1; rc=$?
head -3 "$tmp/e4.out"
check "weights missing on rank 1 alone: exit 2 on both ranks, rank 0 naming rank 1's error, no abort (exit $rc)" \
  "[ $rc -eq 2 ] && grep -q '^vdvae fid (rank 0 of 2): rank 1: no FID Inception weights at $tmp/nowhere' '$tmp/e4.out' \
   && grep -q '^vdvae fid (rank 1 of 2): no FID Inception weights at $tmp/nowhere' '$tmp/e4.out' && ! grep -q MPI_ABORT '$tmp/e4.out'"
vd_mpirun -np 2 "$cli" "${fs[@]}" --set run.name=nothing >"$tmp/e3.out" 2>&1; rc=$?
head -3 "$tmp/e3.out"
check "fid of samples of a run that is not there: exit 2 on every rank, naming it, no abort (exit $rc)" \
  "[ $rc -eq 2 ] && [ \$(grep -c \"^vdvae fid (rank .* of 2): no run 'nothing'\" '$tmp/e3.out') -eq 2 ] && ! grep -q MPI_ABORT '$tmp/e3.out'"

finish mpi_fid
