#!/usr/bin/env bash
# vdvae fid against pytorch-fid 0.3.0 end to end, both on the same random weights of the
# network (tools/fid_weights.py --random; pytorch-fid's weight loader patched): two folders of
# 500 32 x 32 PNGs. Our FID (fid stats of each folder, then fid of the two files) is within
# 1e-3 (relative) of pytorch-fid's on the folders, pytorch-fid reads our statistics files and
# gives the same FID, and our Inception Score of a folder is torch-fidelity's on the logits the
# network gave. Minutes on two cores (1000 images through each network at 299 x 299, and two
# 2048 x 2048 scipy.linalg.sqrtm with reference BLAS): its own ctest entry, run alone. Uses
# torch, torchvision, numpy, scipy, Pillow, pytorch-fid and torch-fidelity.
set -u
cli=${VD_CLI:?}; src=${VD_SOURCE_DIR:?}
. "$src/tests/lib.sh"
need_python_module torch torchvision numpy scipy PIL pytorch_fid torch_fidelity
# the plain-loop backend would take hours over 1000 images at 299 x 299
"$cli" --help | grep -Eq 'Backends \(--backend\):.*\bcpu(,|\.)' || vd_skip "$VD_ONEDNN"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
case="$src/tests/reference/fid_pytorch_case.py"
out="$tmp/out"
num() { awk -v k="$1" '$1 == k { print $2; exit }' "$2"; }
cmpf() { "$vd_python" -c "import math,sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(int($3))" "$1" "$2"; }

"$vd_python" "$src/tools/fid_weights.py" --random 11 "$tmp/w.pth" >/dev/null &&
  "$vd_python" "$src/tools/fid_weights.py" "$tmp/w.pth" "$tmp/w.safetensors" >/dev/null; rc=$?
check "random weights made" "[ $rc -eq 0 ]"
# two sets of smooth colour fields, the second with noise
"$vd_python" "$case" images "$tmp/A" 500 1 0 && "$vd_python" "$case" images "$tmp/B" 500 2 40; rc=$?
check "two folders of 500 images" "[ $rc -eq 0 ] && [ \$(ls '$tmp/A' | wc -l) -eq 500 ] && [ \$(ls '$tmp/B' | wc -l) -eq 500 ]"

t0=$(date +%s)
"$cli" fid stats "$tmp/A" "$tmp/a.npz" --weights "$tmp/w.safetensors" --dump-logits "$tmp/a_logits.npy" -q >"$tmp/a.out" 2>&1 &&
  "$cli" fid stats "$tmp/B" "$tmp/b.npz" --weights "$tmp/w.safetensors" -q >"$tmp/b.out" 2>&1; rc=$?
t1=$(date +%s)
check "fid stats of both folders exit 0 ($(head -c 300 "$tmp/a.out"))" "[ $rc -eq 0 ]"
echo "vdvae fid stats: $(grep '^images/s' "$tmp/a.out"); $(grep '^images/s' "$tmp/b.out")"
"$cli" fid "$tmp/a.npz" "$tmp/b.npz" >"$out" 2>&1; rc=$?
ours=$(num FID: "$out")
check "fid of the two statistics files exits 0 (FID $ours)" "[ $rc -eq 0 ]"

"$vd_python" "$case" fid "$tmp/w.pth" "$tmp/A" "$tmp/B" "$tmp/a.npz" "$tmp/b.npz" "$tmp/pt.txt" >"$tmp/pt.log" 2>&1; rc=$?
t2=$(date +%s)
check "pytorch-fid ran ($(tail -c 300 "$tmp/pt.log"))" "[ $rc -eq 0 ]"
theirs=$(num folders "$tmp/pt.txt"); on_ours=$(num ours "$tmp/pt.txt")
echo "FID: ours $ours, pytorch-fid on the folders $theirs, pytorch-fid on our files $on_ours"
echo "seconds: ours $((t1 - t0)) (network), pytorch-fid $((t2 - t1)) (network and two distances)"
check "FID within 1e-3 of pytorch-fid's on the folders ($ours, $theirs)" \
  "[ \$(cmpf '${ours:-nan}' '${theirs:-nan}' 'abs(a - b) <= 1e-3 * abs(b) and b > 0') = 1 ]"
check "pytorch-fid on our files gives the same FID ($on_ours, ours $ours, its own $theirs)" \
  "[ \$(cmpf '${on_ours:-nan}' '${ours:-nan}' 'abs(a - b) <= 1e-3 * abs(b)') = 1 ] &&
   [ \$(cmpf '${on_ours:-nan}' '${theirs:-nan}' 'abs(a - b) <= 1e-3 * abs(b)') = 1 ]"

# the Inception Score of A against torch-fidelity's formula on the same logits
"$vd_python" "$src/tests/reference/fid_stats_case.py" isc "$tmp/a_logits.npy" 10 "$tmp/isc.txt"; rc=$?
read -r t_mean t_std <"$tmp/isc.txt" 2>/dev/null
is=$(awk '/^IS: / { print $2, $4; exit }' "$tmp/a.out")
check "IS ($is) within 1e-4 of torch-fidelity's ($t_mean $t_std) on the same logits" \
  "[ $rc -eq 0 ] && [ \$(cmpf '${is%% *}' '${t_mean:-nan}' 'abs(a - b) <= 1e-4 * b') = 1 ] &&
   [ \$(cmpf '${is##* }' '${t_std:-nan}' 'abs(a - b) <= 1e-4 * b + 1e-12') = 1 ]"
finish cli_fid_pytorch
