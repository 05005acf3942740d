#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA GPU, builds vdvae with the CUDA backend (or takes a
# build packed elsewhere), runs the CUDA tests, times `vdvae bench --backend cuda` against our
# PyTorch twin of the model (bench/torch_gpu_bench.py) on the reference configs, trains a tiny
# config for 20 steps, and prints step time and peak GPU memory of both side by side.
#
# usage: bash scripts/gpu-check.sh [BUILD]           the check (exit 77 without a GPU)
#        bash scripts/gpu-check.sh --pack BUILD [DEST] pack a CUDA build made here for a GPU
#                                                    machine without -dev packages
# BUILD: a build directory configured with -DVD_CUDA=ON (built, or configured and built here
# when missing; default build-gpu in the repository), or a DEST/vdvae-gpu-build.tar.xz from
# --pack, unpacked and relocated to this checkout. The whole check keeps to GPU_CHECK_SECONDS
# (default 450: 8 minutes with room for start-up) by giving each part a timeout out of what is
# left; a part that no longer fits is reported skipped. Logs: GPU_CHECK_LOGS (default a new
# temporary directory), named at the end. PyTorch: the first of $VD_PYTHON, python3 that imports
# torch. cuDNN and cuBLAS: the ones beside PyTorch (its nvidia-* wheels), else the system's.
set -u
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
EXIT_SKIP=77
PACK_NAME=vdvae-gpu-build.tar.xz

die() { echo "gpu-check: $*" >&2; exit 1; }

# ---- --pack: what a GPU machine without this machine's -dev packages needs to run a build ----
# The CLI, the executables of the tests labelled gpu, the ctest files, and every shared library
# they load except the C/C++ runtime and the GPU's own (driver, CUDA, cuDNN, cuBLAS, NCCL: taken
# from the GPU machine). There only the libraries it lacks are used (see use_carried_libs).
is_base_lib() {
  case "$(basename "$1")" in
    ld-linux*|libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|libresolv.so*|libutil.so*|\
    libstdc++.so*|libgcc_s.so*|libcuda.so*|libcudnn*|libcublas*|libnccl*|libnvidia*|libnvrtc*|linux-vdso*) return 0 ;;
  esac
  return 1
}

pack() {
  local build=${1:-} dest=${2:-$REPO/.gpu-carry}
  [ -n "$build" ] && [ -x "$build/vdvae" ] || die "--pack: '$build' holds no built vdvae"
  build=$(cd "$build" && pwd)
  grep -q '^VD_CUDA:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null ||
    die "--pack: $build is not configured with -DVD_CUDA=ON"
  local src stage exes tests t lib
  src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt")
  stage=$(mktemp -d) && mkdir -p "$stage/build/lib" || die "no temporary directory"
  # the executables of the gpu-labelled tests (ctest's own listing, so new ones come along)
  tests=$(ctest --test-dir "$build" -N -L '^gpu$' --show-only=json-v1 2>/dev/null | python3 -c '
import json, sys
for t in json.load(sys.stdin).get("tests", []):
    print(t["command"][0])' | sort -u) || die "--pack: cannot list the gpu tests of $build"
  exes="$build/vdvae"
  for t in $tests; do
    case "$t" in "$build"/*) exes="$exes $t" ;; esac
  done
  for t in $exes; do
    mkdir -p "$stage/build/$(dirname "${t#"$build"/}")"
    cp -p "$t" "$stage/build/${t#"$build"/}"
    for lib in $(ldd "$t" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'); do
      is_base_lib "$lib" || cp -nL "$lib" "$stage/build/lib/"
    done
  done
  (cd "$build" && find . -name CTestTestfile.cmake) | while read -r t; do
    mkdir -p "$stage/build/$(dirname "$t")" && cp "$build/$t" "$stage/build/$t"
  done
  cp "$build/CMakeCache.txt" "$stage/build/"
  printf 'build_dir=%s\nsource_dir=%s\n' "$build" "$src" >"$stage/build/PACKED"
  # xz: half gzip's size on the large libraries (oneDNN, ICU's data), for a 64 MiB carry
  mkdir -p "$dest" && XZ_OPT="-6 -T0" tar cJf "$dest/$PACK_NAME" -C "$stage" build || die "--pack: tar failed"
  echo "packed $(echo $exes | wc -w) executables and $(find "$stage/build/lib" -type f | wc -l) libraries:"
  rm -rf "$stage"
  echo "  $dest/$PACK_NAME ($(du -h "$dest/$PACK_NAME" | cut -f1))"
  echo "on the GPU machine: bash scripts/gpu-check.sh ${dest#"$REPO"/}/$PACK_NAME"
}

if [ "${1:-}" = --pack ]; then
  shift
  pack "$@"
  exit 0
fi
case "${1:-}" in -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;; esac

# ---- a GPU, first: nothing else is worth doing without one ------------------------------------
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
  echo "gpu-check: no NVIDIA GPU here (nvidia-smi finds none): nothing to check, exit $EXIT_SKIP"
  exit $EXIT_SKIP
fi
T0=$SECONDS
TOTAL=${GPU_CHECK_SECONDS:-450}
LOGS=${GPU_CHECK_LOGS:-$(mktemp -d /tmp/gpu-check.XXXXXX)}
mkdir -p "$LOGS" || die "cannot create $LOGS"
WORK=$(mktemp -d /tmp/gpu-check-work.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
FAILED=0
echo "== GPU"
nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader | tee "$LOGS/gpu.txt"
GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader -i 0)
GPU_MIB=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits -i 0 | tr -dc 0-9)
# The share of the GPU's memory a searched batch may fill: the rest is the CUDA context,
# libraries' own allocations and the caching allocator's slack.
MEM_FRACTION=${GPU_CHECK_MEM_FRACTION:-0.88}
echo "vdvae $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '(no git)'), logs in $LOGS"

# A part's timeout: its own cap, or what is left of TOTAL after `reserve` seconds kept for the
# parts after it, but a third of its cap where that much is left (earlier parts come first);
# 0 when under 10 s would be left for it (the part is skipped).
budget() {
  local cap=$1 reserve=$2 left t
  left=$((TOTAL - (SECONDS - T0)))
  t=$((left - reserve))
  [ "$t" -lt $((cap / 3)) ] && t=$((cap / 3))
  [ "$t" -gt "$cap" ] && t=$cap
  [ "$t" -gt "$left" ] && t=$left
  [ "$t" -lt 10 ] && t=0
  echo "$t"
}
# run_timed SECONDS LOG CMD...: the command under a timeout, its output in LOG.
run_timed() {
  local t=$1 log=$2
  shift 2
  timeout --kill-after=5 "$t" "$@" >"$log" 2>&1
  local rc=$?
  [ $rc -eq 124 ] && echo "(timed out after $t s)" >>"$log"
  return $rc
}

# ---- PyTorch, and cuDNN/cuBLAS beside it -------------------------------------------------------
PY=
for p in ${VD_PYTHON:-} python3; do
  if "$p" -c 'import torch' >/dev/null 2>&1; then PY=$p; break; fi
done
LIBDIRS=
if [ -n "$PY" ]; then
  echo "PyTorch: $("$PY" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda, "cuDNN", torch.backends.cudnn.version())') ($(command -v "$PY"))"
  # Every directory of shared libraries in PyTorch's nvidia-* wheels (cuDNN 9 loads its engines
  # and cuBLASLt at run time from beside itself or the loader's path).
  LIBDIRS=$("$PY" -c '
import os, site
import torch
roots = [os.path.dirname(os.path.dirname(torch.__file__))] + site.getsitepackages()
seen = []
for r in roots:
    top = os.path.join(r, "nvidia")
    for d, _, files in os.walk(top):
        if any(".so" in f for f in files) and d not in seen:
            seen.append(d)
print(":".join(seen))' 2>/dev/null)
else
  echo "PyTorch: not found (python3 cannot import torch; set VD_PYTHON): the PyTorch columns stay empty"
fi
[ -d /usr/local/cuda/lib64 ] && LIBDIRS="${LIBDIRS:+$LIBDIRS:}/usr/local/cuda/lib64"
# vdvae's library path; PyTorch runs with the caller's own (TORCH_LD), as it would anywhere
TORCH_LD=${LD_LIBRARY_PATH:-}
export LD_LIBRARY_PATH="${LIBDIRS}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# ---- the build ---------------------------------------------------------------------------------
# Carried builds: the libraries this machine lacks come from the pack's lib/, found by asking the
# loader (ldd) until nothing is missing, so that the machine's own copies are used where present.
use_carried_libs() {
  local b=$1 used=$1/lib-used missing n exe
  mkdir -p "$used"
  export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$used"
  for _ in 1 2 3 4 5 6; do
    missing=$(for exe in "$b/vdvae" $(find "$b/tests" -maxdepth 1 -type f -perm -u+x 2>/dev/null); do
      ldd "$exe" 2>/dev/null | awk '$2 == "=>" && $3 == "not" { print $1 }'; done | sort -u)
    [ -z "$missing" ] && return 0
    n=0
    for lib in $missing; do
      [ -e "$b/lib/$lib" ] && [ ! -e "$used/$lib" ] && ln -s "$b/lib/$lib" "$used/$lib" && n=$((n + 1))
    done
    [ $n -eq 0 ] && break
  done
  echo "gpu-check: libraries missing even with the pack's: $(echo $missing)"
  return 1
}

# A packed build relocated here: its ctest files name the build and source paths of the machine
# that built it.
relocate() {
  local b=$1 old_build old_src
  old_build=$(sed -n 's/^build_dir=//p' "$b/PACKED")
  old_src=$(sed -n 's/^source_dir=//p' "$b/PACKED")
  find "$b" -name CTestTestfile.cmake -print0 | OLD_BUILD=$old_build OLD_SRC=$old_src \
    NEW_BUILD=$b NEW_SRC=$REPO python3 -c '
import os, sys
e = os.environ
for path in sys.stdin.read().split("\0"):
    if not path:
        continue
    text = open(path).read()
    # the longer path first: a build directory inside the source tree keeps its own prefix
    for old, new in sorted(((e["OLD_BUILD"], e["NEW_BUILD"]), (e["OLD_SRC"], e["NEW_SRC"])),
                           key=lambda p: -len(p[0])):
        text = text.replace(old, new)
    open(path, "w").write(text)'
}

BUILD=${1:-$REPO/build-gpu}
BUILD_NOTE=
if [ -f "$BUILD" ]; then
  echo "== build: unpacking $BUILD"
  # GNU tar needs the xz program for this; Python's tarfile does not
  tar xJf "$BUILD" -C "$WORK" 2>/dev/null || python3 -m tarfile -e "$BUILD" "$WORK" ||
    die "cannot unpack $BUILD"
  BUILD=$WORK/build
  relocate "$BUILD" || die "cannot relocate the packed build"
  use_carried_libs "$BUILD" || FAILED=1
  BUILD_NOTE="packed build ($(sed -n 's/^build_dir=//p' "$BUILD/PACKED"))"
else
  t=$(budget 240 265)
  echo "== build: $BUILD (timeout ${t}s)"
  CUDNN_ARGS=()
  if [ ! -e /usr/local/cuda/include/cudnn.h ] && [ -n "$PY" ]; then
    # no cuDNN beside the toolkit: PyTorch's wheel has the headers and libcudnn.so.9
    dn=$("$PY" -c 'import nvidia.cudnn as m; print(list(m.__path__)[0])' 2>/dev/null)
    [ -n "$dn" ] && [ -e "$dn/lib/libcudnn.so.9" ] &&
      CUDNN_ARGS=(-DVD_CUDNN_INCLUDE_DIR="$dn/include" -DVD_CUDNN_LIBRARY="$dn/lib/libcudnn.so.9")
  fi
  if [ ! -e /usr/local/cuda/include/nccl.h ] && [ -n "$PY" ]; then
    # NCCL likewise (the communicator of several ranks: src/dist/comm_nccl.c)
    nc=$("$PY" -c 'import nvidia.nccl as m; print(list(m.__path__)[0])' 2>/dev/null)
    [ -n "$nc" ] && [ -e "$nc/lib/libnccl.so.2" ] &&
      CUDNN_ARGS+=(-DVD_NCCL_INCLUDE_DIR="$nc/include" -DVD_NCCL_LIBRARY="$nc/lib/libnccl.so.2")
  fi
  gen=()
  command -v ninja >/dev/null && [ ! -e "$BUILD/CMakeCache.txt" ] && gen=(-G Ninja)
  # only this GPU's architecture (CMake >= 3.24 knows "native"): a third of the device code
  printf '%s\n' 3.24 "$(cmake --version | awk 'NR == 1 { print $3 }')" | sort -VC &&
    gen+=(-DCMAKE_CUDA_ARCHITECTURES=native)
  [ "$t" -eq 0 ] && die "no time left to build"
  run_timed "$t" "$LOGS/build.log" bash -c '
    cmake -S "$1" -B "$2" "${@:3}" -DCMAKE_BUILD_TYPE=Release -DVD_CUDA=ON &&
      cmake --build "$2" -j"$(nproc)"' _ "$REPO" "$BUILD" "${gen[@]}" "${CUDNN_ARGS[@]}" ||
    { tail -30 "$LOGS/build.log"; die "the build failed (log: $LOGS/build.log)"; }
  BUILD=$(cd "$BUILD" && pwd)
  BUILD_NOTE="built here in $((SECONDS - T0)) s"
fi
VD=$BUILD/vdvae
[ -x "$VD" ] || die "$VD is missing"
echo "vdvae: $BUILD_NOTE; cuDNN: $(ldd "$VD" | awk '/libcudnn.so/ { print $1, $2, $3 }')"
ldd "$VD" | grep -q 'libcudnn.so.9 => /' || { echo "gpu-check: libcudnn.so.9 not found for $VD"; FAILED=1; }
echo "NCCL: $(ldd "$VD" | awk '/libnccl.so/ { print $1, $2, $3 }' | grep . || echo 'not in this build')"
ldd "$VD" | grep -q 'libnccl.so.2 => not' && { echo "gpu-check: libnccl.so.2 not found for $VD"; FAILED=1; }

# ---- the CUDA tests ----------------------------------------------------------------------------
# A test that lacks a tool here (a data set, a Python module) skips: the summary names it and
# why, rather than VD_REQUIRE_ALL failing the check for what the machine has. The tests that run
# python3 get the one with torch (VD_PYTHON, tests/vd_test.h and tests/lib.sh).
t=$(budget 90 235)
CTEST_RESULT="skipped (out of time)"
NCCL_RESULT="skipped (out of time)"
if [ "$t" -gt 0 ]; then
  echo "== ctest -L gpu (timeout ${t}s)"
  run_timed "$t" "$LOGS/ctest.log" env ${PY:+VD_PYTHON="$(command -v "$PY")"} \
    ctest --test-dir "$BUILD" -L '^gpu$' -V --timeout "$t"
  rc=$?
  CTEST_RESULT=$(grep -E 'tests passed|tests failed' "$LOGS/ctest.log" | tail -1)
  [ -n "$CTEST_RESULT" ] || CTEST_RESULT="no result (exit $rc)"
  grep -qE '^No tests were found' "$LOGS/ctest.log" && { CTEST_RESULT="no test has the label gpu"; rc=1; }
  # "3/3 Test #48: cli_train_cuda ....***Skipped" and its output's "48: SKIP: missing ..."
  skipped=$(sed -n 's/.*Test *#\([0-9]*\): \([^ ]*\) .*\*\*\*Skipped.*/\1 \2/p' "$LOGS/ctest.log" |
    while read -r n name; do
      echo "$name ($(grep -m1 "^$n: SKIP: " "$LOGS/ctest.log" | sed "s/^$n: SKIP: //" | cut -c1-100))"
    done)
  [ -n "$skipped" ] && CTEST_RESULT="$CTEST_RESULT; skipped: $(echo "$skipped" | paste -sd';' | sed 's/;/; /g')"
  # nvidia-smi sees a GPU: a test that finds none means the build cannot use it (driver, cuDNN)
  echo "$skipped" | grep -qi 'no CUDA GPU on' && { CTEST_RESULT="$CTEST_RESULT; FAILED: a GPU test found no GPU"; rc=1; }
  # the NCCL path on this machine's one GPU (tests/cli_train_nccl.sh); two ranks need two GPUs
  n=$(sed -n 's/.*Test *#\([0-9]*\): cli_train_nccl .*/\1/p' "$LOGS/ctest.log" | head -1)
  if [ -n "$n" ]; then
    NCCL_RESULT="$(grep -m1 "Test *#$n: cli_train_nccl" "$LOGS/ctest.log" | sed 's/.*\.\.\. *//'): $(grep -m1 "^$n: training loss, without and with NCCL" "$LOGS/ctest.log" | cut -d' ' -f2-)"
  else
    NCCL_RESULT="cli_train_nccl did not run"
  fi
  NCCL_RESULT="$NCCL_RESULT; GPUs here: $(nvidia-smi -L 2>/dev/null | grep -c '^GPU') (two ranks over NCCL need two: tests/mpi_train_nccl.sh)"
  [ $rc -eq 0 ] || { FAILED=1; grep -E '^[0-9]+/[0-9]+ Test|CHECK failed|FAIL' "$LOGS/ctest.log" | tail -30; }
  echo "$CTEST_RESULT"
fi

# ---- the benchmarks ----------------------------------------------------------------------------
# vd_bench NAME BATCH STEPS CAP RESERVE: `vdvae bench` on the GPU; sets VD_S (s/step), VD_MIB
# (peak device memory) and VD_WHY (why there are none).
vd_bench() {
  local name=$1 batch=$2 steps=$3 log="$LOGS/vdvae-$1-b$2.log" t
  t=$(budget "$4" "$5")
  VD_S='' VD_MIB='' VD_WHY=''
  [ "$t" -eq 0 ] && { VD_WHY="out of time"; return 1; }
  echo "vdvae bench $name --batch $batch --steps $steps (timeout ${t}s)"
  run_timed "$t" "$log" "$VD" bench "$REPO/egs/reference/$name.cfg" --backend cuda --batch "$batch" --steps "$steps"
  local rc=$?
  VD_S=$(awk '/^step / { print $2 }' "$log")
  VD_MIB=$(awk '/^peak device memory / { print $4 }' "$log")
  if [ $rc -ne 0 ] || [ -z "$VD_S" ] || [ -z "$VD_MIB" ]; then
    VD_S='' VD_MIB=''
    if [ $rc -eq 124 ]; then VD_WHY="timed out"
    elif grep -qi 'out of memory\|no device memory\|cannot allocate' "$log"; then VD_WHY="out of memory"
    else VD_WHY="failed (exit $rc)"; fi
    sed 's/^/  | /' "$log" | tail -5
    return 1
  fi
  sed -n '/^step \|^peak device\|^loss /s/^/  /p' "$log"
}

# torch_bench NAME CAP RESERVE ARGS...: bench/torch_gpu_bench.py; sets T_S, T_MIB (allocated),
# T_RES_MIB (reserved), T_BATCH (the batch it ran, which --probe picks), T_PROBE (what --probe
# found) and T_WHY.
torch_bench() {
  local name=$1 t json="$LOGS/torch-$1.json" log="$LOGS/torch-$1.log"
  t=$(budget "$2" "$3")
  shift 3
  T_S='' T_MIB='' T_RES_MIB='' T_BATCH='' T_PROBE='' T_WHY=''
  [ -z "$PY" ] && { T_WHY="no PyTorch"; return 1; }
  [ "$t" -eq 0 ] && { T_WHY="out of time"; return 1; }
  echo "torch_gpu_bench.py $name $* (timeout ${t}s)"
  local ld=(-u LD_LIBRARY_PATH)
  [ -n "$TORCH_LD" ] && ld=("LD_LIBRARY_PATH=$TORCH_LD")
  run_timed "$t" "$log" env "${ld[@]}" PYTHONUNBUFFERED=1 "$PY" "$REPO/bench/torch_gpu_bench.py" \
    "$REPO/egs/reference/$name.cfg" --json "$json" "$@"
  local rc=$?
  if [ $rc -ne 0 ] || [ ! -s "$json" ]; then
    case $rc in 124) T_WHY="timed out" ;; 3) T_WHY="out of memory" ;; *) T_WHY="failed (exit $rc)" ;; esac
    sed 's/^/  | /' "$log" | tail -5
    return 1
  fi
  read -r T_S T_MIB T_RES_MIB T_BATCH T_PROBE < <("$PY" -c '
import json, sys
r = json.load(open(sys.argv[1]))
probe = ""
if r.get("probe_per_image_bytes"):
    probe = "PyTorch %.1f MiB per image: fits %d" % (r["probe_per_image_bytes"] / 2**20, r["probe_fit_batch"])
elif "probe_fit_batch" in r:
    probe = "PyTorch out of memory at the larger probe: fits %d" % r["probe_fit_batch"]
print(r["step_seconds"], r["peak_allocated_bytes"] / 2**20, r["peak_reserved_bytes"] / 2**20, r["batch"], probe)' "$json")
  sed -n '/^probe \|^note \|^step \|^peak GPU\|^loss /s/^/  /p' "$log"
}

# vd_fit NAME B1 B2 CAP RESERVE: the largest batch predicted to fit for vdvae, from the peak
# device memory at batches B1 < B2 (a line: the activations grow with the batch); sets VD_FIT
# (0: none found) and VD_FIT_NOTE.
vd_fit() {
  local name=$1 b1=$2 b2=$3 m1 m2
  VD_FIT=0 VD_FIT_NOTE=
  vd_bench "$name" "$b1" 1 "$4" "$5" || { VD_FIT_NOTE="vdvae at batch $b1: $VD_WHY"; return 1; }
  m1=$VD_MIB
  if ! vd_bench "$name" "$b2" 1 "$4" "$5"; then
    VD_FIT=$b1 VD_FIT_NOTE="vdvae at batch $b2: $VD_WHY, so batch $b1"
    return 0
  fi
  m2=$VD_MIB
  VD_FIT=$(awk -v b1="$b1" -v b2="$b2" -v m1="$m1" -v m2="$m2" -v gpu="$GPU_MIB" -v f="$MEM_FRACTION" 'BEGIN {
    per = (m2 - m1) / (b2 - b1); if (per < 1) per = 1
    fit = int((f * gpu - (m1 - per * b1)) / per); print (fit < b2 ? b2 : fit) }')
  VD_FIT_NOTE="vdvae $(awk -v a="$m1" -v b="$m2" -v b1="$b1" -v b2="$b2" 'BEGIN { printf "%.1f", (b - a) / (b2 - b1) }') MiB per image: fits $VD_FIT"
  echo "  $VD_FIT_NOTE"
}

ROWS=()
NOTES=()
# row NAME BATCH: one line of the table from the last vd_bench and torch_bench; why a side has
# no figures goes below the table.
row() {
  ROWS+=("$1|$2|${VD_S:--}|${VD_MIB:--}|${T_S:--}|${T_MIB:--}|${T_RES_MIB:--}")
  [ -n "$VD_S" ] || NOTES+=("$1: vdvae: $VD_WHY")
  [ -n "$T_S" ] || NOTES+=("$1: PyTorch: $T_WHY")
  [ -n "$VD_S" ] && [ -n "$VD_MIB" ] || FAILED=1
}

# Each part's cap and the seconds it leaves for the parts after it (the sum of what they need at
# the least) are the two numbers after its name or arguments.
echo "== cifar10_baseline, batch 32"
vd_bench cifar10_baseline 32 10 45 220
torch_bench cifar10_baseline 75 190 --batch 32 --steps 10 --warmup 2
row cifar10_baseline 32

echo "== vdvae train: egs/cifar10_small.cfg, 20 steps on random 32x32 images"
TRAIN_RESULT="skipped (out of time)"
t=$(budget 45 175)
if [ "$t" -gt 0 ]; then
  # a folder of random PNGs as a custom dataset: the machine has no network for CIFAR-10
  python3 - "$WORK/images" <<'EOF'
import os, random, struct, sys, zlib
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rnd = random.Random(7)
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
for i in range(64):
    raw = b"".join(b"\0" + rnd.randbytes(32 * 3) for _ in range(32))
    with open(os.path.join(out, f"{i:03d}.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 32, 32, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
EOF
  t0=$SECONDS
  echo "vdvae train (timeout ${t}s)"
  run_timed "$t" "$LOGS/train.log" "$VD" train "$REPO/egs/cifar10_small.cfg" --backend cuda --dir "$WORK/run" \
    --steps 20 --log-every 5 --set "data.dataset_source='custom'" \
    --set "data.train_data_path='$WORK/images'" --set "data.val_data_path='$WORK/images'" \
    --set "data.synthesis_data_path='$WORK/images'"
  rc=$?
  losses=$(awk -F'|' '/^step [0-9]+\// { for (i = 1; i <= NF; i++) if ($i ~ /^ loss /) { split($i, a, " "); print a[2] } }' "$LOGS/train.log" | tr '\n' ' ')
  first=$(echo $losses | awk '{ print $1 }') last=$(echo $losses | awk '{ print $NF }')
  if [ $rc -eq 0 ] && grep -q '^step 20/' "$LOGS/train.log" && grep -q 'checkpoint-0000000020' "$LOGS/train.log" &&
     awk -v a="$first" -v b="$last" 'BEGIN { exit !(a == a + 0 && b == b + 0 && b < a) }'; then
    TRAIN_RESULT="20 steps in $((SECONDS - t0)) s, loss $first -> $last, checkpoint written"
  else
    TRAIN_RESULT="FAILED (exit $rc; losses: ${losses:-none})"
    FAILED=1
    tail -15 "$LOGS/train.log"
  fi
  echo "$TRAIN_RESULT"
fi

# The largest batch that fits: vdvae's from two short runs (vd_fit), PyTorch's from its own probe
# capped at vdvae's; both then run at the batch PyTorch settles on, so the comparison is at one
# batch. GPU_CHECK_BATCH_<NAME> (e.g. GPU_CHECK_BATCH_imagenet32_baseline=48) fixes it instead.
big_config() {
  local name=$1 b1=$2 b2=$3 steps=$4 fixed_var="GPU_CHECK_BATCH_$1" batch
  batch=${!fixed_var:-}
  echo "== $name, the largest batch that fits (${batch:+fixed: }${batch:-searched})"
  T_S='' T_MIB='' T_RES_MIB='' T_WHY='' VD_S='' VD_MIB='' VD_WHY=''
  if [ -z "$batch" ]; then
    vd_fit "$name" "$b1" "$b2" "$5" "$6"
    if [ "$VD_FIT" -eq 0 ]; then
      VD_WHY=$VD_FIT_NOTE
      torch_bench "$name" "$7" "$8" --probe "$b1,$b2" --mem-fraction "$MEM_FRACTION" --steps "$steps" --warmup 2
      [ -n "$T_PROBE" ] && NOTES+=("$name: largest batch: $T_PROBE")
      row "$name" "${T_BATCH:-?}"
      return
    fi
    torch_bench "$name" "$7" "$8" --probe "$b1,$b2" --max-batch "$VD_FIT" --mem-fraction "$MEM_FRACTION" \
      --steps "$steps" --warmup 2
    batch=${T_BATCH:-$VD_FIT}
    NOTES+=("$name: largest batch: $VD_FIT_NOTE; ${T_PROBE:-PyTorch: $T_WHY}")
  else
    torch_bench "$name" "$7" "$8" --batch "$batch" --steps "$steps" --warmup 2
  fi
  vd_bench "$name" "$batch" "$steps" "$9" "${10}"
  row "$name" "$batch"
}
#          name                   probes  steps  vd probe  torch    vd timed
big_config imagenet32_baseline    8 16    10     25 155    90 115   35 100
big_config ffhq256_8bits_baseline 1 2     3      40 70     120 20   60 0

# ---- the table ---------------------------------------------------------------------------------
{
  echo
  echo "== $GPU_NAME ($GPU_MIB MiB), $BUILD_NOTE, $((SECONDS - T0)) s in all"
  echo "step: median s/step of forward + loss + backward; memory: vdvae's peak device memory"
  echo "(backend allocations) and PyTorch's torch.cuda.max_memory_allocated (reserved in brackets)"
  echo "over the timed steps; ratios vdvae / PyTorch (target for cifar10_baseline b32: <= 0.5 each)"
  printf '%-24s %5s %11s %11s %6s %10s %18s %6s\n' config batch "vdvae s" "torch s" ratio "vdvae MiB" "torch MiB" ratio
  for r in "${ROWS[@]}"; do
    IFS='|' read -r name batch vs vm ts tm tr <<<"$r"
    awk -v n="$name" -v b="$batch" -v vs="$vs" -v vm="$vm" -v ts="$ts" -v tm="$tm" -v tr="$tr" 'BEGIN {
      num = "^[0-9]+([.][0-9]*)?([eE][-+]?[0-9]+)?$"
      tcol = (tm ~ num) ? sprintf("%.0f (%.0f)", tm, tr) : "-"
      rs = (vs ~ num && ts ~ num) ? sprintf("%.2f", vs / ts) : "-"
      rm = (vm ~ num && tm ~ num) ? sprintf("%.2f", vm / tm) : "-"
      printf "%-24s %5s %11s %11s %6s %10s %18s %6s\n", n, b, (vs ~ num) ? sprintf("%.4f", vs) : vs,
        (ts ~ num) ? sprintf("%.4f", ts) : ts, rs, (vm ~ num) ? sprintf("%.0f", vm) : "-", tcol, rm
      if (n == "cifar10_baseline" && rs != "-" && rm != "-")
        printf "  cifar10_baseline b32 targets: time %s, memory %s\n", (vs / ts <= 0.5) ? "met" : "NOT met",
          (vm / tm <= 0.5) ? "met" : "NOT met"
    }'
  done
  for n in "${NOTES[@]}"; do echo "  $n"; done
  echo "ctest -L gpu: $CTEST_RESULT"
  echo "NCCL, one rank (VD_NCCL=1 against none): $NCCL_RESULT"
  echo "train on cuda: $TRAIN_RESULT"
  echo "logs: $LOGS"
} | tee "$LOGS/summary.txt"
exit $FAILED
