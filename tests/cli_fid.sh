#!/usr/bin/env bash
# vdvae fid's bad input, which needs no network: missing weights say where to get them, a
# wrong weights file, statistics of another dimension, a file that is not statistics and an
# empty folder exit 2 naming the culprit (before any image goes through the network); usage
# errors exit 2; two pytorch-fid statistics files (numpy's np.savez_compressed) give a FID
# without weights, 0 for a file against itself. Uses numpy.
set -u
cli=${VD_CLI:?}; src=${VD_SOURCE_DIR:?}
. "$src/tests/lib.sh"
need_python_module numpy
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export HOME="$tmp/home" XDG_DATA_HOME= VD_FID_WEIGHTS=   # no weights anywhere by default
mkdir -p "$tmp/home" "$tmp/empty" "$tmp/imgs" "$tmp/good" "$tmp/mixed"
# statistics as pytorch-fid saves them: 2048 and 64 features; an .npz that is not statistics
"$vd_python" - "$tmp" <<'EOF'
import sys, numpy as np
t = sys.argv[1]
rng = np.random.default_rng(0)
for name, d in (("s2048", 2048), ("s64", 64)):
    act = rng.standard_normal((100, d)) ** 2
    np.savez_compressed(f"{t}/{name}.npz", mu=act.mean(0), sigma=np.cov(act, rowvar=False))
np.savez(f"{t}/images.npz", data=np.zeros((2, 12), np.uint8))
np.zeros((4, 4, 3), np.uint8).tofile(f"{t}/imgs/not_a.png")
import struct, zlib  # two 4 x 4 RGB PNGs
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
def png(path, side, first):
    rows = b"".join(b"\0" + bytes(range(first, first + 3 * side)) for _ in range(side))
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
png(f"{t}/good/0.png", 4, 0), png(f"{t}/good/1.png", 4, 1)
png(f"{t}/mixed/0.png", 4, 0), png(f"{t}/mixed/1.png", 5, 1)
EOF
printf 'not safetensors' >"$tmp/garbage.safetensors"
# a real safetensors file that holds another network's tensor
"$vd_python" - "$tmp/other.safetensors" <<'EOF'
import json, struct, sys
head = json.dumps({"fc.weight": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
open(sys.argv[1], "wb").write(struct.pack("<Q", len(head)) + head + b"\0" * 8)
EOF
out="$tmp/out"

"$cli" fid >"$out" 2>&1; rc=$?
check "no arguments exit 2" "[ $rc -eq 2 ]"
"$cli" fid --help >"$out" 2>&1; rc=$?
check "--help exits 0 and says how to get the weights" \
  "[ $rc -eq 0 ] && grep -q 'tools/fid_weights.py' '$out' && grep -q 'VD_FID_WEIGHTS' '$out'"

# weights
"$cli" fid stats "$tmp/imgs" "$tmp/o.npz" >"$out" 2>&1; rc=$?
check "missing weights exit 2 naming the default place and how to make them" \
  "[ $rc -eq 2 ] && grep -q '$tmp/home/.local/share/vdvae/pt_inception-2015-12-05.safetensors' '$out' \
   && grep -q 'pt_inception-2015-12-05-6726825d.pth' '$out' && grep -q 'tools/fid_weights.py' '$out'"
VD_FID_WEIGHTS="$tmp/nowhere.safetensors" "$cli" fid stats "$tmp/imgs" "$tmp/o.npz" >"$out" 2>&1; rc=$?
check "\$VD_FID_WEIGHTS is where it looks" "[ $rc -eq 2 ] && grep -q 'nowhere.safetensors (\$VD_FID_WEIGHTS)' '$out'"
XDG_DATA_HOME="$tmp/xdg" "$cli" fid stats "$tmp/imgs" "$tmp/o.npz" >"$out" 2>&1; rc=$?
check "\$XDG_DATA_HOME is the default place's root" "[ $rc -eq 2 ] && grep -q '$tmp/xdg/vdvae/' '$out'"
"$cli" fid stats "$tmp/good" "$tmp/o.npz" --weights "$tmp/garbage.safetensors" >"$out" 2>&1; rc=$?
check "a file that is not safetensors exits 2 naming it" "[ $rc -eq 2 ] && grep -q 'garbage.safetensors' '$out'"
check "and writes no statistics" "[ ! -e '$tmp/o.npz' ]"
"$cli" fid "$tmp/good" "$tmp/s2048.npz" --weights "$tmp/other.safetensors" >"$out" 2>&1; rc=$?
check "another network's safetensors exits 2 naming it" "[ $rc -eq 2 ] && grep -q 'other.safetensors' '$out'"

# statistics files
"$cli" fid "$tmp/s64.npz" "$tmp/s2048.npz" >"$out" 2>&1; rc=$?
check "statistics of 64 and 2048 features exit 2 naming both" \
  "[ $rc -eq 2 ] && grep -q 's64.npz has 64 features' '$out' && grep -q 's2048.npz 2048' '$out'"
"$cli" fid "$tmp/imgs" "$tmp/s64.npz" --weights "$tmp/garbage.safetensors" >"$out" 2>&1; rc=$?
check "64 features against a folder exit 2 naming the file, before the network" \
  "[ $rc -eq 2 ] && grep -q 's64.npz: statistics of 64 features' '$out' && ! grep -q garbage '$out'"
"$cli" fid "$src/egs/fashion_mnist.cfg" --stats "$tmp/s64.npz" --weights "$tmp/garbage.safetensors" >"$out" 2>&1; rc=$?
check "--stats of 64 features exits 2 naming it, before the run" "[ $rc -eq 2 ] && grep -q 's64.npz: statistics of 64' '$out'"
"$cli" fid "$tmp/images.npz" "$tmp/s2048.npz" >"$out" 2>&1; rc=$?
check "an .npz without mu exits 2 naming it" "[ $rc -eq 2 ] && grep -q \"images.npz: no array 'mu'\" '$out'"
"$cli" fid "$tmp/nofile.npz" "$tmp/s2048.npz" >"$out" 2>&1; rc=$?
check "a missing file exits 2 naming it" "[ $rc -eq 2 ] && grep -q 'nofile.npz' '$out'"
"$cli" fid "$tmp/s2048.npz" "$tmp/s2048.npz" >"$out" 2>&1; rc=$?
check "a statistics file against itself: FID 0 without weights ($(cat "$out"))" \
  "[ $rc -eq 0 ] && awk '/^FID: / { f = 1; if (\$2 < -1e-6 || \$2 > 1e-6) exit 1 } END { exit !f }' '$out'"

# folders
"$cli" fid stats "$tmp/empty" "$tmp/o.npz" --weights "$tmp/garbage.safetensors" >"$out" 2>&1; rc=$?
check "an empty folder exits 2 naming it" "[ $rc -eq 2 ] && grep -q '$tmp/empty: no image files' '$out'"
"$cli" fid "$tmp/empty" "$tmp/s2048.npz" --weights "$tmp/garbage.safetensors" >"$out" 2>&1; rc=$?
check "an empty folder to compare exits 2 naming it" "[ $rc -eq 2 ] && grep -q '$tmp/empty: no image files' '$out'"
"$cli" fid stats "$tmp/imgs" "$tmp/o.npz" --weights "$tmp/garbage.safetensors" --res 8 >"$out" 2>&1; rc=$?
check "a file that is not an image exits 2 naming it" "[ $rc -eq 2 ] && grep -q 'not_a.png' '$out'"
"$cli" fid stats "$tmp/mixed" "$tmp/o.npz" --weights "$tmp/garbage.safetensors" >"$out" 2>&1; rc=$?
check "a folder of images of two sizes exits 2 naming the odd one" "[ $rc -eq 2 ] && grep -q 'mixed/1.png: 5 x 5 pixels' '$out'"
"$cli" fid stats "$tmp/images.npz" "$tmp/o.npz" --weights "$tmp/garbage.safetensors" >"$out" 2>&1; rc=$?
check "an .npz of images without --res exits 2" "[ $rc -eq 2 ] && grep -q 'needs --res' '$out'"

# usage
for args in "a b c" "stats a" "--n 1 x.cfg --stats s.npz" "--temperature -1 x.cfg --stats s.npz" \
            "--n 5 a.npz b.npz" "--split test a.npz b.npz" "x.cfg y.cfg --stats s.npz" "--batch 0 a b"; do
  "$cli" fid $args >"$out" 2>&1; rc=$?
  check "usage error exits 2: fid $args" "[ $rc -eq 2 ]"
done
finish cli_fid
