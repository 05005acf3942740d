"""pytorch-fid end to end, for tests/cli_fid_pytorch.sh: folders of test images, and the FID
pytorch-fid computes from them with a given state_dict patched in where it would download its
weights, and from our statistics files.

usage: fid_pytorch_case.py images OUT_DIR N SEED NOISE
       fid_pytorch_case.py fid WEIGHTS.pth DIR_A DIR_B OURS_A.npz OURS_B.npz OUT.txt

images: N 32 x 32 RGB PNGs of smooth colour fields (random low-frequency cosines) plus uniform
noise of amplitude NOISE (0 to 255), from SEED.
fid: pytorch-fid's calculate_fid_given_paths steps (InceptionV3 pool3 of each folder, batches
of 50, np.mean and np.cov, calculate_frechet_distance), and calculate_frechet_distance on our
files as its compute_statistics_of_path reads them; the two distances (minutes each at 2048
dimensions with reference BLAS) run side by side. OUT.txt: `folders <fid>` and `ours <fid>`."""

import multiprocessing
import os
import sys

import numpy as np


def images(out_dir, n, seed, noise):
    from PIL import Image

    rng = np.random.default_rng(int(seed))
    os.makedirs(out_dir, exist_ok=True)
    yy, xx = np.mgrid[0:32, 0:32] / 32.0
    for i in range(int(n)):
        img = np.zeros((32, 32, 3))
        for c in range(3):
            fy, fx, ph = rng.uniform(0, 3, 3)
            img[:, :, c] = 127.5 + 100 * np.cos(2 * np.pi * (fy * yy + fx * xx) + 6 * ph) * rng.uniform(0.3, 1)
        img += rng.uniform(-float(noise), float(noise), img.shape)
        Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8)).save(
            os.path.join(out_dir, f"{i:04d}.png"))


def _distance(args):
    from pytorch_fid import fid_score

    return fid_score.calculate_frechet_distance(*args)


def fid(weights, dir_a, dir_b, ours_a, ours_b, out):
    import torch
    from pytorch_fid import fid_score
    from pytorch_fid import inception as pfi

    torch.set_num_threads(2)
    sd = torch.load(weights, map_location="cpu")
    pfi.load_state_dict_from_url = lambda *args, **kwargs: sd  # nothing downloads
    model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    ref = [fid_score.compute_statistics_of_path(d, model, 50, 2048, "cpu", 0) for d in (dir_a, dir_b)]
    ours = [fid_score.compute_statistics_of_path(p, None, 50, 2048, "cpu") for p in (ours_a, ours_b)]
    jobs = [(ref[0][0], ref[0][1], ref[1][0], ref[1][1]), (ours[0][0], ours[0][1], ours[1][0], ours[1][1])]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        folders, on_ours = pool.map(_distance, jobs)
    with open(out, "w") as f:
        f.write(f"folders {folders!r}\nours {on_ours!r}\n")


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "images":
        images(*sys.argv[2:])
    elif len(sys.argv) == 8 and sys.argv[1] == "fid":
        fid(*sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
