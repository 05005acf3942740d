#!/usr/bin/python3
"""Converts checkpoints between the reference PyTorch implementation (a torch.save dict) and
ours (safetensors, docs/checkpoints.md); tensor names are the same, so this is a renaming.

usage: convert_checkpoint.py ref2vdvae IN [OUT] --config CFG [--run-dir DIR]
       convert_checkpoint.py vdvae2ref IN OUT --config CFG"""

import argparse
import collections
import hashlib
import os
import pickle
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
from tool_deps import require_modules  # noqa: E402

require_modules("convert_checkpoint.py")
import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.join(_HERE, "..", "tests", "reference"))
import st_numpy  # noqa: E402
import vdvae_twin as twin  # noqa: E402  (the architecture: names, order and shapes)

FORMAT = "vdvae-checkpoint-1"
VERSION = "0.1.0 (convert_checkpoint.py)"
KINDS = ("model.", "ema.", "opt.m.", "opt.u.")


class ConvertError(Exception):
    pass


# ---- config hash (src/train/checkpoint.c, vd_config_hash) ------------------------------------

# The keys the hash covers, in the canonical order of src/config/hparams_table.c, with the C
# side's type and default. A key added there must be added here: the C loader's hash check
# (tests/cli_convert.sh) catches a difference.
HASHED_KEYS = [
    ("data", "target_res", "int", "32"),
    ("data", "channels", "int", "3"),
    ("model", "stable_init", "bool", "True"),
    ("model", "initialize_prior_weights_as_zero", "bool", "False"),
    ("model", "use_1x1_conv", "bool", "True"),
    ("model", "distribution_base", "enum", "'std'"),
    ("model", "output_distribution_base", "enum", "'std'"),
    ("model", "gradient_smoothing_beta", "float", "0.6931472"),
    ("model", "output_gradient_smoothing_beta", "float", "0.6931472"),
    ("model", "input_conv_filters", "int", "384"),
    ("model", "input_kernel_size", "pair", "(1, 1)"),
    ("model", "up_strides", "ints",
     "[1] * 11 + [2] + [1] * 6 + [2] + [1] * 6 + [2] + [1] * 3 + [4] + [1] * 3"),
    ("model", "up_n_blocks_per_res", "ints", "[0] * 33"),
    ("model", "up_n_blocks", "ints", "[1] * 33"),
    ("model", "up_n_layers", "ints", "[2] * 33"),
    ("model", "up_filters", "ints", "[384] * 33"),
    ("model", "up_mid_filters_ratio", "floats", "[0.25] * 33"),
    ("model", "up_kernel_size", "ints", "[3] * 30 + [1] * 3"),
    ("model", "up_skip_filters", "ints", "[384] * 33"),
    ("model", "use_residual_distribution", "bool", "False"),
    ("model", "down_strides", "ints",
     "[1] * 3 + [4] + [1] * 3 + [2] + [1] * 6 + [2] + [1] * 6 + [2] + [1] * 11"),
    ("model", "down_n_blocks_per_res", "ints",
     "[0] * 3 + [0] + [0] * 3 + [0] + [0] * 6 + [0] + [4] + [0] * 5 + [0] + [10] + [0] * 10"),
    ("model", "down_n_blocks", "ints", "[1] * 33"),
    ("model", "down_n_layers", "ints", "[2] * 33"),
    ("model", "down_filters", "ints", "[384] * 33"),
    ("model", "down_mid_filters_ratio", "floats", "[0.25] * 33"),
    ("model", "down_kernel_size", "ints", "[1] * 3 + [3] * 30"),
    ("model", "down_latent_variates", "ints", "[32] * 33"),
    ("model", "output_kernel_size", "pair", "(1, 1)"),
    ("model", "num_output_mixtures", "int", "10"),
]


def float_repr(x):
    """vd_float_repr: the shortest of %.15g..%.17g that reads back, '.0' added to integers."""
    x = float(x)
    for prec in (15, 16, 17):
        s = "%.*g" % (prec, x)
        if float(s) == x:
            break
    return s if any(c in s for c in ".eEn") else s + ".0"


def str_repr(s):
    out = []
    for c in s:
        esc = {"'": "\\'", "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(c)
        out.append(esc if esc else ("\\x%02x" % ord(c) if ord(c) < 0x20 or ord(c) == 0x7f else c))
    return "'" + "".join(out) + "'"


def canonical(kind, v):
    if kind == "bool":
        return "True" if v else "False"
    if kind == "int":
        return "%d" % int(v)
    if kind == "float":
        return float_repr(v)
    if kind == "enum":
        return str_repr(str(v))
    if kind == "pair":
        h, w = (v, v) if isinstance(v, (int, float)) else v
        return "(%d, %d)" % (int(h), int(w))
    fmt = (lambda i: "%d" % int(i)) if kind == "ints" else float_repr
    return "[" + ", ".join(fmt(i) for i in v) + "]"


def raw_sections(cfg_path):
    """Section -> {key: value} as the .cfg spells it (no defaults), via the twin's reader."""
    hp = twin.load_config(cfg_path)
    return {s: vars(ns) for s, ns in vars(hp).items()}, hp


def config_hash(cfg_path):
    sections, _ = raw_sections(cfg_path)
    lines = []
    for sec, key, kind, default in HASHED_KEYS:
        v = sections.get(sec, {}).get(key)
        if v is None:
            v = twin.parse_value(default)
        lines.append(f"{sec}.{key} = {canonical(kind, v)}\n")
    binarized = sections.get("data", {}).get("dataset_source", "cifar-10") == "binarized_mnist"
    lines.append(f"data.binarized = {'True' if binarized else 'False'}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


# ---- the architecture the config builds ------------------------------------------------------


def expected_params(hp):
    """[(name, shape)] in state_dict order, which is model.parameters() order (no buffers)."""
    model = twin.VDVAE(hp)
    names = [n for n, _ in model.named_parameters()]
    sd = model.state_dict()
    if names != list(sd):
        raise ConvertError("the twin's state_dict holds more than its parameters")
    return [(n, tuple(t.shape)) for n, t in sd.items()]


def opt_section(hp):
    o = vars(getattr(hp, "optimizer", argparse.Namespace()))
    get = lambda k, d: o.get(k, d)  # noqa: E731  (defaults of src/config/hparams_table.c)
    return {"type": get("type", "Adamax"), "lr": float(get("learning_rate", 1e-3)),
            "beta1": float(get("beta1", 0.9)), "beta2": float(get("beta2", 0.999)),
            "eps": float(get("epsilon", 1e-8))}


# The per-parameter state entry of each optimizer that goes to opt.u.
SECOND_MOMENT = {"Adamax": "exp_inf", "Adam": "exp_avg_sq", "RAdam": "exp_avg_sq"}


# ---- reference -> ours -----------------------------------------------------------------------


def _f32(t, what):
    if not torch.is_tensor(t):
        raise ConvertError(f"{what} is not a tensor")
    return t.detach().to("cpu", torch.float32).contiguous().numpy()


def check_state_dict(sd, expected, where):
    """The tensors of sd by name in expected order; the first mismatch is an error."""
    sd = collections.OrderedDict((k[7:] if k.startswith("module.") else k, v) for k, v in sd.items())
    out = []
    for name, shape in expected:
        if name not in sd:
            raise ConvertError(f"{where}: no tensor '{name}' (shape {list(shape)}): the checkpoint "
                               "was written for another config")
        t = sd[name]
        if tuple(t.shape) != shape:
            raise ConvertError(f"{where}: tensor '{name}' has shape {list(t.shape)}, the config "
                               f"builds {list(shape)}: the checkpoint was written for another config")
        out.append(_f32(t, f"{where}: '{name}'"))
    extra = [k for k in sd if k not in dict(expected)]
    if extra:
        raise ConvertError(f"{where}: tensor '{extra[0]}' is not in the model the config builds "
                           f"({len(extra)} such tensors)")
    return out


def optimizer_moments(osd, expected, opt, where):
    """(m, u, updates) from a torch optimizer state_dict keyed by parameter index."""
    groups = osd.get("param_groups") or []
    ids = [i for g in groups for i in g["params"]]
    if len(ids) != len(expected):
        raise ConvertError(f"{where}: the optimizer holds {len(ids)} parameters, the model "
                           f"{len(expected)}")
    second = SECOND_MOMENT.get(opt["type"])
    m, u, updates = [], [], 0
    for pid, (name, shape) in zip(ids, expected):
        st = osd.get("state", {}).get(pid)
        if not st:  # never updated (no gradient reached it): zero moments
            m.append(np.zeros(shape, np.float32))
            u.append(np.zeros(shape, np.float32))
            continue
        if second not in st or "exp_avg" not in st:
            raise ConvertError(f"{where}: the state of '{name}' has {sorted(st)}, not the "
                               f"exp_avg and {second} of {opt['type']} (optimizer.type)")
        for key in ("exp_avg", second):
            if tuple(st[key].shape) != shape:
                raise ConvertError(f"{where}: {key} of '{name}' has shape {list(st[key].shape)}, "
                                   f"expected {list(shape)}")
        m.append(_f32(st["exp_avg"], f"{where}: exp_avg of '{name}'"))
        u.append(_f32(st[second], f"{where}: {second} of '{name}'"))
        updates = max(updates, int(st.get("step", 0)))
    return m, u, updates


def data_sha256(tensors):
    """The checksum of checkpoint.c: SHA-256 of the tensor bytes in name (strcmp) order."""
    h = hashlib.sha256()
    for name in sorted(tensors, key=lambda s: s.encode()):
        h.update(np.ascontiguousarray(tensors[name], dtype="<f4").tobytes())
    return h.hexdigest()


def write_ours(path, tensors, cfg_path, hp, step, skips, opt_type):
    with open(cfg_path) as f:
        cfg_text = f.read()
    meta = {"format": FORMAT, "step": str(step), "skips": str(skips),
            "seed": str(int(getattr(getattr(hp, "run", None), "seed", 420)) & (2 ** 64 - 1)),
            "loader_epoch": "0", "loader_batch": "0", "optimizer": opt_type,
            "config_hash": config_hash(cfg_path), "data_sha256": data_sha256(tensors),
            "config": cfg_text, "vdvae_version": VERSION}
    st_numpy.write(path, tensors, meta)


def ref2vdvae(args):
    _, hp = raw_sections(args.config)
    expected = expected_params(hp)
    opt = opt_section(hp)
    try:
        ck = torch.load(args.input, map_location="cpu")
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as e:
        raise ConvertError(f"{args.input}: not a torch.save file: {e}") from e
    if not isinstance(ck, dict) or "model_state_dict" not in ck or "global_step" not in ck:
        raise ConvertError(f"{args.input}: not a reference checkpoint (no 'model_state_dict' "
                           "and 'global_step')")
    model = check_state_dict(ck["model_state_dict"], expected, f"{args.input}: model_state_dict")
    ema = model
    if ck.get("ema_model_state_dict") is not None:
        ema = check_state_dict(ck["ema_model_state_dict"], expected,
                               f"{args.input}: ema_model_state_dict")
    tensors = {}
    for i, (name, _) in enumerate(expected):
        tensors["model." + name], tensors["ema." + name] = model[i], ema[i]
    # the reference's global_step is that of the last step taken, counted from 0
    step, updates = int(ck["global_step"]) + 1, None
    if ck.get("optimizer_state_dict") is not None:
        m, u, updates = optimizer_moments(ck["optimizer_state_dict"], expected, opt,
                                          f"{args.input}: optimizer_state_dict")
        for i, (name, _) in enumerate(expected):
            tensors["opt.m." + name], tensors["opt.u." + name] = m[i], u[i]
    # steps the reference skipped (NaN or large gradient norm) applied no update: counting
    # them as skips keeps our bias correction, step - skips + 1, equal to Adamax's own step
    skips = max(0, step - updates) if updates is not None else 0
    step = max(step, updates or 0)
    outs = [args.output] if args.output else []
    if args.run_dir:
        outs.append(prepare_run_dir(args.run_dir, hp, args.config, step))
    for out in outs:
        write_ours(out, tensors, args.config, hp, step, skips, opt["type"])
        print(f"wrote {out} (step {step}, {skips} skips, {len(expected)} parameters"
              f"{', optimizer state' if updates is not None else ''})")


def prepare_run_dir(run_dir, hp, cfg_path, step):
    """DIR/logs-<name>/hparams-<name>.cfg (the config) and the checkpoint path under
    DIR/checkpoints-<name>/, as `vdvae train` lays out a run."""
    name = str(getattr(getattr(hp, "run", None), "name", "cifar10_baseline"))
    logs, ckdir = (os.path.join(run_dir, f"{d}-{name}") for d in ("logs", "checkpoints"))
    saved = os.path.join(logs, f"hparams-{name}.cfg")
    with open(cfg_path) as f:
        text = f.read()
    if os.path.exists(saved):
        with open(saved) as f:
            if f.read() != text:
                raise ConvertError(f"{saved} exists with another config: a run named '{name}' "
                                   "is already there (vdvae reset it, or use another --run-dir)")
    os.makedirs(logs, exist_ok=True)
    os.makedirs(ckdir, exist_ok=True)
    with open(saved, "w") as f:
        f.write(text)
    return os.path.join(ckdir, "checkpoint-%010d.safetensors" % step)


# ---- ours -> reference -----------------------------------------------------------------------


def read_ours(path, cfg_path):
    tensors, meta = st_numpy.read(path)
    if meta.get("format") != FORMAT:
        raise ConvertError(f"{path}: not a vdvae checkpoint (metadata format "
                           f"{meta.get('format')!r}, expected {FORMAT!r})")
    if meta.get("data_sha256") != data_sha256(tensors):
        raise ConvertError(f"{path}: the tensor data do not match the checksum written with them")
    want = config_hash(cfg_path)
    if meta.get("config_hash") != want:
        raise ConvertError(f"{path} was written by a different model config (its config hash "
                           f"{meta.get('config_hash', '?')[:12]}, {cfg_path}'s {want[:12]})")
    return tensors, meta


def take(tensors, prefix, expected, path):
    out = collections.OrderedDict()
    for name, shape in expected:
        t = tensors.get(prefix + name)
        if t is None or tuple(t.shape) != shape:
            raise ConvertError(f"{path}: tensor '{prefix}{name}' is "
                               f"{'missing' if t is None else list(t.shape)}, expected {list(shape)}")
        out[name] = torch.from_numpy(np.array(t, dtype=np.float32))
    return out


def vdvae2ref(args):
    _, hp = raw_sections(args.config)
    expected = expected_params(hp)
    opt = opt_section(hp)
    tensors, meta = read_ours(args.input, args.config)
    step, skips = int(meta["step"]), int(meta["skips"])
    out = {"global_step": step - 1,
           "model_state_dict": take(tensors, "model.", expected, args.input),
           "ema_model_state_dict": take(tensors, "ema.", expected, args.input),
           "optimizer_state_dict": None, "scheduler_state_dict": None}
    if "opt.m." + expected[0][0] in tensors:
        if meta.get("optimizer") != opt["type"]:
            raise ConvertError(f"{args.input}: optimizer moments are for {meta.get('optimizer')}, "
                               f"the config asks for {opt['type']}")
        m = take(tensors, "opt.m.", expected, args.input)
        u = take(tensors, "opt.u.", expected, args.input)
        state = {}
        for i, (name, _) in enumerate(expected):
            if m[name].any() or u[name].any():  # all-zero: never updated, no state (as torch)
                state[i] = {"step": step - skips, "exp_avg": m[name],
                            SECOND_MOMENT[opt["type"]]: u[name]}
        group = {"lr": opt["lr"], "initial_lr": opt["lr"], "betas": (opt["beta1"], opt["beta2"]),
                 "eps": opt["eps"], "weight_decay": 0.0, "params": list(range(len(expected)))}
        out["optimizer_state_dict"] = {"state": state, "param_groups": [group]}
        # the reference's schedulers step once at construction and once per training step
        out["scheduler_state_dict"] = {"last_epoch": step, "_step_count": step + 1,
                                       "base_lrs": [opt["lr"]]}
    torch.save(out, args.output)
    print(f"wrote {args.output} (global_step {step - 1}, {len(expected)} parameters)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("ref2vdvae", help="reference torch.save dict -> vdvae safetensors")
    r.add_argument("input")
    r.add_argument("output", nargs="?")
    r.add_argument("--config", required=True, help="the run's .cfg (the model it builds)")
    r.add_argument("--run-dir", help="also lay out a run in DIR that vdvae train/eval accept")
    v = sub.add_parser("vdvae2ref", help="vdvae safetensors -> reference torch.save dict")
    v.add_argument("input")
    v.add_argument("output")
    v.add_argument("--config", required=True, help="the run's .cfg (the model it builds)")
    args = ap.parse_args(argv)
    if args.cmd == "ref2vdvae" and not args.output and not args.run_dir:
        ap.error("ref2vdvae needs OUT, --run-dir, or both")
    torch.set_num_threads(1)
    try:
        (ref2vdvae if args.cmd == "ref2vdvae" else vdvae2ref)(args)
    except (ConvertError, OSError, ValueError, KeyError) as e:
        print(f"convert_checkpoint.py: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
