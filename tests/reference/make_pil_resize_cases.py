#!/usr/bin/env python3
"""Writes resize cases made by Pillow itself for tests/test_data_resize.c: random images
resized with Image.resize(size, Image.BILINEAR), the call the reference's folder datasets make.

The reference pins Pillow 7.1.1, which always runs the horizontal pass first. Pillow 13 runs
the vertical pass first when the height shrinks by more than twice the width's reduction,
which moves some pixels by 1; under such a Pillow those cases are made as two one-axis
resizes (horizontal, then vertical), each a single pass and the same in every version.

usage: make_pil_resize_cases.py OUT_FILE
OUT_FILE holds the case count (u32 LE), then per case: sh, sw, c, dh, dw (u32 LE), the
source pixels (sh*sw*c bytes, HWC) and Pillow's result (dh*dw*c bytes).
Exits 3 when Pillow cannot be imported (the C test checks for Pillow first, so then it fails)."""
import random
import struct
import sys

try:
    import PIL
    from PIL import Image
except ImportError:
    print("Pillow (PIL) is not importable by this python3", file=sys.stderr)
    sys.exit(3)

# (source h, w), (target h, w), channels: down and up, integer and non-integer ratios,
# one axis only, and the reference's usual 1024 -> 64 / 178x218 -> 64 kind of shrink.
CASES = [
    ((32, 32), (16, 16), 3), ((32, 32), (64, 64), 3), ((37, 23), (11, 17), 3),
    ((20, 30), (20, 13), 3), ((15, 9), (40, 9), 3), ((218, 178), (64, 64), 3),
    ((100, 100), (33, 33), 1), ((7, 5), (19, 23), 1), ((1, 9), (3, 2), 3),
    ((256, 256), (61, 61), 3), ((13, 13), (13, 13), 3), ((5, 64), (64, 5), 3),
]


def pillow_7_resize(im, dw, dh):
    sw, sh = im.size
    vertical_first = sh - dh > 0 and sh - dh > (sw - dw) * 2
    major = int(PIL.__version__.split(".")[0])
    if major >= 13 and vertical_first:
        return im.resize((dw, sh), Image.BILINEAR).resize((dw, dh), Image.BILINEAR)
    return im.resize((dw, dh), Image.BILINEAR)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    rng = random.Random(1234)
    out = [struct.pack("<I", len(CASES))]
    for (sh, sw), (dh, dw), c in CASES:
        src = bytes(rng.randrange(256) for _ in range(sh * sw * c))
        mode = "RGB" if c == 3 else "L"
        dst = pillow_7_resize(Image.frombytes(mode, (sw, sh), src), dw, dh).tobytes()
        out += [struct.pack("<5I", sh, sw, c, dh, dw), src, dst]
    with open(sys.argv[1], "wb") as f:
        f.write(b"".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
