#!/usr/bin/env bash
# `vdvae data` as a user runs it: downloads from file:// mirrors, exit codes (2 for bad input and
# I/O failures alike), packing small sources; with the argument fashion_mnist (its own ctest
# entry), verified downloads from Debian's Fashion-MNIST package and packing a config's split.
set -u
cli=${VD_CLI:?}; src=${VD_SOURCE_DIR:?}
. "$src/tests/lib.sh"
mode=${1:-}
case $mode in
  '') ;;
  fashion_mnist) need_fashion_mnist ;;
  *) echo "cli_data: unknown mode '$mode'"; exit 1 ;;
esac
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
run() { "$@" >"$tmp/out" 2>&1; rc=$?; }

if [ "$mode" = fashion_mnist ]; then
  # ---- download from Debian's dataset-fashion-mnist ---------------------------------------------
  deb=$VD_FASHION_MNIST_DIR
  mkdir -p "$tmp/empty"
  run "$cli" data download fashion_mnist --base-url "file://$deb/" --dir "$tmp/fm"
  check "fashion_mnist from the Debian package verifies ($(tail -1 "$tmp/out"))" "[ $rc -eq 0 ]"
  for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    check "$f is identical to the package's" "cmp -s '$deb/$f' '$tmp/fm/$f'"
  done
  run "$cli" data download fashion_mnist --base-url "file://$tmp/empty/" --dir "$tmp/fm"
  check "verified files are not fetched again" "[ $rc -eq 0 ]"
  VD_DATA_BASE_URL="file://$deb" "$cli" data download fashion_mnist --dir "$tmp/fm2" >"$tmp/out" 2>&1
  check "VD_DATA_BASE_URL is the default mirror" "[ $? -eq 0 ] && cmp -s '$deb/t10k-labels-idx1-ubyte.gz' '$tmp/fm2/t10k-labels-idx1-ubyte.gz'"
  # a config: the validation half of Fashion-MNIST's test set, padded to 32x32
  run "$cli" data pack "$src/egs/fashion_mnist.cfg" "$tmp/val.vdpack" --split val
  check "pack a config's split ($(tail -1 "$tmp/out"))" "[ $rc -eq 0 ] && grep -q '5000 images of 32x32x1' '$tmp/out'"
  run "$cli" data pack --config "$src/egs/fashion_mnist.cfg" "$tmp/val2.vdpack" --split val
  check "--config packs the same file" "[ $rc -eq 0 ] && cmp -s '$tmp/val.vdpack' '$tmp/val2.vdpack'"
  finish "cli_data fashion_mnist"
  exit
fi

run "$cli" data --help
check "data --help exits 0" "[ $rc -eq 0 ] && grep -q download '$tmp/out' && grep -q pack '$tmp/out'"
run "$cli" data download --help
check "download --help lists the datasets" "[ $rc -eq 0 ] && grep -q fashion_mnist '$tmp/out' && grep -q cifar-10 '$tmp/out'"
run "$cli" data pack --help
check "pack --help exits 0" "[ $rc -eq 0 ] && grep -q -- --split '$tmp/out'"
run "$cli" data frobnicate
check "unknown data command exits 2" "[ $rc -eq 2 ]"
run "$cli" data download nosuch --dir "$tmp/x"
check "unknown dataset exits 2 and is named" "[ $rc -eq 2 ] && grep -q nosuch '$tmp/out'"

# ---- download failures ----------------------------------------------------------------------
run "$cli" data download fashion_mnist --base-url "nope://host/" --dir "$tmp/bad"
check "unsupported protocol exits 2" "[ $rc -eq 2 ]"
mkdir -p "$tmp/empty"
run "$cli" data download fashion_mnist --base-url "file://$tmp/empty/" --dir "$tmp/bad"
check "missing remote file exits 2 (I/O errors are the user's to fix)" "[ $rc -eq 2 ]"
check "missing remote file names its URL" "grep -q 'file://$tmp/empty/train-images-idx3-ubyte.gz' '$tmp/out'"
check "no .part file is left" "[ -z \"\$(ls '$tmp/bad')\" ]"
mkdir -p "$tmp/junk"; echo junk >"$tmp/junk/train-images-idx3-ubyte.gz"
run "$cli" data download fashion_mnist --base-url "file://$tmp/junk" --dir "$tmp/bad"
check "checksum mismatch exits 2" "[ $rc -eq 2 ] && grep -q 'checksum mismatch' '$tmp/out'"
check "checksum mismatch names the file" "grep -q 'train-images-idx3-ubyte.gz' '$tmp/out'"
check "a mismatched file is not kept" "[ -z \"\$(ls '$tmp/bad')\" ]"

# ---- pack ------------------------------------------------------------------------------------------
# IDX: 3 images of 2x2, raw (no gzip)
printf '\0\0\10\3\0\0\0\3\0\0\0\2\0\0\0\2\1\2\3\4\5\6\7\10\11\12\13\14' >"$tmp/tiny-idx3-ubyte"
run "$cli" data pack "$tmp/tiny-idx3-ubyte" "$tmp/idx.vdpack"
check "pack an IDX file ($(tail -1 "$tmp/out"))" "[ $rc -eq 0 ] && grep -q '3 images of 2x2x1' '$tmp/out' && [ -s '$tmp/idx.vdpack' ]"
run "$cli" data pack "$tmp/tiny-idx3-ubyte" "$tmp/x.vdpack" --res 4
check "--res on an IDX file exits 2" "[ $rc -eq 2 ]"

# CIFAR-10: two batch files of 2 and 1 records are joined
head -c $((2 * 3073)) /dev/zero >"$tmp/b1.bin"; head -c 3073 /dev/zero >"$tmp/b2.bin"
run "$cli" data pack "$tmp/b1.bin" "$tmp/b2.bin" "$tmp/cifar.vdpack"
check "pack CIFAR-10 batches ($(tail -1 "$tmp/out"))" "[ $rc -eq 0 ] && grep -q '3 images of 32x32x3' '$tmp/out'"

# a folder of two 5x4 PNGs, resized to 8x8 (written by python3's standard library)
mkdir -p "$tmp/imgs"
"$vd_python" - "$tmp/imgs" <<'EOF'
import struct, sys, zlib
def chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
for i in range(2):
    w, h = 5, 4
    raw = b''.join(b'\0' + bytes((x * 40 + i * 7) % 256 for x in range(w * 3)) for y in range(h))
    with open(f'{sys.argv[1]}/img{i}.png', 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
                + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
EOF
check "python3 wrote the PNGs" "[ -s '$tmp/imgs/img1.png' ]"
run "$cli" data pack "$tmp/imgs" "$tmp/imgs.vdpack" --res 8
check "pack an image folder ($(tail -1 "$tmp/out"))" "[ $rc -eq 0 ] && grep -q '2 images of 8x8x3' '$tmp/out'"
run "$cli" data pack "$tmp/imgs" "$tmp/x.vdpack"
check "a folder without --res exits 2" "[ $rc -eq 2 ]"

run "$cli" data pack "$src/egs/fashion_mnist.cfg" "$tmp/x.vdpack" --split nope
check "a bad --split exits 2" "[ $rc -eq 2 ]"

run "$cli" data pack "$tmp/missing.idx" "$tmp/x.vdpack"
check "missing SRC exits 2 and is named" "[ $rc -eq 2 ] && grep -q missing.idx '$tmp/out'"
echo "plain text" >"$tmp/notes.txt"
run "$cli" data pack "$tmp/notes.txt" "$tmp/x.vdpack"
check "unknown format exits 2 and is named" "[ $rc -eq 2 ] && grep -q notes.txt '$tmp/out'"
printf '\0\0\10\3\0\0\0\11\0\0\0\2\0\0\0\2\1\2' >"$tmp/short-idx3-ubyte"
run "$cli" data pack "$tmp/short-idx3-ubyte" "$tmp/x.vdpack"
check "a truncated IDX file exits 2 and is named" "[ $rc -eq 2 ] && grep -q short-idx3-ubyte '$tmp/out'"
run "$cli" data pack "$tmp/tiny-idx3-ubyte"
check "pack without OUT exits 2" "[ $rc -eq 2 ]"

finish cli_data
