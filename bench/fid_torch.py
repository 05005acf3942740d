"""Throughput of pytorch-fid's InceptionV3 forward (resize to 299, pool3) in PyTorch on the CPU:
the side of bench/FID.md that bench/fid_inception.c is compared with, on the same machine, the
same weights (a .pth state_dict, loaded where pytorch-fid would download) and the same batch.

usage: fid_torch.py WEIGHTS.pth [--batch B] [--size S] [--channels C] [--iters K] [--threads T]"""

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "reference"))
from fid_inception_case import networks  # noqa: E402  (pytorch-fid's, with the weights patched in)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("weights")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, _ = networks(args.weights)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, args.channels, args.size, args.size, generator=g)
    x = x.expand(args.batch, 3, args.size, args.size)  # grey as pytorch-fid's loader makes it RGB
    best = float("inf")
    with torch.no_grad():
        for it in range(-1, args.iters):  # -1: warm-up
            t0 = time.perf_counter()
            model(x)
            dt = time.perf_counter() - t0
            if it >= 0:
                best = min(best, dt)
                print(f"batch {it}: {dt:.3f} s ({args.batch / dt:.2f} images/s)")
    print(f"best: {args.batch / best:.2f} images/s (batch {args.batch} of {args.size}x{args.size}x"
          f"{args.channels}, torch {torch.__version__}, {args.threads} threads)")


if __name__ == "__main__":
    main()
