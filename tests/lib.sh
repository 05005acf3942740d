# Sourced by the cli_*.sh tests: the shell twin of the optional-tool helpers in tests/vd_test.h.
# A missing tool skips the test (exit 77), or fails it under VD_REQUIRE_ALL=1 (CI, after
# scripts/install-deps.sh has installed everything); skip_hardware skips even then.

VD_HOW="scripts/install-deps.sh installs it"
VD_FASHION_MNIST_DIR=/usr/share/datasets/fashion-mnist
VD_ONEDNN="oneDNN 3, the cpu backend (the build found none; $VD_HOW into third_party/onednn, then reconfigure)"
# the python3 the tests run: $VD_PYTHON, else python3 on PATH (ctest puts the project venv first)
vd_python=${VD_PYTHON:-python3}

require_all() { [ -n "${VD_REQUIRE_ALL:-}" ] && [ "${VD_REQUIRE_ALL}" != 0 ]; }

# vd_skip WHAT: WHAT is missing; exits 77, or 1 with VD_REQUIRE_ALL=1.
vd_skip() {
  if require_all; then echo "VD_REQUIRE_ALL=1: missing $1" >&2; exit 1; fi
  echo "SKIP: missing $1"
  exit 77
}

# skip_hardware WHAT: hardware this machine lacks (a GPU; ctest label "gpu"): always 77.
skip_hardware() {
  echo "SKIP: no $1 on this machine (hardware: skipped even with VD_REQUIRE_ALL=1)"
  exit 77
}

# need_python_module M...: $vd_python imports every M, or the test skips naming the first missing one.
need_python_module() {
  "$vd_python" -c '' >/dev/null 2>&1 || vd_skip "$vd_python (Debian: python3; $VD_HOW)"
  local m how
  for m; do
    "$vd_python" -c "import $m" >/dev/null 2>&1 && continue
    case $m in
      torch) how="Debian: python3-torch" ;;
      numpy) how="Debian: python3-numpy" ;;
      PIL) how="Debian: python3-pil" ;;
      tensorboard | safetensors) how="PyPI: $m, in third_party/venv" ;;
      pytorch_fid | torch_fidelity) how="PyPI: ${m/_/-}, in third_party/venv" ;;
      scipy) how="Debian: python3-scipy" ;;
      *) how="" ;;
    esac
    vd_skip "python module $m for $vd_python ($how; $VD_HOW)"
  done
}

# need_file PATH WHAT: PATH is readable, or the test skips naming WHAT.
need_file() { [ -r "$1" ] || vd_skip "$2"; }

need_fashion_mnist() {
  local what="Fashion-MNIST in $VD_FASHION_MNIST_DIR (Debian: dataset-fashion-mnist; $VD_HOW)"
  need_file "$VD_FASHION_MNIST_DIR/train-images-idx3-ubyte.gz" "$what"
  need_file "$VD_FASHION_MNIST_DIR/t10k-images-idx3-ubyte.gz" "$what"
}

# check NAME CONDITION: evaluates CONDITION; a pass is counted, a failure printed and counted.
# finish NAME: the counts, and the exit status (non-zero when anything failed).
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); echo "ok: $1"; else echo "FAIL: $1"; fail=$((fail+1)); fi; }
finish() { echo "$1: $pass passed, $fail failed"; [ $fail -eq 0 ]; }

# need_mpirun: OpenMPI's launcher for the data-parallel tests (tests/mpi_*.sh), or a skip.
need_mpirun() {
  command -v mpirun >/dev/null 2>&1 || vd_skip "mpirun (Debian: openmpi-bin; $VD_HOW)"
}

# vd_mpirun ARGS...: mpirun on this machine for tests: more ranks than cores allowed, as root too
# (OpenMPI refuses root without these), shared memory without the cross-process copies that
# containers which restrict ptrace refuse.
vd_mpirun() {
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none \
    mpirun --oversubscribe "$@"
}

# loss_difference DIR_A DIR_B: the training losses of two runs side by side (the train entries
# of their metrics.jsonl); prints "N WORST": how many steps both logged and the worst relative
# difference of A against B (0 when none).
loss_difference() {
  local a b
  a=$(grep '"split": "train"' "$1"/logs-*/metrics.jsonl | sed 's/.*"loss": \([0-9.eE+-]*\).*/\1/')
  b=$(grep '"split": "train"' "$2"/logs-*/metrics.jsonl | sed 's/.*"loss": \([0-9.eE+-]*\).*/\1/')
  paste <(echo "$a") <(echo "$b") | awk 'NF == 2 { n++; d = ($1 - $2) / $1; if (d < 0) d = -d; if (d > w) w = d }
    END { printf "%d %.3g\n", n, w + 0 }'
}
