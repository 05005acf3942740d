"""PyTorch twin of the vdvae model (docs/model.md sections 2-4 and 6), written for the C side's
exactness check: same state_dict names, order and OIHW shapes as the reference, CPU only,
float32, every random draw injectable so C and PyTorch can be fed the same noise."""

import ast
import configparser
import math
import operator
from types import SimpleNamespace

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---- configuration ---------------------------------------------------------------------------

# Keys a .cfg may omit, with the reference's defaults. Architecture lists have none: a config
# that builds a model must spell them out.
DEFAULTS = {
    "data": {"num_bits": 8, "random_horizontal_flip": False},
    "model": {
        "stable_init": True, "initialize_prior_weights_as_zero": False, "use_1x1_conv": True,
        "distribution_base": "std", "output_distribution_base": "std",
        "gradient_smoothing_beta": 0.6931472, "output_gradient_smoothing_beta": 0.6931472,
        "use_residual_distribution": False, "num_output_mixtures": 10,
    },
    "loss": {
        "min_mol_logscale": -250.0, "variation_schedule": "Linear",
        "vae_beta_anneal_start": 21, "vae_beta_anneal_steps": 5000, "vae_beta_min": 1e-4,
        "vae_beta_activation_steps": 10000, "vae_beta_growth_rate": 1e-5,
        "use_gamma_schedule": True, "gamma_max_steps": 10000, "scaled_gamma": True,
    },
    "synthesis": {"output_temperature": 1.0, "temperature_settings": [1.0]},
}

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv}
_FUNCS = {"max": max, "min": min}


def _eval_node(node, where):
    """Python literal expressions as docs/model.md section 1 allows: nothing is executed."""
    if isinstance(node, ast.Expression):
        return _eval_node(node.body, where)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return {"True": True, "False": False, "None": None}.get(node.id, node.id)  # bare word
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_eval_node(e, where) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _eval_node(node.operand, where)
        return -v if isinstance(node.op, ast.USub) else +v
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)](_eval_node(node.left, where), _eval_node(node.right, where))
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS
            and not node.keywords):
        return _FUNCS[node.func.id](*[_eval_node(a, where) for a in node.args])
    raise ValueError(f"{where}: unsupported expression {ast.dump(node)}")


def parse_value(text, where="<value>"):
    return _eval_node(ast.parse(text.strip(), mode="eval"), where)


def load_config(path):
    """A .cfg file as nested namespaces (cfg.model.up_strides), defaults filled in."""
    cp = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=None)
    cp.optionxform = str  # keys are case-sensitive identifiers
    with open(path) as f:
        cp.read_file(f, source=path)
    sections = {name: dict(vals) for name, vals in DEFAULTS.items()}
    for sec in cp.sections():
        d = sections.setdefault(sec, {})
        for key, raw in cp.items(sec):
            d[key] = parse_value(raw, f"{path}: [{sec}] {key}")
    return SimpleNamespace(**{s: SimpleNamespace(**d) for s, d in sections.items()})


def n_top_down(hp):
    return sum(hp.model.down_n_blocks_per_res) + len(hp.model.down_strides)


def latent_res(hp):
    return hp.data.target_res // math.prod(hp.model.down_strides)


def is_binarized(hp):
    return hp.data.dataset_source == "binarized_mnist"


def effective_pixels(hp):
    """D of docs/model.md section 4: the KL (and Bernoulli) normaliser."""
    return (28 * 28 if is_binarized(hp) else hp.data.target_res ** 2) * hp.data.channels


def _pair(k):
    return (k, k) if isinstance(k, int) else tuple(k)


# ---- layers ----------------------------------------------------------------------------------


class Conv(nn.Conv2d):
    """Conv with TF-'same' padding, the odd pixel first (top/left) as the reference's
    same-padding helper splits it (ceil, floor); Xavier-uniform weights, zero bias."""

    def __init__(self, c_in, c_out, kernel, stride=1):
        kh, kw = _pair(kernel)
        sh, sw = _pair(stride)
        super().__init__(c_in, c_out, (kh, kw), (sh, sw), padding=0)
        ph, pw = kh - sh, kw - sw
        self.pads = ((pw + 1) // 2, pw // 2, (ph + 1) // 2, ph // 2)  # F.pad: l, r, t, b

    def reset_parameters(self):
        nn.init.xavier_uniform_(self.weight)
        nn.init.zeros_(self.bias)

    def forward(self, x):
        if any(self.pads):
            x = F.pad(x, self.pads)
        return super().forward(x)


class ResidualCell(nn.Module):
    """SiLU -> conv, repeated; the first conv is a plain torch Conv2d ('same' padding with the
    odd pixel last, PyTorch's default init) exactly as the reference builds it."""

    def __init__(self, n_layers, c_in, ratio, kernel, init_scale, residual=True, use_1x1=True,
                 out_ratio=1.0):
        super().__init__()
        assert not residual or out_ratio == 1
        self.residual = residual
        c_mid, c_out = int(c_in * ratio), int(c_in * out_ratio)
        k_end = (1, 1) if use_1x1 else _pair(kernel)
        layers = [nn.SiLU(), nn.Conv2d(c_in, c_mid, k_end, 1, padding="same")]
        for _ in range(n_layers):
            layers += [nn.SiLU(), Conv(c_mid, c_mid, kernel)]
        layers += [nn.SiLU(), Conv(c_mid, c_out, k_end)]
        with torch.no_grad():
            layers[-1].weight.mul_(init_scale)
        self.convs = nn.Sequential(*layers)

    def forward(self, x):
        y = self.convs(x)
        return x + y if self.residual else y


class Pool(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.ops = nn.Sequential(Conv(c_in, c_out, stride, stride), nn.LeakyReLU(0.1))

    def forward(self, x):
        return self.ops(x)


class Upsample(nn.Module):
    def __init__(self, stride):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        return F.interpolate(x, scale_factor=(self.stride, self.stride), mode="nearest")


class Unpool(nn.Module):
    """conv1x1 -> LeakyReLU -> nearest upsample -> + a trainable per-position bias. The bias is
    registered before ops so that it comes first in the state_dict, as in the reference."""

    def __init__(self, c_in, c_out, stride, res_out):
        super().__init__()
        self.scale_bias = nn.Parameter(torch.zeros(1, c_out, res_out, res_out))
        self.ops = nn.Sequential(Conv(c_in, c_out, 1), nn.LeakyReLU(0.1), Upsample(stride))

    def forward(self, x):
        return self.ops(x) + self.scale_bias


class GaussianLatent(nn.Module):
    """conv1x1 -> (mean, raw scale). stats() returns what the KL needs: [mean, std] for the
    'std' base, [mean, logstd] for 'logstd'; std() turns those into a standard deviation."""

    def __init__(self, c_in, n_variates, base, beta):
        super().__init__()
        self.projection = Conv(c_in, 2 * n_variates, 1)
        self.base, self.beta = base, beta

    def stats(self, x, prior=None):
        mean, raw = torch.chunk(self.projection(x), 2, dim=1)
        if self.base == "std":
            scale = F.softplus(raw, beta=self.beta)
            if prior is not None:
                mean, scale = mean + prior[0], scale * prior[1]
        elif self.base == "logstd":
            scale = raw
            if prior is not None:
                mean, scale = mean + prior[0], scale + prior[1]
        else:
            raise ValueError(f"distribution_base {self.base!r} unknown")
        return [mean, scale]

    def std(self, stats):
        return stats[1] if self.base == "std" else torch.exp(self.beta * stats[1])

    def sample(self, stats, eps, temperature=None):
        std = self.std(stats)
        if temperature is not None:
            std = std * temperature
        return eps * std + stats[0]


class LevelUp(nn.Module):
    def __init__(self, hp, i, stride, use_skip, c_in):
        super().__init__()
        m = hp.model
        scale = math.sqrt(1.0 / n_top_down(hp)) if m.stable_init else 1.0
        self.stride, self.use_skip = stride, use_skip
        self.residual_block = nn.Sequential(*[
            ResidualCell(m.up_n_layers[i], c_in, m.up_mid_filters_ratio[i], m.up_kernel_size[i],
                         scale, use_1x1=m.use_1x1_conv)
            for _ in range(m.up_n_blocks[i])])
        if use_skip:
            self.skip_projection = Conv(c_in, m.up_skip_filters[i], 1)
        if stride > 1:
            self.pool = Pool(c_in, m.up_filters[i], stride)

    def forward(self, x):
        x = self.residual_block(x)
        skip = self.skip_projection(x) if self.use_skip else x
        if self.stride > 1:
            x = self.pool(x)
        return x, skip


class LevelDown(nn.Module):
    def __init__(self, hp, i, stride, c_in, res_in):
        super().__init__()
        m = hp.model
        n_td = n_top_down(hp)
        filters, ratio, k, nl = (m.down_filters[i], m.down_mid_filters_ratio[i],
                                 m.down_kernel_size[i], m.down_n_layers[i])
        skip_ch = m.up_skip_filters[::-1][i]
        v = m.down_latent_variates[i]
        self.stride, self.residual_dist = stride, m.use_residual_distribution
        if stride > 1:
            self.unpool = Unpool(c_in, filters, stride, res_in * stride)
            c_in = filters
        scale = math.sqrt(1.0 / n_td) if m.stable_init else 1.0
        self.residual_block = nn.Sequential(*[
            ResidualCell(nl, c_in, ratio, k, scale, use_1x1=m.use_1x1_conv)
            for _ in range(m.down_n_blocks[i])])
        self.posterior_net = nn.Sequential(ResidualCell(
            nl, c_in + skip_ch, ratio * 0.5, k, 1.0, residual=False, use_1x1=m.use_1x1_conv,
            out_ratio=0.5))
        self.prior_net = nn.Sequential(ResidualCell(
            nl, c_in, ratio, k, 0.0 if m.initialize_prior_weights_as_zero else 1.0,
            residual=False, use_1x1=m.use_1x1_conv, out_ratio=2.0))
        beta = m.gradient_smoothing_beta
        self.prior_layer = GaussianLatent(c_in, v, m.distribution_base, beta)
        self.posterior_layer = GaussianLatent(c_in, v, m.distribution_base, beta)
        self.z_projection = Conv(v, filters, 1)
        with torch.no_grad():
            self.z_projection.weight.mul_(math.sqrt(1.0 / n_td))

    def _prior(self, y):
        if self.stride > 1:
            y = self.unpool(y)
        kl_residual, p_in = torch.chunk(self.prior_net(y), 2, dim=1)
        return y, kl_residual, self.prior_layer.stats(p_in)

    def forward(self, skip, y, eps, mask=None, prior_eps=None):
        """Posterior sampling with noise eps (B, V, H, W). With a variate mask (inference),
        masked-off variates take a prior sample drawn with prior_eps."""
        y, kl_residual, prior = self._prior(y)
        q = self.posterior_net(torch.cat([y, skip], dim=1))
        post = self.posterior_layer.stats(q, prior if self.residual_dist else None)
        z = self.posterior_layer.sample(post, eps)
        if mask is not None:
            m = torch.as_tensor(mask, dtype=z.dtype)[None, :, None, None]
            z = m * z + (1.0 - m) * self.prior_layer.sample(prior, prior_eps)
        y = y + kl_residual + self.z_projection(z)
        return self.residual_block(y), post, prior

    def sample_prior(self, y, eps, temperature):
        y, kl_residual, prior = self._prior(y)
        z = self.prior_layer.sample(prior, eps, temperature)
        y = y + kl_residual + self.z_projection(z)
        return self.residual_block(y), z


class BottomUp(nn.Module):
    def __init__(self, hp):
        super().__init__()
        m = hp.model
        c_in = [m.input_conv_filters] + list(m.up_filters[:-1])
        self.levels_up = nn.ModuleList()
        self.levels_up_downsample = nn.ModuleList()
        for i, stride in enumerate(m.up_strides):
            self.levels_up.append(nn.ModuleList([
                LevelUp(hp, i, 1, False, c_in[i]) for _ in range(m.up_n_blocks_per_res[i])]))
            self.levels_up_downsample.append(LevelUp(hp, i, stride, True, c_in[i]))
        self.input_conv = Conv(hp.data.channels, m.input_conv_filters, m.input_kernel_size)

    def forward(self, x):
        x = self.input_conv(x)
        skips = []
        for plain, with_skip in zip(self.levels_up, self.levels_up_downsample):
            for block in plain:
                x, _ = block(x)
            x, skip = with_skip(x)
            skips.append(skip)
        return skips[::-1]


class TopDown(nn.Module):
    def __init__(self, hp):
        super().__init__()
        m = hp.model
        r = latent_res(hp)
        self.trainable_h = nn.Parameter(torch.empty(1, m.down_filters[0], r, r))
        nn.init.kaiming_uniform_(self.trainable_h, nonlinearity="linear")
        c_in = [m.down_filters[0]] + list(m.down_filters[:-1])
        # levels_down before levels_down_upsample: the reference registers them in this order.
        self.levels_down = nn.ModuleList()
        self.levels_down_upsample = nn.ModuleList()
        for i, stride in enumerate(m.down_strides):
            self.levels_down_upsample.append(LevelDown(hp, i, stride, c_in[i], r))
            r *= stride
            self.levels_down.append(nn.ModuleList([
                LevelDown(hp, i, 1, m.down_filters[i], r)
                for _ in range(m.down_n_blocks_per_res[i])]))
        out_ch = 1 if is_binarized(hp) else m.num_output_mixtures * (3 * hp.data.channels + 1)
        self.output_conv = Conv(m.down_filters[-1], out_ch, m.output_kernel_size)

    def blocks(self):
        """(level, block) pairs in execution order; the block index is the position."""
        for i, (first, rest) in enumerate(zip(self.levels_down_upsample, self.levels_down)):
            yield i, first
            for block in rest:
                yield i, block

    def forward(self, skips, eps, masks=None, prior_eps=None):
        y = self.trainable_h.expand(skips[0].shape[0], -1, -1, -1)
        posts, priors = [], []
        for b, (i, block) in enumerate(self.blocks()):
            mask = masks[b] if masks is not None else None
            pe = prior_eps[b] if prior_eps is not None else None
            y, post, prior = block(skips[i], y, eps[b], mask, pe)
            posts.append(post)
            priors.append(prior)
        return self.output_conv(y), posts, priors

    def sample_prior(self, batch, temperatures, eps):
        """Generation; temperatures has one entry per level (len(down_strides)) as in the
        reference's synthesis, shared by the blocks of that level."""
        y = self.trainable_h.expand(batch, -1, -1, -1)
        zs = []
        for b, (i, block) in enumerate(self.blocks()):
            y, z = block.sample_prior(y, eps[b], temperatures[i])
            zs.append(z)
        return self.output_conv(y), zs


class VDVAE(nn.Module):
    def __init__(self, hp):
        super().__init__()
        self.hp = hp
        self.bottom_up = BottomUp(hp)
        self.top_down = TopDown(hp)

    def latent_shapes(self, batch):
        """(B, V, H, W) of each top-down block's latent, in execution order."""
        m, r, shapes = self.hp.model, latent_res(self.hp), []
        for i, stride in enumerate(m.down_strides):
            r *= stride
            shapes += [(batch, m.down_latent_variates[i], r, r)] * (1 + m.down_n_blocks_per_res[i])
        return shapes

    def forward(self, x, eps=None, masks=None, prior_eps=None, generator=None):
        """x: (B, C, H, W) in [-1, 1] (0/1 for binarized_mnist). eps: one tensor per top-down
        block (latent_shapes); drawn from N(0, 1) when None."""
        if eps is None:
            eps = [torch.randn(s, generator=generator) for s in self.latent_shapes(x.shape[0])]
        return self.top_down(self.bottom_up(x), eps, masks, prior_eps)


def build_model(hp, seed=None):
    if seed is not None:
        torch.manual_seed(seed)
    return VDVAE(hp)


# ---- preprocessing (docs/model.md section 4) -------------------------------------------------


def scale_pixels(v, num_bits):
    """uint8 values -> [-1, 1] after bit-depth reduction, as float64 (the reference uses numpy)."""
    step = 2 ** (8 - int(num_bits))
    q = torch.floor(torch.as_tensor(v, dtype=torch.float64) / step) * step
    return (q - 127.5) / 127.5


def pixel_range(hp):
    lo = scale_pixels(torch.tensor(0.0), hp.data.num_bits).item()
    hi = scale_pixels(torch.tensor(255.0), hp.data.num_bits).item()
    return lo, hi


# ---- losses ----------------------------------------------------------------------------------


def _mol_params(logits, hp):
    """Split output logits into mixture logits (B, M, H, W) and per-colour means, raw scales,
    coefficients, each (B, C, M, H, W)."""
    B, _, H, W = logits.shape
    M, C = hp.model.num_output_mixtures, hp.data.channels
    l = logits[:, M:].reshape(B, C, 3 * M, H, W)
    return logits[:, :M], l[:, :, :M], l[:, :, M:2 * M], torch.tanh(l[:, :, 2 * M:])


def _mol_scales(raw, hp):
    """(inv_std, log_scale) for the loss. The 'logstd' base's log_scale is the clamped raw value,
    not beta times it, as in the reference (it only reaches the rarely taken mid-bin branch)."""
    beta, floor = hp.model.output_gradient_smoothing_beta, hp.loss.min_mol_logscale
    if hp.model.output_distribution_base == "std":
        scales = torch.clamp(F.softplus(raw, beta=beta), min=math.exp(floor))
        return 1.0 / scales, torch.log(scales)
    log_scales = torch.clamp(raw, min=floor)
    return torch.exp(-beta * log_scales), log_scales


def _ar_means(means, coeffs, x):
    """Colour autoregression on the targets: mu_1 += c_0 x_0, mu_2 += c_1 x_0 + c_2 x_1."""
    if x.shape[1] == 1:
        return means
    assert x.shape[1] == 3, "DMoL supports 1 or 3 colour channels"
    mu1 = means[:, 1:2] + coeffs[:, 0:1] * x[:, 0:1]
    mu2 = means[:, 2:3] + coeffs[:, 1:2] * x[:, 0:1] + coeffs[:, 2:3] * x[:, 1:2]
    return torch.cat([means[:, 0:1], mu1, mu2], dim=1)


def dmol_nll_pixels(x, logits, hp):
    """-log p(x) per pixel (B, H, W), nats, for the discretised mixture of logistics."""
    mix_logits, means, raw_scales, coeffs = _mol_params(logits, hp)
    K = 2.0 ** hp.data.num_bits - 1.0
    lo, hi = pixel_range(hp)
    inv_std, log_scales = _mol_scales(raw_scales, hp)
    x = x.unsqueeze(2)  # B, C, 1, H, W
    centered = x - _ar_means(means, coeffs, x)
    plus, minus, mid = inv_std * (centered + 1 / K), inv_std * (centered - 1 / K), inv_std * centered
    cdf_delta = torch.sigmoid(plus) - torch.sigmoid(minus)
    log_mid = mid - log_scales - 2.0 * F.softplus(mid) - math.log(K / 2)
    inner = torch.where(cdf_delta > 1e-5, torch.log(torch.clamp(cdf_delta, min=1e-12)), log_mid)
    xb = x.expand_as(centered)
    log_probs = torch.where(xb == lo, plus - F.softplus(plus),
                            torch.where(xb == hi, -F.softplus(minus), inner))
    log_probs = log_probs.sum(dim=1) + F.log_softmax(mix_logits, dim=1)  # B, M, H, W
    return -torch.logsumexp(log_probs, dim=1)


def bernoulli_nll_pixels(x, logits):
    """-log p(x) per pixel of the centre 28x28 crop (B, 1, 28, 28), nats."""
    x, logits = x[:, :, 2:30, 2:30], logits[:, :, 2:30, 2:30]
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none")


def kl_elements(post, prior, hp):
    """KL(q(z|x) || p(z)) per element (B, V, H, W), nats, from the stats both layers return."""
    if hp.model.distribution_base == "std":
        term1 = (post[0] - prior[0]) / prior[1]
        term2 = post[1] / prior[1]
    else:
        beta = hp.model.gradient_smoothing_beta
        inv_q = torch.exp(-beta * prior[1])
        term1 = (post[0] - prior[0]) * inv_q
        term2 = torch.exp(beta * post[1]) * inv_q
    return 0.5 * (term1 * term1 + term2 * term2) - 0.5 - torch.log(term2)


def beta_schedule(hp, step):
    """Weight of the KL term. 'Linear' divides by start + steps as the reference does."""
    L = hp.loss
    if L.variation_schedule == "None":
        return 1.0
    if L.variation_schedule == "Linear":
        t = (step - L.vae_beta_anneal_start) / (L.vae_beta_anneal_start + L.vae_beta_anneal_steps)
        return float(min(max(t, L.vae_beta_min), 1.0))
    if L.variation_schedule == "Logistic":
        return 1.0 / (1.0 + math.exp(-L.vae_beta_growth_rate * (step - L.vae_beta_activation_steps)))
    raise ValueError(f"variation_schedule {L.variation_schedule!r} unknown")


def compute_loss(hp, x, logits, posts, priors, step, batch=None):
    """The training objective and what it is made of. Per-element terms are float32 like the C
    side; the sums over pixels and the scalar arithmetic are float64 so that the twin's values
    do not depend on PyTorch's float32 summation order. batch: the normalising batch size
    (the reference's global_batch_size), x.shape[0] by default."""
    B = batch or x.shape[0]
    D = effective_pixels(hp)
    if is_binarized(hp):
        nll = bernoulli_nll_pixels(x, logits).double().sum()
        recon = nll / (B * D)
        recon_report = nll / B  # nats per image
    else:
        nll = dmol_nll_pixels(x, logits, hp).double().sum()
        recon = nll / (B * hp.data.target_res ** 2 * hp.data.channels)
        recon_report = recon / math.log(2.0)  # bits per dim
    kls, kl_avg_bits = [], []
    for post, prior in zip(posts, priors):
        e = kl_elements(post, prior, hp).double()
        kls.append(e.sum() / (B * D))
        kl_avg_bits.append(e.sum() / (e[0].numel() * B * math.log(2.0)))
    kls_t = torch.stack(kls)
    n = len(kls)
    if hp.loss.use_gamma_schedule and step <= hp.loss.gamma_max_steps:
        a = torch.stack(kl_avg_bits) * math.log(2.0) if hp.loss.scaled_gamma else kls_t
        alpha = (n * a / a.sum()).detach()
    else:
        alpha = torch.ones(n, dtype=torch.float64, device=kls_t.device)
    beta = beta_schedule(hp, step)
    kl_term = beta * (alpha * kls_t).sum()
    kl_bits = kls_t.sum() / math.log(2.0)
    if is_binarized(hp):
        kl_report = kl_bits * math.log(2.0) * D  # nats per image, as the reference reports
    else:
        kl_report = kl_bits
    return {
        "total": recon + kl_term, "recon": recon, "kl": kl_term, "beta": beta,
        "kl_blocks": kls_t, "kl_avg_bits": torch.stack(kl_avg_bits), "alpha": alpha,
        "nelbo": recon_report + kl_report,
        "nelbo_unit": "nats/image" if is_binarized(hp) else "bits/dim",
    }


# ---- sampling (docs/model.md section 6) ------------------------------------------------------


def sample_mol(logits, hp, u_mix=None, u_logistic=None, temperature=None, generator=None):
    """One image per logits map: Gumbel-max picks a mixture per pixel from logits / T, then a
    logistic sample (scale times T) with the colour autoregression, clamped to the pixel range.
    u_mix (B, M, H, W) and u_logistic (B, C, H, W) are uniforms in (0, 1); drawn in
    [1e-5, 1 - 1e-5] when None."""
    T = hp.synthesis.output_temperature if temperature is None else temperature
    mix_logits, means, raw_scales, coeffs = _mol_params(logits, hp)
    beta = hp.model.output_gradient_smoothing_beta
    if hp.model.output_distribution_base == "std":
        scales = torch.clamp(F.softplus(raw_scales, beta=beta), min=math.exp(hp.loss.min_mol_logscale))
    else:
        scales = torch.exp(beta * torch.clamp(raw_scales, min=hp.loss.min_mol_logscale))

    def uniform(shape):
        return torch.rand(shape, generator=generator) * (1 - 2e-5) + 1e-5

    u_mix = uniform(mix_logits.shape) if u_mix is None else u_mix
    pick = torch.argmax(mix_logits / T - torch.log(-torch.log(u_mix)), dim=1)
    onehot = F.one_hot(pick, mix_logits.shape[1]).permute(0, 3, 1, 2).unsqueeze(1).to(logits.dtype)
    mean, scale, coeff = ((t * onehot).sum(dim=2) for t in (means, scales, coeffs))
    u_logistic = uniform(mean.shape) if u_logistic is None else u_logistic
    x = mean + scale * T * (torch.log(u_logistic) - torch.log(1.0 - u_logistic))
    lo, hi = pixel_range(hp)
    x0 = torch.clamp(x[:, 0:1], lo, hi)
    if x.shape[1] == 1:
        return x0
    x1 = torch.clamp(x[:, 1:2] + coeff[:, 0:1] * x0, lo, hi)
    x2 = torch.clamp(x[:, 2:3] + coeff[:, 1:2] * x0 + coeff[:, 2:3] * x1, lo, hi)
    return torch.cat([x0, x1, x2], dim=1)


def sample_bernoulli(logits, u=None, generator=None):
    """0/1 pixels of the centre 28x28 crop: 1 where u < sigmoid(logits)."""
    probs = torch.sigmoid(logits[:, :, 2:30, 2:30])
    u = torch.rand(probs.shape, generator=generator) if u is None else u
    return (u < probs).to(logits.dtype)


def level_temperatures(setting, n_levels):
    """One temperature per level from a temperature_settings entry: a float, a list, or
    ('linear', first, last) meaning first + (last - first) * i / n_levels."""
    if isinstance(setting, (int, float)):
        return [float(setting)] * n_levels
    if isinstance(setting, list):
        assert len(setting) == n_levels
        return [float(t) for t in setting]
    if isinstance(setting, tuple) and len(setting) == 3 and setting[0] == "linear":
        first, last = setting[1], setting[2]
        return [first + (last - first) * i / n_levels for i in range(n_levels)]
    raise ValueError(f"temperature setting {setting!r} not understood")
