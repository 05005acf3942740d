#!/usr/bin/env bash
# vdvae info as a user runs it: the reference configs print the reference parameter counts;
# overrides, --params and --batch work; bad paths, configs and flags exit 2 with a message.
set -u
: "${VD_CLI:?VD_CLI must name the vdvae binary}" "${VD_SOURCE_DIR:?}"
egs="$VD_SOURCE_DIR/egs/reference"
fail=0
bad() { echo "FAIL: $*"; fail=1; }

check_reference_configs() {
    while read -r cfg params tensors _; do
        case "$cfg" in '' | '#'*) continue ;; esac
        out=$("$VD_CLI" info "$egs/$cfg" 2>&1) || { bad "info $cfg exited $?: $out"; continue; }
        grep -q "^parameters: $params (.*) in $tensors tensors" <<<"$out" ||
            bad "$cfg: expected 'parameters: $params ... in $tensors tensors', got: $(grep '^parameters' <<<"$out")"
        grep -q "^$egs/$cfg: dataset .* N_td [0-9]*, latent [0-9]*x[0-9]*" <<<"$out" || bad "$cfg: header line"
    done <"$egs/param_counts.txt"

    cifar="$egs/cifar10_baseline.cfg"
    # 10 -> 5 mixtures removes 5 * 10 output channels of a 384-channel 1x1 conv: 50 * 385 parameters.
    out=$("$VD_CLI" info "$cifar" --set model.num_output_mixtures=5 --batch 4 2>&1) || bad "--set: exit $?"
    grep -q "^parameters: 56579442 " <<<"$out" || bad "--set num_output_mixtures=5: $(grep '^parameters' <<<"$out")"
    grep -q "^memory at batch 4 " <<<"$out" || bad "--batch 4 not used"
    out=$("$VD_CLI" info "$cifar" --params 2>&1) || bad "--params: exit $?"
    [ "$(grep -c '^ *[0-9]* *top_down\.output_conv\.bias ' <<<"$out")" = 1 ] || bad "--params lacks output_conv.bias"
    [ "$(grep -c '^ *[0-9][0-9]*  *\(bottom_up\|top_down\)\.' <<<"$out")" = 1765 ] || bad "--params rows"

    out=$("$VD_CLI" info "$cifar" --set 'model.down_strides=[1] * 33' 2>&1)
    rc=$?
    [ "$rc" = 2 ] || bad "inconsistent strides: exit $rc, expected 2"
    grep -q "down_strides" <<<"$out" || bad "inconsistent strides: message lacks the key: $out"
}

# the reference configs and their counts ship with the repository: missing ones fail
if [ -f "$egs/param_counts.txt" ]; then
    check_reference_configs
else
    bad "$egs/param_counts.txt not found"
fi

missing=/nonexistent-dir/missing.cfg
out=$("$VD_CLI" info "$missing" 2>&1)
rc=$?
[ "$rc" = 2 ] || bad "missing config: exit $rc, expected 2"
grep -q "^vdvae info: .*$missing" <<<"$out" || bad "missing config: message lacks the path: $out"

for args in "--batch 0" "--batch x" "--bogus" ""; do
    # shellcheck disable=SC2086
    "$VD_CLI" info $args >/dev/null 2>&1
    rc=$?
    [ "$rc" = 2 ] || bad "info $args: exit $rc, expected 2"
done
"$VD_CLI" info --help | grep -q "^usage: vdvae info CFG" || bad "--help"

[ "$fail" = 0 ] && echo "cli_info: ok"
exit "$fail"
