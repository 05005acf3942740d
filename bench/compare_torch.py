#!/usr/bin/python3
"""Side by side: seconds per training step and peak RSS of `vdvae bench` and of our PyTorch twin
(tests/reference/vdvae_twin.py) on the same config, batch and thread count, random data.

usage: compare_torch.py CFG --batch B --threads T [--steps N] [--precision fp32|bf16]
                        [--checkpoint] [--vdvae PATH] [--python PY]

A step is forward, loss and backward (no optimizer update) on both sides; each side runs in
its own process so that the peak RSS figures are separate. Median of N timed steps after
one untimed warm-up step. --precision bf16 runs our convolutions in bf16 (run.precision)
and the twin's forward under torch.autocast("cpu", torch.bfloat16), PyTorch's own mixed
precision; --checkpoint sets run.checkpoint_activations on our side and wraps each of the
twin's blocks in torch.utils.checkpoint."""

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE = os.path.join(HERE, "..", "tests", "reference")


def checkpoint_blocks(model, twin):
    """Each bottom-up and top-down block recomputes its internals in backward."""
    from torch.utils.checkpoint import checkpoint

    def wrap(f):
        return lambda *a: checkpoint(f, *a, use_reentrant=False)

    for mod in model.modules():
        if isinstance(mod, (twin.LevelUp, twin.LevelDown)):
            mod.forward = wrap(mod.forward)


def torch_child(cfg, batch, threads, steps, precision, ckpt):
    """Runs in the child process: times the twin's steps, prints one JSON line."""
    import contextlib

    import torch

    sys.path.insert(0, REFERENCE)
    import make_case
    import vdvae_twin as twin

    torch.set_num_threads(threads)
    hp = twin.load_config(cfg)
    model = twin.build_model(hp, seed=0)
    if ckpt:
        checkpoint_blocks(model, twin)
    _, x = make_case.make_images(hp, batch, torch.Generator().manual_seed(1))
    times, loss = [], None
    for s in range(steps + 1):
        t0 = time.perf_counter()
        model.zero_grad()
        amp = (torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16"
               else contextlib.nullcontext())
        with amp:
            logits, posts, priors = model(x)
        logits = logits.float()
        loss = twin.compute_loss(hp, x, logits, posts, priors, step=s + 1)
        loss["total"].backward()
        if s > 0:
            times.append(time.perf_counter() - t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    n_params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"step_seconds": sorted(times)[len(times) // 2], "peak_rss_bytes": rss,
                      "loss": float(loss["total"]), "params": n_params,
                      "torch": torch.__version__}))


def run_torch(args):
    cmd = [args.python, os.path.abspath(__file__), args.cfg, "--batch", str(args.batch),
           "--threads", str(args.threads), "--steps", str(args.steps), "--precision", args.precision,
           "--child"] + (["--checkpoint"] if args.checkpoint else [])
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"compare_torch: the PyTorch step failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_ours(args):
    cmd = [args.vdvae, "bench", args.cfg, "--batch", str(args.batch), "--threads", str(args.threads),
           "--steps", str(args.steps), "--set", f"run.precision={args.precision}",
           "--set", f"run.checkpoint_activations={args.checkpoint}"]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"compare_torch: {' '.join(cmd)} failed:\n{out.stdout}{out.stderr}")
    step = re.search(r"^step\s+([0-9.eE+-]+) s", out.stdout, re.M)
    rss = re.search(r"^peak RSS\s+([0-9.eE+-]+) MB", out.stdout, re.M)
    loss = re.search(r"^loss\s+(\S+)", out.stdout, re.M)
    if not step or not rss:
        sys.exit(f"compare_torch: cannot read vdvae bench's output:\n{out.stdout}")
    return {"step_seconds": float(step.group(1)), "peak_rss_bytes": float(rss.group(1)) * 1e6,
            "loss": float(loss.group(1)) if loss else float("nan")}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cfg")
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    ap.add_argument("--checkpoint", action="store_true", help="activation checkpointing per block")
    ap.add_argument("--vdvae", default=os.path.join("build", "vdvae"),
                    help="our CLI (default build/vdvae)")
    ap.add_argument("--python", default="/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable,
                    help="interpreter with torch for the PyTorch side (default /usr/bin/python3)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.batch < 1 or args.threads < 1 or args.steps < 1:
        ap.error("--batch, --threads and --steps must be >= 1")
    if args.child:
        return torch_child(args.cfg, args.batch, args.threads, args.steps, args.precision, args.checkpoint)
    ours = run_ours(args)
    ref = run_torch(args)
    name = os.path.basename(args.cfg)
    ck = ", activation checkpointing" if args.checkpoint else ""
    print(f"{name}: batch {args.batch}, {args.threads} threads, median of {args.steps} steps, {args.precision}{ck}")
    print(f"{'':10} {'s/step':>9} {'peak RSS':>10} {'loss':>10}")
    for label, r in (("pytorch", ref), ("vdvae", ours)):
        print(f"{label:10} {r['step_seconds']:9.3f} {r['peak_rss_bytes'] / 1e9:8.2f} GB {r['loss']:10.5f}")
    print(f"speed-up  {ref['step_seconds'] / ours['step_seconds']:.2f}x (pytorch s/step / vdvae s/step); "
          f"memory ratio {ours['peak_rss_bytes'] / ref['peak_rss_bytes']:.2f} (vdvae / pytorch); "
          f"torch {ref['torch']}, {ref['params']} params")
    return 0


if __name__ == "__main__":
    sys.exit(main())
