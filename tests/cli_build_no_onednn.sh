#!/usr/bin/env bash
# A build without oneDNN (a checkout where scripts/install-deps.sh has not run) configures
# with a warning, builds every target, and has the cpu_ref backend only: asking for cpu says
# why it is missing (exit 2) and the cpu backend's tests report skipped, not a link error.
set -u
src=${VD_SOURCE_DIR:?}; build=${VD_BUILD_DIR:?}
. "$src/tests/lib.sh"

command -v cmake >/dev/null || vd_skip "cmake (Debian: cmake; $VD_HOW)"
out="$build/no-onednn"
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
rm -rf "$out"
# -O0: this checks that everything compiles and links, not speed
cmake -S "$src" -B "$out" "${gen[@]}" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS=-O0 -DVD_WERROR=ON \
  -DVD_BENCH=OFF -DCMAKE_DISABLE_FIND_PACKAGE_dnnl=ON >"$build/no-onednn.configure.log" 2>&1; rc=$?
check "configure exits 0 (rc $rc)" "[ $rc -eq 0 ]"
check "configure warns that oneDNN is missing" "grep -q 'oneDNN >= 3 not found' '$build/no-onednn.configure.log'"
cmake --build "$out" -j 2 >"$build/no-onednn.build.log" 2>&1; rc=$?
check "every target builds and links (rc $rc; $build/no-onednn.build.log)" "[ $rc -eq 0 ]"
[ $rc -eq 0 ] || tail -20 "$build/no-onednn.build.log"

cli="$out/vdvae"
if [ -x "$cli" ]; then
  "$cli" --help >"$out/help.txt" 2>&1
  check "vdvae --help lists cpu_ref only" "grep -q 'Backends (--backend): cpu_ref\.' '$out/help.txt'"
  "$cli" bench "$src/egs/binarized_mnist_small.cfg" --backend cpu --batch 1 --steps 1 >"$out/bench.txt" 2>&1; rc=$?
  check "--backend cpu exits 2 (rc $rc)" "[ $rc -eq 2 ]"
  check "--backend cpu says the build has no oneDNN" "grep -q 'not in this build' '$out/bench.txt' && grep -q oneDNN '$out/bench.txt'"
  "$cli" bench "$src/egs/binarized_mnist_small.cfg" --batch 1 --steps 1 >"$out/bench_ref.txt" 2>&1; rc=$?
  check "the default backend is cpu_ref and runs (rc $rc)" "[ $rc -eq 0 ] && grep -q 'backend cpu_ref' '$out/bench_ref.txt'"
  VD_REQUIRE_ALL= "$out/tests/test_bf16" >"$out/bf16.txt" 2>&1; rc=$?
  check "the cpu backend's test reports skipped (rc $rc)" "[ $rc -eq 77 ]"
fi
finish cli_build_no_onednn
