#!/usr/bin/env bash
# vdvae eval and vdvae synth --mode reconstruction count every test image: Fashion-MNIST's test
# half is 5000 images, not a multiple of the batch (32; synthesis 256), so the last batch runs
# partial; --drop-last keeps the reference's whole batches (4992; 4864). Both NELBOs are finite
# and close, and validation during training still takes whole batches. Uses Debian's
# Fashion-MNIST (dataset-fashion-mnist).
set -u
cli=${VD_CLI:?}; src=${VD_SOURCE_DIR:?}
. "$src/tests/lib.sh"
need_fashion_mnist
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# a number of a one-line JSON file: num FILE KEY
num() { grep -o "\"$2\": [^,}]*" "$1" 2>/dev/null | head -1 | sed 's/^[^:]*: //'; }
# a and b are finite positive numbers within 1% of each other
close() {
  [[ $1 =~ ^[0-9.]+(e[-+][0-9]+)?$ && $2 =~ ^[0-9.]+(e[-+][0-9]+)?$ ]] &&
    awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && b > 0 && d < 0.01 * b) }'
}

cfg="$src/egs/fashion_mnist.cfg"
# 8-channel blocks put 5000 images through the model in seconds; one thread, since the counts
# are the point and a second thread only waits when tests run side by side
small=(--set model.input_conv_filters=8 --set "model.up_filters=[8]*6" --set "model.up_skip_filters=[8]*6"
       --set "model.down_filters=[8]*6" --set "model.down_latent_variates=[4]*6" --set model.num_output_mixtures=2)
"$cli" train "$cfg" --dir "$tmp" --steps 2 "${small[@]}" --set train.batch_size=32 \
  --set val.n_samples_for_validation=40 --set train.checkpoint_and_eval_interval_in_steps=2 --threads 1 \
  >"$tmp/train.out" 2>&1; rc=$?
check "tiny training run exits 0 (rc $rc)" "[ $rc -eq 0 ]"
check "validation during training keeps whole batches: 32 of n_samples_for_validation = 40" \
  "grep -q 'validation at step 2 (32 images' '$tmp/train.out'"

# vdvae eval: every image by default, whole batches with --drop-last
"$cli" eval "$cfg" --dir "$tmp" --threads 1 --json "$tmp/all.json" >"$tmp/all.out" 2>&1; rc1=$?
"$cli" eval "$cfg" --dir "$tmp" --threads 1 --json "$tmp/whole.json" --drop-last >"$tmp/whole.out" 2>&1; rc2=$?
check "eval exits 0 with and without --drop-last (rc $rc1, $rc2)" "[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]"
n1=$(num "$tmp/all.json" images); n2=$(num "$tmp/whole.json" images)
check "eval counts every test image: 5000 (got $n1)" "[ '$n1' = 5000 ]"
check "and prints it" "grep -q 'test at step 2 (5000 images' '$tmp/all.out'"
check "eval --drop-last counts whole batches of 32: 4992 (got $n2)" "[ '$n2' = 4992 ]"
check "and prints it" "grep -q 'test at step 2 (4992 images' '$tmp/whole.out'"
check "the JSON says which" "[ '$(num "$tmp/all.json" drop_last)' = false ] && [ '$(num "$tmp/whole.json" drop_last)' = true ]"
e1=$(num "$tmp/all.json" nelbo); e2=$(num "$tmp/whole.json" nelbo)
check "eval NELBO over 5000 images ($e1) and over 4992 ($e2): finite and within 1%" "close '$e1' '$e2'"
check "and not the same figure (8 more images)" "[ '$e1' != '$e2' ]"

# vdvae synth --mode reconstruction: the same, in batches of 256 (5000 = 19 x 256 + 136)
syn=(--dir "$tmp" --quiet --threads 1 --mode reconstruction --set synthesis.batch_size=256)
"$cli" synth "$cfg" "${syn[@]}" --out "$tmp/r_all"; rc1=$?
"$cli" synth "$cfg" "${syn[@]}" --out "$tmp/r_whole" --drop-last; rc2=$?
check "reconstruction exits 0 with and without --drop-last (rc $rc1, $rc2)" "[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]"
n1=$(num "$tmp/r_all/summary.json" images); n2=$(num "$tmp/r_whole/summary.json" images)
check "reconstruction counts every test image: 5000 (got $n1)" "[ '$n1' = 5000 ]"
check "reconstruction --drop-last: 4864 (got $n2)" "[ '$n2' = 4864 ]"
p1=$(ls "$tmp/r_all" | grep -c '^image-'); p2=$(ls "$tmp/r_whole" | grep -c '^image-')
check "one PNG per image ($p1, $p2), the last image-4999.png" \
  "[ $p1 -eq 5000 ] && [ $p2 -eq 4864 ] && [ -f '$tmp/r_all/image-4999.png' ]"
r1=$(num "$tmp/r_all/summary.json" nelbo); r2=$(num "$tmp/r_whole/summary.json" nelbo)
check "reconstruction NELBO over 5000 ($r1) and 4864 images ($r2): finite and within 1%" "close '$r1' '$r2'"
check "reconstruction NELBO ($r1) within 1% of eval's ($e1)" "close '$r1' '$e1'"

echo "cli_eval_all: eval NELBO $e1 (5000 images), $e2 (4992, --drop-last); reconstruction $r1 (5000), $r2 (4864)"
finish cli_eval_all
