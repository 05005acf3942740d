#!/usr/bin/env bash
# The parameter table against the PyTorch twin's state_dict: same names, same order, same
# shapes (so a reference checkpoint imports by renaming). Needs Debian's python3-torch.
set -u
cli=${VD_CLI:?}; src=${VD_SOURCE_DIR:?}
. "$src/tests/lib.sh"
need_python_module torch
py=$vd_python
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cfgs="$src/tests/reference/configs/tiny_rgb.cfg $src/tests/reference/configs/tiny_grey_logstd.cfg
      $src/tests/reference/configs/tiny_binarized.cfg $src/egs/fashion_mnist.cfg
      $src/egs/reference/cifar10_baseline.cfg"
for cfg in $cfgs; do
  "$cli" info "$cfg" --params | awk '$1 ~ /^[0-9]+$/ && $2 ~ /\./ || $2 == "top_down.trainable_h" {
      shape=""; for (i = 3; i <= NF; i++) { shape = shape $i; if ($i ~ /\)$/) break }
      print $2, shape }' >"$tmp/c.txt"
  (cd "$src/tests/reference" && $py -c "
import sys, vdvae_twin as t
m = t.build_model(t.load_config(sys.argv[1]), seed=0)
for k, v in m.state_dict().items(): print(k, '(' + ','.join(str(d) for d in v.shape) + ')')
" "$cfg") >"$tmp/p.txt"
  if [ -s "$tmp/c.txt" ] && diff -q "$tmp/c.txt" "$tmp/p.txt" >/dev/null; then
    pass=$((pass+1))
  else
    echo "FAIL: $(basename "$cfg"): table differs from the twin's state_dict"; diff "$tmp/c.txt" "$tmp/p.txt" | head -5
    fail=$((fail+1))
  fi
done
finish cli_param_order
