#!/usr/bin/env python3
"""The PyTorch side of scripts/gpu-check.sh: seconds per training step and peak GPU memory of our
PyTorch twin of the model (tests/reference/vdvae_twin.py) on a config and batch, as the reference
trains it on a GPU: eager, TF32 on for matmuls and cuDNN, cudnn.benchmark on.

usage: torch_gpu_bench.py CFG (--batch B | --probe B1,B2 [--max-batch M] [--mem-fraction F])
                          [--steps N] [--warmup W] [--device cuda|cpu] [--seed S] [--json PATH]

A step is what `vdvae bench` times: gradients cleared, posterior noise drawn on the device,
forward, loss, backward, to the end of the device's work (torch.cuda.synchronize); no optimizer
update. W untimed warm-up steps first (cudnn.benchmark picks its algorithms in the first), then
the median of N timed steps. Peak memory is torch.cuda.max_memory_allocated (and _reserved, what
the caching allocator holds) over the timed steps: the steady state of training, without the
algorithm search's transient workspaces.

--probe B1,B2 finds the batch: one warm-up and one measured step at each of B1 < B2, a line
through their peak reserved memory, and the largest batch whose predicted peak stays under F
(default 0.88) of the GPU's memory, at most M; the timed run then uses it (0.85x of it again
after an out-of-memory, at most twice). Exit codes: 0 done, 2 usage or no CUDA, 3 out of memory."""

import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))

EXIT_OOM = 3


def fail(code, msg):
    print(f"torch_gpu_bench: {msg}", file=sys.stderr)
    sys.exit(code)


def oom_types(torch):
    # torch.OutOfMemoryError is 2.x's name; 1.13 has torch.cuda.OutOfMemoryError.
    return tuple(t for t in (getattr(torch, "OutOfMemoryError", None),
                             getattr(torch.cuda, "OutOfMemoryError", None)) if t is not None)


class Bench:
    """The twin on a device with its inputs for one batch size at a time."""

    def __init__(self, torch, twin, make_case, hp, device, seed):
        self.torch, self.twin, self.make_case, self.hp, self.dev = torch, twin, make_case, hp, device
        self.seed = seed
        self.model = twin.build_model(hp, seed=seed).to(device)
        self.params = list(self.model.parameters())
        self.x = None

    def set_batch(self, batch):
        self.free()  # the last batch's inputs, gradients and cached blocks
        _, x = self.make_case.make_images(self.hp, batch, self.torch.Generator().manual_seed(self.seed + 1))
        self.x = x.to(self.dev)
        self.shapes = self.model.latent_shapes(batch)

    def sync(self):
        if self.dev.type == "cuda":
            self.torch.cuda.synchronize()

    def step(self, t):
        """One training step (t: what the beta and gamma schedules see, as vdvae bench's
        vd_train_compute(t)); returns its seconds to the end of the device's work."""
        torch = self.torch
        self.sync()
        t0 = time.perf_counter()
        for p in self.params:
            p.grad = None  # what zero_grad() does by default: backward allocates them again
        eps = [torch.randn(s, device=self.dev) for s in self.shapes]
        logits, posts, priors = self.model(self.x, eps)
        loss = self.twin.compute_loss(self.hp, self.x, logits, posts, priors, step=t)
        loss["total"].backward()
        self.sync()
        self.last_loss = float(loss["total"])
        return time.perf_counter() - t0

    def reset_peak(self):
        if self.dev.type == "cuda":
            self.torch.cuda.empty_cache()  # the algorithm search's cached workspaces
            self.torch.cuda.reset_peak_memory_stats()

    def peak(self):
        """(allocated, reserved) bytes at most since reset_peak; peak RSS on the CPU."""
        if self.dev.type == "cuda":
            return self.torch.cuda.max_memory_allocated(), self.torch.cuda.max_memory_reserved()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
        return rss, rss

    def free(self):
        for p in self.params:
            p.grad = None
        self.x = None
        if self.dev.type == "cuda":
            self.torch.cuda.empty_cache()


def probe(b, batches, fraction, max_batch, oom):
    """The largest batch predicted to fit: peak reserved memory at two batches, a line through
    them (the activations grow with the batch, parameters and gradients do not). When the
    larger one runs out of memory the smaller is the answer; the smaller's error is raised."""
    torch = b.torch
    points, oom_msg = [], None
    for n in batches:
        try:
            b.set_batch(n)
            b.step(0)
            b.reset_peak()
            b.step(1)
        except oom as e:
            if not points:
                raise
            oom_msg = str(e).splitlines()[0]
            break
        alloc, reserved = b.peak()
        points.append((n, alloc, reserved))
        print(f"probe         batch {n}: peak {alloc / 2**20:.1f} MiB allocated, "
              f"{reserved / 2**20:.1f} MiB reserved", flush=True)
    b.free()  # outside the handler: the failed step's tensors are released by now
    if oom_msg is not None:
        fit = points[0][0]
        print(f"probe         batch {batches[1]}: out of memory ({oom_msg}); fits batch {fit}", flush=True)
        return points, None, None, fit, min(fit, max_batch) if max_batch else fit
    (n1, _, r1), (n2, _, r2) = points
    per_image = max((r2 - r1) / (n2 - n1), 1.0)
    fixed = r1 - per_image * n1
    total = torch.cuda.get_device_properties(b.dev).total_memory
    fit = max(int((fraction * total - fixed) // per_image), 1)
    print(f"probe         {per_image / 2**20:.1f} MiB per image + {fixed / 2**20:.1f} MiB; "
          f"{fraction:.2f} of {total / 2**30:.1f} GiB fits batch {fit}", flush=True)
    return points, per_image, fixed, fit, min(fit, max_batch) if max_batch else fit


def timed(b, batch, steps, warmup):
    b.set_batch(batch)
    for i in range(warmup):
        b.step(i)
    b.reset_peak()
    times = [b.step(warmup + i) for i in range(steps)]
    alloc, reserved = b.peak()
    return {"batch": batch, "step_seconds": statistics.median(times), "times": times,
            "peak_allocated_bytes": alloc, "peak_reserved_bytes": reserved, "loss": b.last_loss}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cfg")
    ap.add_argument("--batch", type=int)
    ap.add_argument("--probe", help="B1,B2: find the largest batch that fits (see above)")
    ap.add_argument("--max-batch", type=int, default=0, help="with --probe: at most this batch")
    ap.add_argument("--mem-fraction", type=float, default=0.88,
                    help="with --probe: share of the GPU's memory the batch may fill (default 0.88)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                    help="cpu: the same step on the CPU (to try this script without a GPU)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    if (args.batch is None) == (args.probe is None):
        ap.error("give one of --batch and --probe")
    if args.batch is not None and args.batch < 1 or args.steps < 1 or args.warmup < 1:
        ap.error("--batch, --steps and --warmup must be >= 1")
    probes = None
    if args.probe:
        try:
            probes = [int(v) for v in args.probe.split(",")]
        except ValueError:
            probes = []
        if len(probes) != 2 or not 1 <= probes[0] < probes[1]:
            ap.error("--probe takes two batch sizes B1,B2 with 1 <= B1 < B2")
        if args.device != "cuda":
            ap.error("--probe sizes a batch to the GPU's memory: --device cuda only")
        if not 0 < args.mem_fraction <= 1:
            ap.error("--mem-fraction must be in (0, 1]")

    try:
        import torch
    except ImportError as e:
        fail(2, f"PyTorch is not importable by {sys.executable}: {e}")
    if args.device == "cuda" and not torch.cuda.is_available():
        fail(2, f"no CUDA device visible to PyTorch {torch.__version__} "
                f"(built for CUDA {torch.version.cuda}); --device cpu runs the step on the CPU")
    import make_case
    import vdvae_twin as twin

    # As the reference trains: TF32 tensor-core math for fp32 convolutions and matmuls, cuDNN
    # picking the fastest algorithm per shape.
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    dev = torch.device(args.device)
    hp = twin.load_config(args.cfg)
    oom = oom_types(torch)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    b = Bench(torch, twin, make_case, hp, dev, args.seed)
    n_params = sum(p.numel() for p in b.params)
    out = {"config": args.cfg, "device": name, "torch": torch.__version__, "params": n_params,
           "steps": args.steps, "warmup": args.warmup}

    batch = args.batch
    try:
        if probes:
            points, per_image, fixed, fit, batch = probe(b, probes, args.mem_fraction, args.max_batch, oom)
            out.update({"probe": points, "probe_per_image_bytes": per_image,
                        "probe_fixed_bytes": fixed, "probe_fit_batch": fit})
    except oom as e:
        fail(EXIT_OOM, f"out of memory while probing batches {args.probe}: {str(e).splitlines()[0]}")
    tries = 3 if probes else 1
    for attempt in range(tries):
        msg = None
        try:
            res = timed(b, batch, args.steps, args.warmup)
        except oom as e:
            msg = f"out of memory at batch {batch}: {str(e).splitlines()[0]}"
        if msg is None:
            break
        b.free()
        if attempt + 1 == tries or batch == 1:
            fail(EXIT_OOM, msg)
        batch = max(1, int(batch * 0.85))
        print(f"note          {msg}; trying batch {batch}", flush=True)
    out.update(res)

    how = "eager, tf32 on, cudnn.benchmark on" if dev.type == "cuda" else "eager"
    print(f"{args.cfg}: pytorch twin {torch.__version__} on {name}, batch {batch}, "
          f"{args.steps} steps after {args.warmup} warm-up, {how}")
    print(f"step          {res['step_seconds']:.4f} s (median; forward + loss + backward)")
    print(f"images/s      {batch / res['step_seconds']:.2f}")
    if dev.type == "cuda":
        print(f"peak GPU memory {res['peak_allocated_bytes'] / 2**20:.1f} MiB allocated, "
              f"{res['peak_reserved_bytes'] / 2**20:.1f} MiB reserved")
    else:
        print(f"peak RSS      {res['peak_allocated_bytes'] / 1e6:.1f} MB")
    print(f"loss          {res['loss']:.5f}")
    print(f"params        {n_params}")
    if not math.isfinite(res["loss"]):
        fail(1, "the loss is not finite")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
