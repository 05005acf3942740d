#!/usr/bin/env python3
"""SSIM written from its definition (Wang et al. 2004, Gaussian-window form) with numpy, as an
independent check of src/synth/ssim.c; optionally also with torch's conv2d (--torch).

Usage: ssim_ref.py CASES.bin [--torch]
CASES.bin holds cases back to back: int32 n, h, w, c (little-endian), then image a and image b
as float32 NHWC arrays of n*h*w*c values on the 0..255 scale. Prints one line per image:
    numpy CASE IMAGE VALUE
and with --torch also "torch64 ..." (float64 conv2d) and "torch32 ..." (float32, the precision
the reference runs in). Exits 3 when --torch is asked for and torch is missing.
Window: 11x11 Gaussian, sigma 1.5, normalised to sum 1; zero padding so the SSIM map keeps the
image size; k1 = 0.01, k2 = 0.03, L = 255; map averaged over pixels, then channels.
"""
import sys

import numpy as np

SIZE, SIGMA, K1, K2, L = 11, 1.5, 0.01, 0.03, 255.0
C1, C2 = (K1 * L) ** 2, (K2 * L) ** 2


def window():
    d = np.arange(SIZE, dtype=np.float64) - (SIZE - 1) / 2.0
    r2 = d[:, None] ** 2 + d[None, :] ** 2
    win = np.exp(-r2 / (2.0 * SIGMA ** 2))
    return win / win.sum()


def blur(img, win):
    """Direct 2-D weighted local mean of (n, h, w, c) maps with zero padding, same size."""
    n, h, w, c = img.shape
    r = SIZE // 2
    padded = np.zeros((n, h + 2 * r, w + 2 * r, c))
    padded[:, r:r + h, r:r + w, :] = img
    out = np.zeros_like(img)
    for i in range(SIZE):
        for j in range(SIZE):
            out += win[i, j] * padded[:, i:i + h, j:j + w, :]
    return out


def ssim_from_stats(mu_x, mu_y, var_x, var_y, cov):
    """Per-image SSIM from local statistics shaped (n, h, w, c)."""
    num = (2 * mu_x * mu_y + C1) * (2 * cov + C2)
    den = (mu_x ** 2 + mu_y ** 2 + C1) * (var_x + var_y + C2)
    return (num / den).mean(axis=(1, 2)).mean(axis=1)


def ssim_numpy(a, b):
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    win = window()
    mu_x, mu_y = blur(a, win), blur(b, win)
    var_x = blur(a * a, win) - mu_x ** 2
    var_y = blur(b * b, win) - mu_y ** 2
    cov = blur(a * b, win) - mu_x * mu_y
    return ssim_from_stats(mu_x, mu_y, var_x, var_y, cov)


def ssim_torch(a, b, dtype):
    import torch
    import torch.nn.functional as F
    c = a.shape[3]
    x = torch.from_numpy(a).to(dtype).permute(0, 3, 1, 2)
    y = torch.from_numpy(b).to(dtype).permute(0, 3, 1, 2)
    k = torch.from_numpy(window()).to(dtype).expand(c, 1, SIZE, SIZE)

    def f(t):
        return F.conv2d(t, k, padding=SIZE // 2, groups=c)

    mu_x, mu_y = f(x), f(y)
    var_x, var_y = f(x * x) - mu_x ** 2, f(y * y) - mu_y ** 2
    cov = f(x * y) - mu_x * mu_y
    stats = [t.permute(0, 2, 3, 1).double().numpy() for t in (mu_x, mu_y, var_x, var_y, cov)]
    return ssim_from_stats(*stats)


def read_cases(path):
    raw = open(path, "rb").read()
    at, cases = 0, []
    while at < len(raw):
        n, h, w, c = np.frombuffer(raw, "<i4", 4, at)
        at += 16
        count = int(n) * int(h) * int(w) * int(c)
        a = np.frombuffer(raw, "<f4", count, at).reshape(n, h, w, c).copy()
        at += 4 * count
        b = np.frombuffer(raw, "<f4", count, at).reshape(n, h, w, c).copy()
        at += 4 * count
        cases.append((a, b))
    return cases


def main():
    cases = read_cases(sys.argv[1])
    methods = [("numpy", ssim_numpy)]
    if "--torch" in sys.argv[2:]:
        try:
            import torch
        except ImportError:
            sys.exit(3)
        torch.set_num_threads(1)
        methods += [("torch64", lambda a, b: ssim_torch(a, b, torch.float64)),
                    ("torch32", lambda a, b: ssim_torch(a, b, torch.float32))]
    for name, fn in methods:
        for ci, (a, b) in enumerate(cases):
            for ii, v in enumerate(fn(a, b)):
                print(f"{name} {ci} {ii} {v:.17g}")


if __name__ == "__main__":
    main()
