"""pytorch-fid's and torch-fidelity's FID arithmetic on what tests/test_fid_stats.c writes, for
it to compare with ours.

usage: fid_stats_case.py distance A.npy B.npy OURS_A.npz OURS_B.npz OUT_DIR
       fid_stats_case.py isc LOGITS.npy SPLITS OUT.txt

distance: the statistics of the float32 feature rows A and B as pytorch-fid computes them
(float64, np.mean and np.cov), saved as its save_fid_stats saves them (OUT_DIR/ref_a.npz,
ref_b.npz), and pytorch-fid's calculate_frechet_distance on them and on our files OURS_A/B.npz
read by its compute_statistics_of_path: OUT_DIR/result.txt holds `ref <fid>` and `ours <fid>`.
isc: torch-fidelity's isc_features_to_metric on the logits rows in their order (shuffle off):
`<mean> <std>` in OUT.txt."""

import os
import sys

import numpy as np


def distance(a_npy, b_npy, ours_a, ours_b, out_dir):
    from pytorch_fid import fid_score

    stats = []
    for name, path in (("ref_a", a_npy), ("ref_b", b_npy)):
        act = np.load(path).astype(np.float64)  # get_activations' pred_arr is float64
        mu, sigma = np.mean(act, axis=0), np.cov(act, rowvar=False)
        np.savez_compressed(os.path.join(out_dir, name + ".npz"), mu=mu, sigma=sigma)
        stats.append((mu, sigma))
    ref = fid_score.calculate_frechet_distance(stats[0][0], stats[0][1], stats[1][0], stats[1][1])
    # the path pytorch-fid reads an .npz by (dims, model, device unused for a file)
    m1, s1 = fid_score.compute_statistics_of_path(ours_a, None, 50, 2048, "cpu")
    m2, s2 = fid_score.compute_statistics_of_path(ours_b, None, 50, 2048, "cpu")
    ours = fid_score.calculate_frechet_distance(m1, s1, m2, s2)
    with open(os.path.join(out_dir, "result.txt"), "w") as f:
        f.write(f"ref {ref!r}\nours {ours!r}\n")


def isc(logits_npy, splits, out):
    import torch
    from torch_fidelity.metric_isc import isc_features_to_metric

    logits = torch.from_numpy(np.load(logits_npy))
    m = isc_features_to_metric(logits, splits=int(splits), shuffle=False)
    with open(out, "w") as f:
        f.write(f"{m['inception_score_mean']!r} {m['inception_score_std']!r}\n")


def main():
    if len(sys.argv) == 7 and sys.argv[1] == "distance":
        distance(*sys.argv[2:])
    elif len(sys.argv) == 5 and sys.argv[1] == "isc":
        isc(*sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
