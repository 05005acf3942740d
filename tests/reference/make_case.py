#!/usr/bin/python3
"""Writes one reference case for the C side: the twin's weights, an input batch, the posterior
noise, the losses and every parameter gradient of one training step, in one safetensors file.

usage: make_case.py CFG OUT.safetensors [--batch B] [--seed S] [--step T] [--sharp]"""

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_numpy  # noqa: E402
import vdvae_twin as twin  # noqa: E402

FORMAT = "vdvae-twin-case-1"

# What each entry means; stored in the file so that it describes itself.
KEYS_DOC = (
    "model.<p>: parameter p (state_dict name, OIHW / as in PyTorch), float32; "
    "grad.<p>: d loss.total / d p; "
    "input: NHWC float32 model input ([-1,1] after num_bits reduction; 0/1 for binarized_mnist); "
    "input.u8: NHWC uint8 pixels before preprocessing (binarized_mnist: 0/1, zero-padded to 32x32); "
    "eps.<b>: NHWC N(0,1) posterior noise of top-down block b (execution order): z = mean + std * eps; "
    "logits: NHWC output_conv output; "
    "loss.total = loss.recon + loss.kl; loss.recon: nats/dim (Bernoulli: over the 28x28 crop); "
    "loss.kl = loss.beta * sum_b gamma.<b> * kl.<b>; kl.<b>: block KL summed over (V,H,W,batch) / (B*D), nats; "
    "kl_avg_bits.<b>: per-element mean KL in bits; gamma.<b>: KL-balancing weight (1 when off); "
    "loss.nelbo_bits: reported NELBO (unit in nelbo_unit); all scalars are float64 shape [1]; "
    "gen.*: prior sampling at gen.temps (one per level) with noise gen.eps.<b>, its gen.logits, "
    "and output sampling with uniforms gen.u into gen.images (see generation_tensors)"
)


def _nhwc(t):
    return t.detach().permute(0, 2, 3, 1).contiguous().numpy()


def make_images(hp, batch, gen):
    """(uint8 NHWC pixels as the data files hold them, NCHW float32 model input)."""
    res, ch = hp.data.target_res, hp.data.channels
    if twin.is_binarized(hp):
        u8 = torch.zeros(batch, 32, 32, 1, dtype=torch.uint8)
        u8[:, 2:30, 2:30] = (torch.rand(batch, 28, 28, 1, generator=gen) < 0.3).to(torch.uint8)
        x = u8.to(torch.float32)
    else:
        u8 = torch.randint(0, 256, (batch, res, res, ch), generator=gen, dtype=torch.uint8)
        x = twin.scale_pixels(u8, hp.data.num_bits).to(torch.float32)
    return u8, x.permute(0, 3, 1, 2).contiguous()


def sharpen_output(model, hp):
    """Make the output scales small (raw-scale bias -8) so that the DMoL's mid-bin branch
    (cdf_delta <= 1e-5) is taken by many pixels, next to the ordinary and edge branches."""
    if twin.is_binarized(hp):
        return
    M, C = hp.model.num_output_mixtures, hp.data.channels
    with torch.no_grad():
        for c in range(C):
            start = M + c * 3 * M + M
            model.top_down.output_conv.bias[start:start + M] = -8.0


def run_case(hp, batch, seed, step, sharp):
    model = twin.build_model(hp, seed)
    if sharp:
        sharpen_output(model, hp)
    gen = torch.Generator().manual_seed(seed + 1)
    u8, x = make_images(hp, batch, gen)
    eps = [torch.randn(s, generator=gen) for s in model.latent_shapes(batch)]
    logits, posts, priors = model(x, eps)
    loss = twin.compute_loss(hp, x, logits, posts, priors, step)
    loss["total"].backward()
    return model, u8, x, eps, logits, loss


def generation_tensors(model, hp, batch, seed):
    """Prior sampling at per-level temperatures ('linear', 0.7, 1.0) and output sampling, all
    noise given: gen.eps.<b> (NHWC), gen.temps (one per level), gen.logits, gen.u (the
    sampler's uniforms in the C layout: B*H*W*M Gumbel draws then B*H*W*C logistic draws,
    or B*28*28 Bernoulli draws), gen.images (NHWC)."""
    gen = torch.Generator().manual_seed(seed + 2)
    n_levels = len(hp.model.down_strides)
    temps = twin.level_temperatures(("linear", 0.7, 1.0), n_levels)
    eps = [torch.randn(s, generator=gen) for s in model.latent_shapes(batch)]
    with torch.no_grad():
        logits, _ = model.top_down.sample_prior(batch, temps, eps)
        if twin.is_binarized(hp):
            u = torch.rand((batch, 1, 28, 28), generator=gen) * (1 - 2e-5) + 1e-5
            images = twin.sample_bernoulli(logits, u=u)
            u_flat = _nhwc(u).ravel()
        else:
            m, c, (b, _, h, w) = hp.model.num_output_mixtures, hp.data.channels, logits.shape
            u_mix = torch.rand((b, m, h, w), generator=gen) * (1 - 2e-5) + 1e-5
            u_log = torch.rand((b, c, h, w), generator=gen) * (1 - 2e-5) + 1e-5
            images = twin.sample_mol(logits, hp, u_mix=u_mix, u_logistic=u_log, temperature=1.0)
            u_flat = np.concatenate([_nhwc(u_mix).ravel(), _nhwc(u_log).ravel()])
    out = {"gen.temps": np.array(temps, dtype=np.float32), "gen.logits": _nhwc(logits),
           "gen.u": u_flat.astype(np.float32), "gen.images": _nhwc(images)}
    for i, e in enumerate(eps):
        out[f"gen.eps.{i}"] = _nhwc(e)
    return out


def case_tensors(model, u8, x, eps, logits, loss):
    def scalar(v):
        return np.array([float(v)], dtype=np.float64)

    out = {"input": _nhwc(x), "input.u8": u8.numpy(), "logits": _nhwc(logits)}
    for name, p in model.state_dict().items():
        out[f"model.{name}"] = p.detach().numpy().astype(np.float32)
    for name, p in model.named_parameters():
        # None: the parameter does not reach the loss (a pool on the deepest bottom-up level)
        g = torch.zeros_like(p) if p.grad is None else p.grad
        out[f"grad.{name}"] = g.detach().numpy().astype(np.float32)
    for b, e in enumerate(eps):
        out[f"eps.{b}"] = _nhwc(e)
    for key in ("total", "recon", "kl", "beta"):
        out[f"loss.{key}"] = scalar(loss[key])
    out["loss.nelbo_bits"] = scalar(loss["nelbo"])
    for b in range(len(eps)):
        out[f"kl.{b}"] = scalar(loss["kl_blocks"][b])
        out[f"kl_avg_bits.{b}"] = scalar(loss["kl_avg_bits"][b])
        out[f"gamma.{b}"] = scalar(loss["alpha"][b])
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cfg")
    ap.add_argument("out")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--step", type=int, default=5,
                    help="training step the beta/gamma schedules see (default 5)")
    ap.add_argument("--sharp", action="store_true",
                    help="small output scales: exercise the DMoL mid-bin branch")
    args = ap.parse_args(argv)
    if args.batch < 1:
        ap.error("--batch must be >= 1")

    torch.set_num_threads(1)  # reproducible summation order, and the suite runs on 2 cores
    hp = twin.load_config(args.cfg)
    t0 = time.time()
    model, u8, x, eps, logits, loss = run_case(hp, args.batch, args.seed, args.step, args.sharp)
    tensors = case_tensors(model, u8, x, eps, logits, loss)
    tensors.update(generation_tensors(model, hp, args.batch, args.seed))
    meta = {
        "format": FORMAT, "config": args.cfg, "config_name": os.path.basename(args.cfg),
        "config_text": open(args.cfg).read(),
        "step": args.step, "batch": args.batch, "seed": args.seed, "sharp": int(args.sharp),
        "dataset_source": hp.data.dataset_source, "n_blocks": len(eps),
        "n_params": len(model.state_dict()), "nelbo_unit": loss["nelbo_unit"],
        "layout": "activations NHWC, weights OIHW", "keys": KEYS_DOC,
        "torch": torch.__version__,
    }
    st_numpy.write(args.out, tensors, meta)
    print(f"{args.out}: {len(tensors)} tensors, loss {float(loss['total']):.6f}, "
          f"{time.time() - t0:.2f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
