#!/usr/bin/env bash
# tools/convert_checkpoint.py under a python3 without numpy or torch (-S: no site-packages) says
# what it needs and how to get it, and exits 2: no traceback.
set -u
src=${VD_SOURCE_DIR:?}
. "$src/tests/lib.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

py=$(command -v python3) || vd_skip "python3 (Debian: python3; $VD_HOW)"
"$py" -S -c 'import numpy' >/dev/null 2>&1 && vd_skip "a python3 -S without numpy (this one finds numpy without site-packages)"
"$py" -S "$src/tools/convert_checkpoint.py" ref2vdvae "$tmp/in.pt" "$tmp/out" --config "$src/egs/fashion_mnist.cfg" \
  >"$tmp/out.txt" 2>&1; rc=$?
cat "$tmp/out.txt"
check "exits 2 (rc $rc)" "[ $rc -eq 2 ]"
check "no traceback" "! grep -q Traceback '$tmp/out.txt'"
check "names what is missing" "grep -q 'numpy' '$tmp/out.txt' && grep -q 'torch' '$tmp/out.txt'"
check "says how to get it" "grep -q 'scripts/install-deps.sh' '$tmp/out.txt'"
finish cli_convert_deps
