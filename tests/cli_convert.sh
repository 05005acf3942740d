#!/usr/bin/env bash
# tools/convert_checkpoint.py as a user runs it: a reference-layout checkpoint (the twin after
# two Adamax steps) becomes a run that `vdvae eval` and `vdvae train` accept; converting back
# gives the same bits and loads strictly into the twin; another config's checkpoint is refused
# naming the first tensor that differs. Needs python3 with torch, numpy and Pillow.
set -u
cli=${VD_CLI:?}; src=${VD_SOURCE_DIR:?}
. "$src/tests/lib.sh"
need_python_module torch numpy PIL
py=$vd_python
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
conv="$py $src/tools/convert_checkpoint.py"

# tiny_rgb's model on a folder of eight 16x16 PNGs (the data source does not enter the hash)
mkdir -p "$tmp/img"
"$py" - "$tmp/img" <<'EOF'
import sys, numpy as np
from PIL import Image
rng = np.random.default_rng(0)
for i in range(8):
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(f"{sys.argv[1]}/{i:02d}.png")
EOF
sed -e "s|^dataset_source = .*|dataset_source = 'custom'\ntrain_data_path = '$tmp/img'\nval_data_path = '$tmp/img'\nsynthesis_data_path = '$tmp/img'|" \
    -e 's/^name = .*/name = converted/' "$src/tests/reference/configs/tiny_rgb.cfg" >"$tmp/run.cfg"
printf '\n[val]\nbatch_size = 4\nn_samples_for_validation = 8\n\n[synthesis]\nbatch_size = 4\n' >>"$tmp/run.cfg"

"$py" "$src/tests/reference/make_ref_checkpoint.py" "$tmp/run.cfg" "$tmp/ref.pt" --steps 2; rc=$?
check "twin writes a reference checkpoint" "[ $rc -eq 0 ] && [ -s '$tmp/ref.pt' ]"

# (1) a reference run becomes one of ours
$conv ref2vdvae "$tmp/ref.pt" --config "$tmp/run.cfg" --run-dir "$tmp/run" >"$tmp/out" 2>&1; rc=$?
check "ref2vdvae --run-dir exits 0 ($(tail -1 "$tmp/out"))" "[ $rc -eq 0 ]"
check "run dir has the config" "[ -f '$tmp/run/logs-converted/hparams-converted.cfg' ]"
check "run dir has checkpoint-0000000002" "[ -f '$tmp/run/checkpoints-converted/checkpoint-0000000002.safetensors' ]"
"$cli" eval "$tmp/run.cfg" --dir "$tmp/run" --quiet >"$tmp/eval" 2>&1; rc=$?
check "vdvae eval accepts the converted run ($(tail -1 "$tmp/eval"))" "[ $rc -eq 0 ] && grep -q '\"step\": 2' '$tmp/run/logs-converted/eval-test.json'"
"$cli" train "$tmp/run.cfg" --dir "$tmp/run" --steps 1 --quiet >"$tmp/train" 2>&1; rc=$?
check "vdvae train resumes the converted run ($(tail -1 "$tmp/train"))" "[ $rc -eq 0 ] && [ -f '$tmp/run/checkpoints-converted/checkpoint-0000000003.safetensors' ]"

# (3) back to the reference layout: the same bits, and the twin loads it strictly
ours="$tmp/run/checkpoints-converted/checkpoint-0000000002.safetensors"
$conv vdvae2ref "$ours" "$tmp/back.pt" --config "$tmp/run.cfg" >"$tmp/out" 2>&1; rc=$?
check "vdvae2ref exits 0 ($(tail -1 "$tmp/out"))" "[ $rc -eq 0 ]"
"$py" - "$src" "$tmp/run.cfg" "$tmp/ref.pt" "$tmp/back.pt" >"$tmp/cmp" 2>&1 <<'EOF'
import sys, torch
sys.path.insert(0, sys.argv[1] + "/tests/reference")
import vdvae_twin as twin
a, b = torch.load(sys.argv[3]), torch.load(sys.argv[4])
assert a["global_step"] == b["global_step"], (a["global_step"], b["global_step"])
for k in ("model_state_dict", "ema_model_state_dict"):
    assert list(a[k]) == list(b[k]), k
    for n in a[k]:
        assert torch.equal(a[k][n], b[k][n]), (k, n)
sa, sb = a["optimizer_state_dict"]["state"], b["optimizer_state_dict"]["state"]
assert sorted(sa) == sorted(sb), "optimizer state keys differ"
for i in sa:
    assert int(sa[i]["step"]) == int(sb[i]["step"]), i
    for k in ("exp_avg", "exp_inf"):
        assert torch.equal(sa[i][k], sb[i][k]), (i, k)
m = twin.VDVAE(twin.load_config(sys.argv[2]))
m.load_state_dict(b["model_state_dict"], strict=True)
m.load_state_dict(b["ema_model_state_dict"], strict=True)
opt = torch.optim.Adamax(m.parameters())
opt.load_state_dict(b["optimizer_state_dict"])
print(f"identical: {len(a['model_state_dict'])} tensors x 2, {len(sa)} optimizer states")
EOF
rc=$?
check "round trip is bitwise identical and loads strictly ($(tail -1 "$tmp/cmp"))" "[ $rc -eq 0 ]"

# bad inputs: another config's checkpoint; a config that is not the checkpoint's
sed -e 's/^up_filters = .*/up_filters = [24, 32, 16, 16]/' "$tmp/run.cfg" >"$tmp/other.cfg"
$conv ref2vdvae "$tmp/ref.pt" "$tmp/x.safetensors" --config "$tmp/other.cfg" >"$tmp/out" 2>&1; rc=$?
check "another config's checkpoint exits 2 naming the tensor ($(tail -1 "$tmp/out"))" \
      "[ $rc -eq 2 ] && grep -q \"tensor 'bottom_up.levels_up_downsample.2.residual_block.0.convs.1.weight' has shape\" '$tmp/out' && [ ! -e '$tmp/x.safetensors' ]"
$conv vdvae2ref "$ours" "$tmp/x.pt" --config "$tmp/other.cfg" >"$tmp/out" 2>&1; rc=$?
check "vdvae2ref with another config exits 2 ($(tail -1 "$tmp/out"))" "[ $rc -eq 2 ] && grep -q 'different model config' '$tmp/out'"
echo garbage >"$tmp/bad.pt"
$conv ref2vdvae "$tmp/bad.pt" "$tmp/x.safetensors" --config "$tmp/run.cfg" >"$tmp/out" 2>&1; rc=$?
check "a file that is not a checkpoint exits 2 ($(tail -1 "$tmp/out"))" "[ $rc -eq 2 ] && grep -q 'bad.pt' '$tmp/out'"

finish cli_convert
