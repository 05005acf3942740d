#!/usr/bin/python3
"""Writes a checkpoint in the reference implementation's layout (a torch.save dict: global_step,
model/EMA state_dicts, Adamax optimizer state keyed by parameter index, scheduler state) after a
few Adamax steps of the twin, and a case file with the trained weights' loss for tests/test_convert.c.

usage: make_ref_checkpoint.py CFG OUT.pt [--case CASE.safetensors] [--steps N] [--seed S]"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_case  # noqa: E402
import st_numpy  # noqa: E402
import vdvae_twin as twin  # noqa: E402


class Adamax(torch.optim.Optimizer):
    """The reference's Adamax semantics and per-parameter state ('step', 'exp_avg', 'exp_inf');
    a parameter without a gradient gets no state, as there."""

    def __init__(self, params, lr, betas, eps):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=0))

    @torch.no_grad()
    def step(self):
        for g in self.param_groups:
            b1, b2 = g["betas"]
            for p in g["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st.update(step=0, exp_avg=torch.zeros_like(p), exp_inf=torch.zeros_like(p))
                st["step"] += 1
                st["exp_avg"].mul_(b1).add_(p.grad, alpha=1 - b1)
                torch.max(st["exp_inf"].mul_(b2), p.grad.abs() + g["eps"], out=st["exp_inf"])
                p.addcdiv_(st["exp_avg"], st["exp_inf"], value=-g["lr"] / (1 - b1 ** st["step"]))


def train(hp, model, steps, seed, lr=1e-3, ema_rate=0.9):
    opt = Adamax(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
    ema = {k: v.clone() for k, v in model.state_dict().items()}
    gen = torch.Generator().manual_seed(seed + 10)
    for step in range(steps):
        _, x = make_case.make_images(hp, 2, gen)
        logits, posts, priors = model(x, generator=gen)
        loss = twin.compute_loss(hp, x, logits, posts, priors, step)
        opt.zero_grad()
        loss["total"].backward()
        opt.step()
        with torch.no_grad():
            for k, v in model.state_dict().items():
                ema[k].mul_(ema_rate).add_(v, alpha=1 - ema_rate)
    # the reference's scheduler: stepped at construction and after every training step
    sched = {"last_epoch": steps, "_step_count": steps + 1, "base_lrs": [lr], "_last_lr": [lr]}
    return {"global_step": steps - 1, "model_state_dict": model.state_dict(),
            "ema_model_state_dict": ema, "optimizer_state_dict": opt.state_dict(),
            "scheduler_state_dict": sched}


def case(hp, model, seed, step):
    """The trained model's loss on a fixed batch and fixed posterior noise."""
    gen = torch.Generator().manual_seed(seed + 1)
    u8, x = make_case.make_images(hp, 2, gen)
    eps = [torch.randn(s, generator=gen) for s in model.latent_shapes(2)]
    logits, posts, priors = model(x, eps)
    loss = twin.compute_loss(hp, x, logits, posts, priors, step)
    loss["total"].backward()
    tensors = make_case.case_tensors(model, u8, x, eps, logits, loss)
    return {k: v for k, v in tensors.items() if not k.startswith("grad.")}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cfg")
    ap.add_argument("out")
    ap.add_argument("--case")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    hp = twin.load_config(args.cfg)
    model = twin.build_model(hp, args.seed)
    torch.save(train(hp, model, args.steps, args.seed), args.out)
    if args.case:
        model.zero_grad()
        st_numpy.write(args.case, case(hp, model, args.seed, args.steps),
                       {"format": "vdvae-convert-case-1", "batch": 2, "step": args.steps})
    return 0


if __name__ == "__main__":
    sys.exit(main())
