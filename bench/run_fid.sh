#!/usr/bin/env bash
# Times the FID Inception network's forward as bench/FID.md records it: ours (bench/fid_inception
# on the cpu backend) and pytorch-fid's InceptionV3 in PyTorch (bench/fid_torch.py), side by
# side on this machine, with the same random weights of the network, batch and image size and
# the same thread count, preceded by the machine facts that make the numbers comparable. The two
# alternate for R rounds (each timing K batches after a warm-up), so that a machine shared with
# other work loads both alike; the best batch of each side counts, and each round's ratio shows.
# usage: bench/run_fid.sh [BUILD_DIR] [--batch B] [--size S] [--iters K] [--rounds R] [--threads T]
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$REPO/build"
if (($#)) && [[ $1 != --* ]]; then BUILD="$1"; shift; fi
BATCH=16 SIZE=32 ITERS=2 ROUNDS=3 THREADS=2
while (($#)); do
  case "$1" in
    --batch) BATCH="$2"; shift ;;
    --size) SIZE="$2"; shift ;;
    --iters) ITERS="$2"; shift ;;
    --rounds) ROUNDS="$2"; shift ;;
    --threads) THREADS="$2"; shift ;;
    *) echo "run_fid: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
BIN="$BUILD/bench/fid_inception"
[[ -x "$BIN" ]] || { echo "run_fid: no $BIN; build first (cmake --build $BUILD --target fid_inception)" >&2; exit 1; }
PY="$REPO/third_party/venv/bin/python"
[[ -x "$PY" ]] || PY=python3

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
"$PY" "$REPO/tools/fid_weights.py" --random 1 "$TMP/w.pth" >/dev/null
"$PY" "$REPO/tools/fid_weights.py" "$TMP/w.pth" "$TMP/w.safetensors" >/dev/null

echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
family="$(awk -F': ' '/^cpu family/ {f = $2} /^model\t/ {m = $2} END {print "family " f " model " m}' /proc/cpuinfo)"
echo "cpu:     $(lscpu | sed -n 's/^Model name: *//p' | head -n1) ($family), $(nproc) cores available"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg)"
echo "ours:    OMP_NUM_THREADS=$THREADS $BIN W.safetensors --batch $BATCH --size $SIZE --iters $ITERS --threads $THREADS --profile"
echo "PyTorch: OMP_NUM_THREADS=$THREADS $PY bench/fid_torch.py W.pth --batch $BATCH --size $SIZE --iters $ITERS --threads $THREADS"
best() { sed -n 's/^best: \([0-9.]*\) images\/s.*/\1/p' "$1"; }
ours() {
  OMP_NUM_THREADS="$THREADS" "$BIN" "$TMP/w.safetensors" --batch "$BATCH" --size "$SIZE" \
    --iters "$ITERS" --threads "$THREADS" --profile >"$TMP/ours.$1"
}
torch() {
  OMP_NUM_THREADS="$THREADS" "$PY" "$REPO/bench/fid_torch.py" "$TMP/w.pth" --batch "$BATCH" \
    --size "$SIZE" --iters "$ITERS" --threads "$THREADS" >"$TMP/torch.$1"
}
for ((r = 1; r <= ROUNDS; r++)); do  # who goes first alternates
  if ((r % 2)); then ours "$r"; torch "$r"; else torch "$r"; ours "$r"; fi
  echo "round $r: ours $(best "$TMP/ours.$r") images/s, PyTorch $(best "$TMP/torch.$r") images/s," \
    "ratio $(awk -v a="$(best "$TMP/ours.$r")" -v b="$(best "$TMP/torch.$r")" 'BEGIN {printf "%.2f", a / b}')" \
    "(load $(cut -d' ' -f1 /proc/loadavg))"
done
top() { for f in "$@"; do best "$f"; done | sort -g | tail -n1; }
o="$(top "$TMP"/ours.*)" t="$(top "$TMP"/torch.*)"
echo
echo "best of all rounds: ours $o images/s, PyTorch $t images/s ($(awk -v a="$o" -v b="$t" 'BEGIN {printf "%.2f", a / b}')x)"
best_round="$(for f in "$TMP"/ours.*; do echo "$(best "$f") $f"; done | sort -g | tail -n1 | cut -d' ' -f2)"
echo
echo "ours, the best round's profile:"
sed -n '/^op family/,$p' "$best_round"
