#!/usr/bin/env bash
# vdvae synth encoding/decoding on a run trained for 2 steps: the encodings file loads in numpy
# with the documented layout; decoding an unedited file reproduces the encoder's output layer
# exactly (all variates kept, and half of them); files of another model or malformed exit 2.
# Uses dataset-fashion-mnist.
set -u
cli=${VD_CLI:?}; src=${VD_SOURCE_DIR:?}
. "$src/tests/lib.sh"
need_fashion_mnist
need_python_module numpy
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
py() { "$vd_python" -c "$@"; }
cfg="$src/egs/fashion_mnist.cfg"
logs="$tmp/logs-fashion_mnist"

"$cli" train "$cfg" --dir "$tmp" --steps 2 --set train.batch_size=8 --set val.n_samples_for_validation=8 \
  --threads 2 --quiet; rc=$?
check "tiny training run exits 0" "[ $rc -eq 0 ]"
syn=(--dir "$tmp" --quiet --threads 2 --set synthesis.batch_size=4)

"$cli" synth "$cfg" "${syn[@]}" --mode encoding --limit 6 2>"$tmp/err"; rc=$?
check "encoding without div_stats exits 2 naming div_stats" "[ $rc -eq 2 ] && grep -q div_stats '$tmp/err'"
"$cli" synth "$cfg" "${syn[@]}" --mode div_stats --set synthesis.div_stats_subset_ratio=0.0002; rc=$?
check "div_stats exits 0" "[ $rc -eq 0 ]"

# all variates but the lowest (the reference's strict '>' at quantile 1.0), 6 images: a padded last batch
q1=(--set synthesis.variate_masks_quantile=1.0)
"$cli" synth "$cfg" "${syn[@]}" "${q1[@]}" --mode encoding --limit 6 --dump-logits "$tmp/enc1.npy"; rc=$?
e="$logs/synthesis-encoding/encodings.npz"
check "encoding exits 0" "[ $rc -eq 0 ] && [ -f '$e' ]"
check "encodings.npz: numpy layout, names, meta" "py \"
import json, numpy as np
f = np.load('$e', allow_pickle=False)
meta = json.loads(str(f['meta']))
assert f['meta'].shape == () and set(meta) >= {'config_hash', 'step', 'variate_masks_quantile', 'distribution_base'}, meta
assert list(f['names']) == ['image_%d' % i for i in range(6)], f['names']
n_td = sum(1 for k in f.files if k.startswith('block_')); assert n_td == 10 and len(f.files) == 2 * n_td + 2
kept = 0
for i in range(n_td):
    b, k = f['block_%d' % i], f['kept_%d' % i]
    assert b.dtype == np.float32 and k.dtype == np.int64 and b.ndim == 5 and b.shape[0] == 6 and b.shape[1] == b.shape[2]
    assert b.shape[3] == len(k) and b.shape[4] == 2 and (np.diff(k) > 0).all() and np.isfinite(b).all()
    assert (b[..., 1] > 0).all()
    kept += len(k)
assert kept > 0
\""

"$cli" synth "$cfg" "${syn[@]}" "${q1[@]}" --mode decoding --dump-logits "$tmp/dec1.npy"; rc=$?
d="$logs/synthesis-decoding"
check "decoding exits 0 with a PNG per name and a grid" "[ $rc -eq 0 ] && [ -f '$d/image_5.png' ] && [ -f '$d/grid.png' ]"
same="import numpy as np, sys; a, b = np.load(sys.argv[1]), np.load(sys.argv[2]); assert a.shape == b.shape and a.shape[0] == int(sys.argv[3]), (a.shape, b.shape); assert np.allclose(a, b, rtol=1e-5, atol=1e-5), abs(a - b).max()"
check "decoding reproduces the encoder's logits (quantile 1.0)" "py '$same' '$tmp/enc1.npy' '$tmp/dec1.npy' 6"

# half the variates kept: the dropped ones take the encoder's prior draws again
qh=(--set synthesis.variate_masks_quantile=0.5)
"$cli" synth "$cfg" "${syn[@]}" "${qh[@]}" --mode encoding --limit 5 --out "$tmp/eh" --dump-logits "$tmp/enc5.npy"; rc1=$?
"$cli" synth "$cfg" "${syn[@]}" "${qh[@]}" --mode decoding --input "$tmp/eh/encodings.npz" --out "$tmp/dh" \
  --dump-logits "$tmp/dec5.npy"; rc2=$?
check "quantile 0.5 encode/decode exit 0" "[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]"
check "decoding reproduces the encoder's logits (quantile 0.5)" "py '$same' '$tmp/enc5.npy' '$tmp/dec5.npy' 5"
check "an edited file (float64, moved means) decodes to other logits" "py \"
import numpy as np
f = np.load('$e'); a = {k: f[k] for k in f.files}
a['block_0'] = a['block_0'].astype(np.float64); a['block_0'][..., 0] += 3.0
np.savez('$tmp/edited.npz', **a)\" && \"$cli\" synth '$cfg' ${syn[*]} ${q1[*]} --mode decoding --input '$tmp/edited.npz' \
  --out '$tmp/de' --dump-logits '$tmp/dec_e.npy' && ! py '$same' '$tmp/enc1.npy' '$tmp/dec_e.npy' 6 2>/dev/null"

# refused files
"$cli" synth "$cfg" "${syn[@]}" "${q1[@]}" --mode decoding --input "$tmp/eh/encodings.npz" --out "$tmp/x" 2>"$tmp/err"; rc=$?
check "kept indices of another mask decode (the file's mask is used)" "[ $rc -eq 0 ]"
py "
import json, numpy as np
f = np.load('$e'); a = {k: f[k] for k in f.files}
m = json.loads(str(a['meta'])); m['config_hash'] = '0' * 64; a['meta'] = np.array(json.dumps(m))
np.savez('$tmp/other.npz', **a)
a = {k: f[k] for k in f.files}; a['block_2'] = a['block_2'][:, :1]; np.savez('$tmp/shape.npz', **a)
a = {k: f[k] for k in f.files}; a['kept_1'] = a['kept_1'][::-1].copy(); np.savez('$tmp/kept.npz', **a)
a = {k: f[k] for k in f.files}; del a['block_3']; np.savez('$tmp/missing.npz', **a)"
"$cli" synth "$cfg" "${syn[@]}" --mode decoding --input "$tmp/other.npz" --out "$tmp/x" 2>"$tmp/err"; rc=$?
check "another model's file exits 2 naming config_hash" "[ $rc -eq 2 ] && grep -q config_hash '$tmp/err'"
"$cli" synth "$cfg" "${syn[@]}" "${q1[@]}" --mode decoding --input "$tmp/shape.npz" --out "$tmp/x" 2>"$tmp/err"; rc=$?
check "a block of the wrong shape exits 2 naming it" "[ $rc -eq 2 ] && grep -q block_2 '$tmp/err'"
"$cli" synth "$cfg" "${syn[@]}" --mode decoding --input "$tmp/kept.npz" --out "$tmp/x" 2>"$tmp/err"; rc=$?
check "decreasing kept indices exit 2 naming them" "[ $rc -eq 2 ] && grep -q kept_1 '$tmp/err'"
"$cli" synth "$cfg" "${syn[@]}" --mode decoding --input "$tmp/missing.npz" --out "$tmp/x" 2>"$tmp/err"; rc=$?
check "a missing block exits 2 naming it" "[ $rc -eq 2 ] && grep -q block_3 '$tmp/err'"
head -c 300 "$e" > "$tmp/trunc.npz"
"$cli" synth "$cfg" "${syn[@]}" --mode decoding --input "$tmp/trunc.npz" --out "$tmp/x" 2>"$tmp/err"; rc=$?
check "a truncated file exits 2 naming it" "[ $rc -eq 2 ] && grep -q trunc.npz '$tmp/err'"
"$cli" synth "$cfg" "${syn[@]}" --mode decoding --input "$tmp/none.npz" --out "$tmp/x" 2>"$tmp/err"; rc=$?
check "a missing file exits 2" "[ $rc -eq 2 ]"
"$cli" synth "$cfg" "${syn[@]}" --mode encoding --limit 0 2>/dev/null; rc=$?
check "--limit 0 exits 2" "[ $rc -eq 2 ]"

finish cli_synth_codec
