#!/usr/bin/python3
"""Converts pytorch-fid's Inception weights (the state_dict pt_inception-2015-12-05-6726825d.pth
that pytorch-fid and torch-fidelity download) to the safetensors file `vdvae` reads: float32,
the state_dict's names, num_batches_tracked left out. With --random, writes instead a randomly
initialised state_dict of the same network (batch norms with non-trivial running statistics),
for tests that need one where nothing may be downloaded.

usage: fid_weights.py IN.pth OUT.safetensors
       fid_weights.py --random SEED OUT.pth"""

import argparse
import collections
import collections.abc
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
from tool_deps import require_modules  # noqa: E402

FORMAT = "pytorch-fid-inception-2015-12-05"



class WeightsError(Exception):
    pass


# ---- the network's tensors: pytorch-fid's FIDInceptionV3 (torchvision's inception_v3 with
# num_classes=1008, aux_logits=False and its FIDInception blocks); src/fid/inception.c walks the
# same layers. A test loads --random's output into pytorch-fid itself (strict), which checks
# this table against pytorch-fid's. -------------------------------------------------------------

def basic_convs():
    """(prefix, c_in, c_out, kh, kw) of every BasicConv2d, in the network's order."""
    convs = [("Conv2d_1a_3x3", 3, 32, 3, 3), ("Conv2d_2a_3x3", 32, 32, 3, 3),
             ("Conv2d_2b_3x3", 32, 64, 3, 3), ("Conv2d_3b_1x1", 64, 80, 1, 1),
             ("Conv2d_4a_3x3", 80, 192, 3, 3)]
    for name, cin, pool in (("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64)):
        convs += [(f"{name}.{b}", *s) for b, s in (
            ("branch1x1", (cin, 64, 1, 1)), ("branch5x5_1", (cin, 48, 1, 1)),
            ("branch5x5_2", (48, 64, 5, 5)), ("branch3x3dbl_1", (cin, 64, 1, 1)),
            ("branch3x3dbl_2", (64, 96, 3, 3)), ("branch3x3dbl_3", (96, 96, 3, 3)),
            ("branch_pool", (cin, pool, 1, 1)))]
    convs += [(f"Mixed_6a.{b}", *s) for b, s in (
        ("branch3x3", (288, 384, 3, 3)), ("branch3x3dbl_1", (288, 64, 1, 1)),
        ("branch3x3dbl_2", (64, 96, 3, 3)), ("branch3x3dbl_3", (96, 96, 3, 3)))]
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        convs += [(f"{name}.{b}", *s) for b, s in (
            ("branch1x1", (768, 192, 1, 1)), ("branch7x7_1", (768, c7, 1, 1)),
            ("branch7x7_2", (c7, c7, 1, 7)), ("branch7x7_3", (c7, 192, 7, 1)),
            ("branch7x7dbl_1", (768, c7, 1, 1)), ("branch7x7dbl_2", (c7, c7, 7, 1)),
            ("branch7x7dbl_3", (c7, c7, 1, 7)), ("branch7x7dbl_4", (c7, c7, 7, 1)),
            ("branch7x7dbl_5", (c7, 192, 1, 7)), ("branch_pool", (768, 192, 1, 1)))]
    convs += [(f"Mixed_7a.{b}", *s) for b, s in (
        ("branch3x3_1", (768, 192, 1, 1)), ("branch3x3_2", (192, 320, 3, 3)),
        ("branch7x7x3_1", (768, 192, 1, 1)), ("branch7x7x3_2", (192, 192, 1, 7)),
        ("branch7x7x3_3", (192, 192, 7, 1)), ("branch7x7x3_4", (192, 192, 3, 3)))]
    for name, cin in (("Mixed_7b", 1280), ("Mixed_7c", 2048)):
        convs += [(f"{name}.{b}", *s) for b, s in (
            ("branch1x1", (cin, 320, 1, 1)), ("branch3x3_1", (cin, 384, 1, 1)),
            ("branch3x3_2a", (384, 384, 1, 3)), ("branch3x3_2b", (384, 384, 3, 1)),
            ("branch3x3dbl_1", (cin, 448, 1, 1)), ("branch3x3dbl_2", (448, 384, 3, 3)),
            ("branch3x3dbl_3a", (384, 384, 1, 3)), ("branch3x3dbl_3b", (384, 384, 3, 1)),
            ("branch_pool", (cin, 192, 1, 1)))]
    return convs


BN_STATS = ("weight", "bias", "running_mean", "running_var")


def expected_tensors():
    """name -> shape of every float tensor of the state_dict, in the network's order."""
    out = collections.OrderedDict()
    for prefix, cin, cout, kh, kw in basic_convs():
        out[f"{prefix}.conv.weight"] = (cout, cin, kh, kw)
        for s in BN_STATS:
            out[f"{prefix}.bn.{s}"] = (cout,)
    out["fc.weight"] = (1008, 2048)
    out["fc.bias"] = (1008,)
    return out


# ---- .pth -> safetensors ------------------------------------------------------------------------

def load_state_dict(path):
    import torch
    try:
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True)
        except TypeError:  # a torch older than 1.13 has no weights_only
            sd = torch.load(path, map_location="cpu")
    except OSError:
        raise
    except Exception as e:  # torch raises whatever its unpickler met: all mean "not such a file"
        raise WeightsError(f"{path}: not a PyTorch state_dict file ({type(e).__name__}: {e})")
    if not isinstance(sd, collections.abc.Mapping):
        raise WeightsError(f"{path}: holds a {type(sd).__name__}, not a state_dict (a dict of "
                           "tensors)")
    return sd


def checked_tensors(path, sd):
    """The expected tensors of sd as float32 numpy arrays, or WeightsError naming the first
    tensor that is missing, unexpected or misshapen."""
    import numpy as np
    import torch
    want = expected_tensors()
    for name in sd:
        if name not in want and not str(name).endswith(".num_batches_tracked"):
            raise WeightsError(f"{path}: unexpected tensor '{name}': not pytorch-fid's "
                               "FIDInceptionV3 state_dict (pt_inception-2015-12-05-6726825d.pth)")
    out = collections.OrderedDict()
    for name, shape in want.items():
        t = sd.get(name)
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            what = "missing" if t is None else f"a {type(t).__name__}"
            if isinstance(t, torch.Tensor):
                what = f"of dtype {t.dtype}"
            raise WeightsError(f"{path}: tensor '{name}' is {what}, expected floats of shape "
                               f"{list(shape)}: not pytorch-fid's FIDInceptionV3 state_dict")
        if tuple(t.shape) != shape:
            raise WeightsError(f"{path}: tensor '{name}' has shape {list(t.shape)}, expected "
                               f"{list(shape)}")
        out[name] = np.ascontiguousarray(t.detach().to(torch.float32).numpy())
    return out


def convert(src, dst):
    sys.path.insert(0, os.path.join(_HERE, "..", "tests", "reference"))
    import st_numpy
    tensors = checked_tensors(src, load_state_dict(src))
    st_numpy.write(dst, tensors, {"format": FORMAT, "source": os.path.basename(src)})
    print(f"wrote {dst} ({len(tensors)} tensors from {src})")


# ---- --random --------------------------------------------------------------------------------------

def random_state_dict(seed):
    """He-initialised convs (the signal keeps its scale through 20 layers, so every layer counts
    in pool3) and batch norms whose scale, shift, mean and variance all differ from identity."""
    import torch
    g = torch.Generator().manual_seed(seed)

    def uniform(shape, lo, hi):
        return lo + (hi - lo) * torch.rand(shape, generator=g)

    sd = collections.OrderedDict()
    for name, shape in expected_tensors().items():
        if name.endswith(".conv.weight"):
            fan_in = shape[1] * shape[2] * shape[3]
            sd[name] = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
        elif name.endswith(".bn.weight"):
            sd[name] = uniform(shape, 0.7, 1.3)
        elif name.endswith(".bn.bias") or name.endswith(".bn.running_mean"):
            sd[name] = uniform(shape, -0.2, 0.2)
        elif name.endswith(".bn.running_var"):
            sd[name] = uniform(shape, 0.6, 1.6)
        else:  # fc
            sd[name] = uniform(shape, -1, 1) * (1.0 / 2048) ** 0.5
        if name.endswith(".bn.running_var"):  # as torch's BatchNorm2d state_dict has it
            sd[name[:-len("running_var")] + "num_batches_tracked"] = torch.tensor(1000)
    return sd


def write_random(seed, dst):
    import torch
    sd = random_state_dict(seed)
    torch.save(sd, dst)
    print(f"wrote {dst} (random FIDInceptionV3 state_dict, seed {seed}, {len(sd)} entries)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--random", metavar="SEED", type=int,
                    help="write a random state_dict to OUT.pth instead of converting")
    ap.add_argument("paths", nargs="+", metavar="PATH", help="IN.pth OUT.safetensors, or OUT.pth")
    args = ap.parse_args(argv)
    want = 1 if args.random is not None else 2
    if len(args.paths) != want:
        ap.error("--random SEED takes OUT.pth" if want == 1 else "needs IN.pth OUT.safetensors")
    require_modules("fid_weights.py")
    import torch
    torch.set_num_threads(1)
    try:
        if args.random is not None:
            write_random(args.random, args.paths[0])
        else:
            convert(*args.paths)
    except (WeightsError, OSError) as e:
        print(f"fid_weights.py: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
