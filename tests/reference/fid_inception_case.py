"""pytorch-fid's own InceptionV3 (pool3, the block FID uses) and its fc on random images, with a
given state_dict patched in where pytorch-fid would download its weights: writes the images and
what pytorch-fid computes from them for tests/test_inception.c.

usage: fid_inception_case.py WEIGHTS.pth OUT.safetensors [--seed S] [--set N:SIDE:CHANNELS ...]

Each set is N random images of SIDE x SIDE x CHANNELS in [0, 1] (pytorch-fid's input range),
stored NHWC as `images.<k>`, with `pool3.<k>` [N, 2048] and `logits.<k>` [N, 1008]. Grey images
go to the network as RGB with the channel repeated, as pytorch-fid's loader converts them.
The ops the network adds are there too, torch's own results on random inputs (NHWC):
`resize.<k>.x/.y` (F.interpolate bilinear, align_corners=False) for RESIZES and
`pool.<k>.x/.y` (F.max_pool2d, F.avg_pool2d with count_include_pad=False) for POOLS."""

import argparse
import os
import sys

import numpy as np
import torch
from pytorch_fid import inception as pfi

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_numpy  # noqa: E402


# (h, w, channels, out_h, out_w): up, down, mixed, the same size, one pixel
RESIZES = [(32, 32, 3, 299, 299), (5, 7, 4, 11, 4), (300, 300, 2, 17, 17), (9, 6, 3, 9, 6),
           (1, 1, 3, 3, 2), (28, 28, 1, 299, 299)]
# (kind, h, w, channels, kernel, stride, padding), as the network pools and a few more
POOLS = [("max", 15, 15, 5, 3, 2, 0), ("max", 8, 8, 13, 3, 1, 1), ("avg", 9, 7, 6, 3, 1, 1),
         ("avg", 8, 8, 7, 8, 1, 0), ("avg", 10, 9, 4, 3, 2, 1), ("max", 10, 9, 4, 2, 2, 1)]


def op_cases(g):
    """torch's resize and pooling on random NCHW inputs, stored NHWC."""
    out = {}

    def nhwc(t):
        return t.permute(0, 2, 3, 1).contiguous().numpy()
    for k, (h, w, c, oh, ow) in enumerate(RESIZES):
        x = torch.rand(2, c, h, w, generator=g) * 2 - 1
        y = torch.nn.functional.interpolate(x, size=(oh, ow), mode="bilinear", align_corners=False)
        out[f"resize.{k}.x"], out[f"resize.{k}.y"] = nhwc(x), nhwc(y)
    for k, (kind, h, w, c, kernel, stride, pad) in enumerate(POOLS):
        x = torch.rand(2, c, h, w, generator=g) * 6 - 3
        if kind == "max":
            y = torch.nn.functional.max_pool2d(x, kernel, stride, pad)
        else:
            y = torch.nn.functional.avg_pool2d(x, kernel, stride, pad, count_include_pad=False)
        out[f"pool.{k}.x"], out[f"pool.{k}.y"] = nhwc(x), nhwc(y)
    return out


def networks(weights):
    """InceptionV3([pool3]) and fid_inception_v3() (for its fc), both built by pytorch-fid with
    `weights` loaded (strictly) where it would call load_state_dict_from_url."""
    sd = torch.load(weights, map_location="cpu")
    pfi.load_state_dict_from_url = lambda *args, **kwargs: sd  # nothing downloads
    model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    return model, pfi.fid_inception_v3().eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("weights")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="N:SIDE:CHANNELS")
    args = ap.parse_args()
    torch.set_num_threads(2)
    model, full = networks(args.weights)
    g = torch.Generator().manual_seed(args.seed)
    tensors = {}
    for k, spec in enumerate(args.set):
        n, side, channels = (int(v) for v in spec.split(":"))
        x = torch.rand(n, channels, side, side, generator=g)
        with torch.no_grad():
            pool3 = model(x.expand(n, 3, side, side))[0].flatten(1)
            logits = torch.nn.functional.linear(pool3, full.fc.weight)  # unbiased, as the IS
        tensors[f"images.{k}"] = x.permute(0, 2, 3, 1).contiguous().numpy()
        tensors[f"pool3.{k}"] = pool3.numpy()
        tensors[f"logits.{k}"] = logits.numpy()
    tensors.update(op_cases(g))
    pools = " ".join(f"{kind}:{kernel}:{stride}:{pad}" for kind, _, _, _, kernel, stride, pad in POOLS)
    st_numpy.write(args.out, {k: np.asarray(v, dtype=np.float32) for k, v in tensors.items()},
                   {"format": "vdvae-fid-inception-case-1", "sets": " ".join(args.set),
                    "pools": pools})


if __name__ == "__main__":
    main()
