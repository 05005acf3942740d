#!/usr/bin/env python3
"""Open an encodings file written by `vdvae synth --mode encoding`, print its layout, move one
latent, and save the result for `vdvae synth --mode decoding`. Needs numpy only.

    python3 read_encodings.py ENCODINGS.npz [EDITED.npz]

See docs/encodings.md for the layout.
"""
import json
import re
import sys

import numpy as np


def load(path):
    """All arrays of the file as a dict, plus the block indices in order."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {name: f[name] for name in f.files}
    blocks = sorted(int(m.group(1)) for m in map(re.compile(r"block_(\d+)$").match, arrays) if m)
    return arrays, blocks


def describe(arrays, blocks):
    meta = json.loads(str(arrays["meta"]))
    names = arrays["names"]
    print(f"{len(names)} images: {', '.join(names[:4])}{' ...' if len(names) > 4 else ''}")
    print("meta:", json.dumps(meta, sort_keys=True))
    for i in blocks:
        block, kept = arrays[f"block_{i}"], arrays[f"kept_{i}"]
        print(f"block_{i}: {block.dtype} {tuple(block.shape)}  (N, H, W, V_kept, mean/std), "
              f"kept variates {kept.tolist()[:8]}{' ...' if kept.size > 8 else ''}")


def edit(arrays, blocks):
    """Move the posterior mean of one latent of the first image: the first kept variate, top-left
    position, of the block that keeps the most variates. Keep dtypes and shapes as they are."""
    best = max(blocks, key=lambda i: arrays[f"block_{i}"].shape[3])
    block = arrays[f"block_{best}"]
    if block.shape[3] == 0:
        print("no block keeps any variate: nothing to edit")
        return
    variate = int(arrays[f"kept_{best}"][0])
    block[0, 0, 0, 0, 0] += np.float32(1.5)  # [image, y, x, kept variate, 0 = mean / 1 = std]
    print(f"edited block_{best}: image 0 ({arrays['names'][0]}), position (0, 0), variate {variate}:"
          f" mean {block[0, 0, 0, 0, 0] - 1.5:.4f} -> {block[0, 0, 0, 0, 0]:.4f}")


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    arrays, blocks = load(sys.argv[1])
    describe(arrays, blocks)
    if len(sys.argv) == 3:
        edit(arrays, blocks)
        # np.savez keeps every dtype: float32 blocks, int64 kept, '<U' names, the 0-d meta string
        np.savez(sys.argv[2], **arrays)
        print("wrote", sys.argv[2])


if __name__ == "__main__":
    main()
