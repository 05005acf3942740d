#!/usr/bin/env bash
# Installs everything vdvae needs to build and test: the Debian packages (only the missing ones)
# and oneDNN >= 3 (a system copy when one exists, else Intel's PyPI wheels in third_party/onednn).
# Idempotent: a second run installs nothing. CUDA is optional and only detected; OpenMPI, which
# the data-parallel tests (make mpi, ctest -L mpi) need, is installed with the rest.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ONEDNN_PREFIX="$REPO/third_party/onednn"

# THE list of Debian packages. clang builds the libFuzzer targets and sanitizer runs: its runtime
# libraries (libclang-rt-dev) and OpenMP (libomp-dev) are only Recommends, so they are named here.
PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  python3 python3-pip
  zlib1g-dev libpng-dev libturbojpeg0-dev libzip-dev libcjson-dev libcurl4-openssl-dev
  libssl-dev libarchive-dev
  liblapack-dev  # FID's statistics and Frechet distance (src/fid/): BLAS and LAPACK
  clang libclang-rt-dev libomp-dev
  # tests: the PyTorch twin of the model, numpy/Pillow cross-checks, and the demo's data
  python3-venv python3-torch python3-numpy python3-pil
  python3-torchvision  # pytorch-fid's InceptionV3 is built on it (tests/test_inception.c)
  python3-scipy python3-tqdm  # pytorch-fid's Frechet distance, torch-fidelity's imports (tests/fid_*)
  dataset-fashion-mnist
  # data parallelism (VD_MPI=ON): OpenMPI's library and mpirun, for make mpi and ctest -L mpi
  libopenmpi-dev openmpi-bin
)

# Intel's oneDNN 3.2 wheels built against GNU OpenMP: libdnnl.so.3 needs only libgomp and
# libstdc++. The newer `onednn` wheels need SYCL/TBB/Intel runtimes, so they are not used.
ONEDNN_VERSION=2023.2.0
ONEDNN_WHEELS=(
  "onednn-cpu-gomp==$ONEDNN_VERSION --hash=sha256:2f22a54d6a890ed14bfa185d42a4be65d8b5b1df85dc1f0f3a9abe31620416fb"
  "onednn-devel-cpu-gomp==$ONEDNN_VERSION --hash=sha256:9763c69e8c907e119056bd52ad918ca84ac9ba939d130a99dfa95ccca3e5e284"
)

usage() {
  cat <<EOF
usage: scripts/install-deps.sh [--with-mpi] [--no-apt] [--reinstall-onednn]
  --with-mpi           (kept for old scripts: OpenMPI is now installed by default)
  --no-apt             do not touch Debian packages; only provision oneDNN
  --reinstall-onednn   download and unpack the oneDNN wheels even if $ONEDNN_PREFIX exists
EOF
}

NO_APT=0 REINSTALL=0
while (($#)); do
  case "$1" in
    --with-mpi) ;;  # OpenMPI is in PACKAGES now
    --no-apt) NO_APT=1 ;;
    --reinstall-onednn) REINSTALL=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-deps: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

CLEANUP=()
cleanup() { ((${#CLEANUP[@]} == 0)) || rm -rf "${CLEANUP[@]}"; }
trap cleanup EXIT

log() { printf 'install-deps: %s\n' "$*"; }
die() { printf 'install-deps: error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root or sudo to run: $*"
  fi
}

is_installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

APT_SUMMARY="skipped (--no-apt)"
install_packages() {
  command -v dpkg-query >/dev/null || die "not a Debian-based system (no dpkg-query); install by hand: ${PACKAGES[*]}"
  local wanted=("${PACKAGES[@]}") missing=() p
  for p in "${wanted[@]}"; do is_installed "$p" || missing+=("$p"); done
  if ((${#missing[@]} == 0)); then
    APT_SUMMARY="all ${#wanted[@]} packages already installed"
    return
  fi
  log "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  APT_SUMMARY="installed ${missing[*]}"
}

# Asks CMake itself, so "found" means exactly what our build's find_package(dnnl 3) will see.
system_onednn() {
  command -v cmake >/dev/null || return 1
  local dir; dir="$(mktemp -d)"
  cat >"$dir/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.18)
project(probe NONE)
find_package(dnnl 3 CONFIG QUIET)
if(dnnl_FOUND)
  file(WRITE "${CMAKE_BINARY_DIR}/found" "${dnnl_VERSION} ${dnnl_DIR}")
endif()
EOF
  cmake -S "$dir" -B "$dir/build" >/dev/null 2>&1 || true
  local found=""
  [[ -f "$dir/build/found" ]] && found="$(cat "$dir/build/found")"
  rm -rf "$dir"
  [[ -n "$found" ]] && echo "$found"
}

local_onednn_ok() {
  [[ -e "$ONEDNN_PREFIX/lib/libdnnl.so.3" && -f "$ONEDNN_PREFIX/include/oneapi/dnnl/dnnl.h" \
     && -f "$ONEDNN_PREFIX/lib/cmake/dnnl/dnnl-config.cmake" ]]
}

# Wheels are zip files: their payload sits in <name>.data/data/{lib,include,share}. Zip has no
# symlinks, so the three copies of the library become one file and two links (saves ~110 MB).
unpack_wheels() {
  local dl="$1" stage="$2" whl data
  for whl in "$dl"/*.whl; do
    python3 -m zipfile -e "$whl" "$stage/unzip"
    for data in "$stage"/unzip/*.data/data; do cp -a "$data"/. "$stage/prefix"/; done
    rm -rf "$stage/unzip"
  done
  local lib="$stage/prefix/lib" real
  real="$(compgen -G "$lib/libdnnl.so.3.*" | head -n1 || true)"
  [[ -n "$real" ]] || die "the oneDNN wheel has no libdnnl.so.3.*"
  real="${real##*/}"
  ln -sf "$real" "$lib/libdnnl.so.3"
  ln -sf libdnnl.so.3 "$lib/libdnnl.so"
  # The wheel's target file asks for policies of CMake 2.6, which CMake >= 4 refuses.
  sed -i 's/^cmake_policy(VERSION 2\.6)$/cmake_policy(VERSION 2.6...3.25)/' \
    "$stage/prefix/lib/cmake/dnnl/dnnl-targets.cmake"
  grep -q '_IMPORT_PREFIX}/lib/libdnnl.so' "$stage/prefix/lib/cmake/dnnl/dnnl-targets-release.cmake" \
    || die "unexpected dnnl-targets-release.cmake: library path is not relative to the prefix"
}

download_onednn() {
  [[ "$(uname -m)" == x86_64 ]] || { ONEDNN_SUMMARY="none: Intel's wheels are x86_64 only ($(uname -m))"; return; }
  python3 -m pip --version >/dev/null 2>&1 || die "python3 -m pip is missing (Debian: python3-pip)"
  local tmp; tmp="$(mktemp -d)"
  CLEANUP+=("$tmp")
  printf '%s\n' "${ONEDNN_WHEELS[@]}" >"$tmp/requirements.txt"
  log "downloading oneDNN $ONEDNN_VERSION wheels from PyPI"
  python3 -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
    -r "$tmp/requirements.txt" -d "$tmp/dl"
  mkdir -p "$tmp/prefix" "$REPO/third_party"
  unpack_wheels "$tmp/dl" "$tmp"
  # Swap in the new prefix only once it is complete, so an interrupted run leaves no half install.
  rm -rf "$ONEDNN_PREFIX.old"
  [[ -e "$ONEDNN_PREFIX" ]] && mv "$ONEDNN_PREFIX" "$ONEDNN_PREFIX.old"
  mv "$tmp/prefix" "$ONEDNN_PREFIX"
  rm -rf "$ONEDNN_PREFIX.old"
  ONEDNN_SUMMARY="$ONEDNN_VERSION wheels unpacked into $ONEDNN_PREFIX"
}

ONEDNN_SUMMARY=""
provision_onednn() {
  local sys
  if ((!REINSTALL)) && local_onednn_ok; then
    ONEDNN_SUMMARY="project-local, already in $ONEDNN_PREFIX"
  elif ((!REINSTALL)) && sys="$(system_onednn)"; then
    ONEDNN_SUMMARY="system oneDNN ${sys% *} (${sys#* })"
  else
    download_onednn
  fi
}

# Python readers the tests use that Debian does not package (TensorBoard's event reader, the
# safetensors package): a project venv on top of Debian's python3, so torch, numpy and Pillow
# come from Debian. CTest puts its bin/ first on PATH.
VENV="$REPO/third_party/venv"
VENV_PACKAGES=(tensorboard safetensors)
# pytorch-fid's and torch-fidelity's own code alone (--no-deps): they run on Debian's torch,
# torchvision and scipy; the FID tests compare ours with pytorch-fid's InceptionV3 and Frechet
# distance and with torch-fidelity's Inception Score.
VENV_NODEPS_PACKAGES=(pytorch-fid==0.3.0 torch-fidelity==0.4.0)
VENV_SUMMARY=""
provision_venv() {
  local py=/usr/bin/python3
  [[ -x $py ]] || py="$(command -v python3)"
  if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c "import tensorboard, safetensors, pytorch_fid, torch_fidelity" 2>/dev/null; then
    VENV_SUMMARY="ready in $VENV"
    return
  fi
  "$py" -m venv --system-site-packages "$VENV" || die "cannot create $VENV (Debian: python3-venv)"
  log "installing ${VENV_PACKAGES[*]} into $VENV"
  "$VENV/bin/python" -m pip install --quiet "${VENV_PACKAGES[@]}" || die "pip install ${VENV_PACKAGES[*]} failed"
  "$VENV/bin/python" -m pip install --quiet --no-deps "${VENV_NODEPS_PACKAGES[@]}" \
    || die "pip install --no-deps ${VENV_NODEPS_PACKAGES[*]} failed"
  VENV_SUMMARY="${VENV_PACKAGES[*]} ${VENV_NODEPS_PACKAGES[*]} installed into $VENV"
}

detect_optional() {
  local nvcc=/usr/local/cuda/bin/nvcc
  if [[ -x $nvcc ]]; then
    CUDA_SUMMARY="$("$nvcc" --version | sed -n 's/.*release \([0-9.]*\).*/CUDA \1/p') at /usr/local/cuda"
    command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1 \
      && CUDA_SUMMARY+=", GPU present" || CUDA_SUMMARY+=", no GPU here (builds only)"
  else
    CUDA_SUMMARY="not found (optional; CPU build only)"
  fi
  if command -v mpicc >/dev/null; then MPI_SUMMARY="$(mpicc --showme:version 2>/dev/null || echo present)"
  else MPI_SUMMARY="not installed"
  fi
}

((NO_APT)) || install_packages
provision_onednn
provision_venv
detect_optional

cat <<EOF
install-deps: summary
  packages : $APT_SUMMARY
  oneDNN   : $ONEDNN_SUMMARY
  python   : $VENV_SUMMARY
  CUDA     : $CUDA_SUMMARY
  MPI      : $MPI_SUMMARY
next: cmake -S "$REPO" -B "$REPO/build" -G Ninja && ninja -C "$REPO/build" && ctest --test-dir "$REPO/build"
EOF
