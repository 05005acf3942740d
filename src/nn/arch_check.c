/* Checks that hparams describe a network the reference could run (channel chains, skip
 * shapes, stride products, bounded sizes) and derives each level's channels and resolution. */
#include <math.h>

#include "nn/arch_internal.h"

static vd_status range_err(vd_err *err, const char *key, int i, int64_t v, int64_t lo, int64_t hi) {
    if (i < 0) return vd_errorf(err, VD_ERR_INVALID, "%s = %lld: must be in [%lld, %lld]", key,
                                (long long)v, (long long)lo, (long long)hi);
    return vd_errorf(err, VD_ERR_INVALID, "%s[%d] = %lld: must be in [%lld, %lld]", key, i,
                     (long long)v, (long long)lo, (long long)hi);
}

#define CHECK_RANGE(key, i, v, lo, hi)                                                 \
    do {                                                                                \
        if ((int64_t)(v) < (lo) || (int64_t)(v) > (hi)) return range_err(err, key, i, v, lo, hi); \
    } while (0)

/* int(c * ratio) as Python computes it: a double product, truncated. */
static int64_t trunc_mul(int64_t c, double ratio) {
    double v = (double)c * ratio;
    return v >= (double)VD_ARCH_MAX_CH * 4 ? (int64_t)VD_ARCH_MAX_CH * 4 : (int64_t)v;
}

typedef struct int_list {
    const char *key;
    const int *v;
    int lo, hi;
} int_list;

static vd_status check_ratios(const char *key, const double *r, int n, vd_err *err) {
    for (int i = 0; i < n; i++)
        if (!(r[i] > 0 && r[i] <= 64))
            return vd_errorf(err, VD_ERR_INVALID, "%s[%d] = %g: must be in (0, 64]", key, i, r[i]);
    return VD_OK;
}

static vd_status check_lists(const vd_hp_model *m, vd_err *err) {
    CHECK_RANGE("model.up_strides (length)", -1, m->n_up, 1, VD_MAX_LEVELS);
    CHECK_RANGE("model.down_strides (length)", -1, m->n_down, 1, VD_MAX_LEVELS);
    if (m->n_up != m->n_down)
        return vd_errorf(err, VD_ERR_INVALID,
                         "model.down_strides has %d entries but model.up_strides has %d: each "
                         "top-down level reads one bottom-up skip", m->n_down, m->n_up);
    const int_list lists[] = {
        {"model.up_strides", m->up_strides, 1, VD_ARCH_MAX_KERNEL},
        {"model.up_n_blocks_per_res", m->up_n_blocks_per_res, 0, VD_ARCH_MAX_REPEAT},
        {"model.up_n_blocks", m->up_n_blocks, 0, VD_ARCH_MAX_REPEAT},
        {"model.up_n_layers", m->up_n_layers, 0, VD_ARCH_MAX_REPEAT},
        {"model.up_filters", m->up_filters, 1, VD_ARCH_MAX_CH},
        {"model.up_kernel_size", m->up_kernel_size, 1, VD_ARCH_MAX_KERNEL},
        {"model.up_skip_filters", m->up_skip_filters, 1, VD_ARCH_MAX_CH},
        {"model.down_strides", m->down_strides, 1, VD_ARCH_MAX_KERNEL},
        {"model.down_n_blocks_per_res", m->down_n_blocks_per_res, 0, VD_ARCH_MAX_REPEAT},
        {"model.down_n_blocks", m->down_n_blocks, 0, VD_ARCH_MAX_REPEAT},
        {"model.down_n_layers", m->down_n_layers, 0, VD_ARCH_MAX_REPEAT},
        {"model.down_filters", m->down_filters, 1, VD_ARCH_MAX_CH},
        {"model.down_kernel_size", m->down_kernel_size, 1, VD_ARCH_MAX_KERNEL},
        {"model.down_latent_variates", m->down_latent_variates, 1, VD_ARCH_MAX_CH},
    };
    for (size_t k = 0; k < sizeof lists / sizeof lists[0]; k++)
        for (int i = 0; i < m->n_up; i++)
            CHECK_RANGE(lists[k].key, i, lists[k].v[i], lists[k].lo, lists[k].hi);
    vd_status s = check_ratios("model.up_mid_filters_ratio", m->up_mid_filters_ratio, m->n_up, err);
    if (!s) s = check_ratios("model.down_mid_filters_ratio", m->down_mid_filters_ratio, m->n_down, err);
    return s;
}

static vd_status check_io(const vd_hparams *hp, vd_arch_levels *lv, vd_err *err) {
    CHECK_RANGE("data.target_res", -1, hp->data.target_res, 1, VD_ARCH_MAX_RES);
    CHECK_RANGE("data.channels", -1, hp->data.channels, 1, 4);
    CHECK_RANGE("model.input_conv_filters", -1, hp->model.input_conv_filters, 1, VD_ARCH_MAX_CH);
    for (int k = 0; k < 2; k++) {
        CHECK_RANGE("model.input_kernel_size", k, hp->model.input_kernel_size[k], 1, VD_ARCH_MAX_KERNEL);
        CHECK_RANGE("model.output_kernel_size", k, hp->model.output_kernel_size[k], 1, VD_ARCH_MAX_KERNEL);
    }
    if (hp->data.dataset_source == VD_DATA_BINARIZED_MNIST) {
        lv->out_ch = 1;
        return VD_OK;
    }
    CHECK_RANGE("model.num_output_mixtures", -1, hp->model.num_output_mixtures, 1, 1024);
    lv->out_ch = hp->model.num_output_mixtures * (3 * hp->data.channels + 1);
    return VD_OK;
}

/* Bottom-up resolutions divide exactly; the top-down ones multiply back to target_res. */
static vd_status check_resolutions(const vd_hparams *hp, vd_arch_levels *lv, vd_err *err) {
    const vd_hp_model *m = &hp->model;
    int64_t r = hp->data.target_res;
    for (int i = 0; i < m->n_up; i++) {
        lv->up_res[i] = (int)r;
        if (r % m->up_strides[i])
            return vd_errorf(err, VD_ERR_INVALID,
                             "model.up_strides[%d] = %d does not divide the resolution %lld there "
                             "(data.target_res = %d)", i, m->up_strides[i], (long long)r,
                             hp->data.target_res);
        r /= m->up_strides[i];
    }
    lv->latent_res = (int)r;
    for (int i = 0; i < m->n_down; i++) {
        lv->down_res_in[i] = (int)r;
        r *= m->down_strides[i];
        if (r > hp->data.target_res)
            return vd_errorf(err, VD_ERR_INVALID,
                             "model.down_strides: the product up to index %d exceeds the product of "
                             "model.up_strides (they must be equal)", i);
        lv->down_res_out[i] = (int)r;
    }
    if (r != hp->data.target_res)
        return vd_errorf(err, VD_ERR_INVALID,
                         "model.down_strides: product %lld differs from the product of model.up_strides "
                         "%lld (they must be equal)", (long long)(r / lv->latent_res),
                         (long long)(hp->data.target_res / lv->latent_res));
    return VD_OK;
}

static vd_status check_mid(vd_err *err, const char *key, int i, int64_t c, double ratio, const char *what) {
    int64_t mid = trunc_mul(c, ratio);
    if (mid < 1 || mid > VD_ARCH_MAX_CH)
        return vd_errorf(err, VD_ERR_INVALID,
                         "%s[%d] = %g: the %s cell's bottleneck int(%lld * %g) = %lld must be in [1, %d]",
                         key, i, ratio, what, (long long)c, ratio, (long long)mid, VD_ARCH_MAX_CH);
    return VD_OK;
}

static vd_status check_up_channels(const vd_hparams *hp, vd_arch_levels *lv, vd_err *err) {
    const vd_hp_model *m = &hp->model;
    for (int i = 0; i < m->n_up; i++) {
        lv->in_up[i] = i ? m->up_filters[i - 1] : m->input_conv_filters;
        if (m->up_strides[i] == 1 && i + 1 < m->n_up && m->up_filters[i] != lv->in_up[i])
            return vd_errorf(err, VD_ERR_INVALID,
                             "model.up_filters[%d] = %d: level %d has stride 1 (no pool), so its "
                             "output keeps its %d input channels, which level %d reads",
                             i, m->up_filters[i], i, lv->in_up[i], i + 1);
        vd_status s = check_mid(err, "model.up_mid_filters_ratio", i, lv->in_up[i],
                                m->up_mid_filters_ratio[i], "bottom-up");
        if (s) return s;
    }
    return VD_OK;
}

static vd_status check_down_level(const vd_hparams *hp, vd_arch_levels *lv, int i, vd_err *err) {
    const vd_hp_model *m = &hp->model;
    int n = m->n_down, c = m->down_filters[i], up = n - 1 - i;
    lv->in_down[i] = i ? m->down_filters[i - 1] : m->down_filters[0];
    if (m->down_strides[i] == 1 && lv->in_down[i] != c)
        return vd_errorf(err, VD_ERR_INVALID,
                         "model.down_filters[%d] = %d: level %d has stride 1 (no unpool), so it "
                         "must keep its %d input channels", i, c, i, lv->in_down[i]);
    if (lv->down_res_out[i] != lv->up_res[up])
        return vd_errorf(err, VD_ERR_INVALID,
                         "model.down_strides[%d]: top-down level %d runs at %dx%d but reads the skip "
                         "of bottom-up level %d at %dx%d", i, i, lv->down_res_out[i],
                         lv->down_res_out[i], up, lv->up_res[up], lv->up_res[up]);
    int64_t skip = m->up_skip_filters[up];
    if (trunc_mul(c + skip, 0.5) != c)
        return vd_errorf(err, VD_ERR_INVALID,
                         "model.up_skip_filters[%d] = %lld: top-down level %d has %d channels and "
                         "its posterior halves concat(y, skip), so the skip needs %d channels",
                         up, (long long)skip, i, c, c);
    double r = m->down_mid_filters_ratio[i];
    vd_status s = check_mid(err, "model.down_mid_filters_ratio", i, c, r, "top-down");
    if (!s) s = check_mid(err, "model.down_mid_filters_ratio", i, c + skip, r * 0.5, "posterior");
    return s;
}

/* Exact table sizes, so the builder allocates once. */
static vd_status count_tables(const vd_hparams *hp, vd_arch_levels *lv, vd_err *err) {
    const vd_hp_model *m = &hp->model;
    int64_t blocks = 3, cells = 0, convs = 2, extra = 1; /* input conv, h0, output conv */
    for (int i = 0; i < m->n_up; i++) {
        int64_t nb = m->up_n_blocks_per_res[i] + 1;
        blocks += nb;
        cells += nb * m->up_n_blocks[i];
        convs += nb * m->up_n_blocks[i] * (m->up_n_layers[i] + 2) + 1 + (m->up_strides[i] > 1);
    }
    lv->n_td = 0;
    for (int i = 0; i < m->n_down; i++) {
        int64_t nb = m->down_n_blocks_per_res[i] + 1;
        lv->n_td += (int)nb;
        blocks += nb;
        cells += nb * (m->down_n_blocks[i] + 2);
        convs += nb * ((m->down_n_blocks[i] + 2) * (m->down_n_layers[i] + 2) + 3);
        convs += m->down_strides[i] > 1;
        extra += m->down_strides[i] > 1;
    }
    lv->n_blocks = blocks;
    lv->n_cells = cells;
    lv->n_convs = convs;
    lv->n_params = 2 * convs + extra;
    if (lv->n_params > VD_ARCH_MAX_TENSORS)
        return vd_errorf(err, VD_ERR_INVALID,
                         "model: the network would have %lld parameter tensors (at most %d); check "
                         "the *_n_blocks_per_res, *_n_blocks and *_n_layers lists",
                         (long long)lv->n_params, VD_ARCH_MAX_TENSORS);
    return VD_OK;
}

vd_status vd_arch_check(const vd_hparams *hp, vd_arch_levels *lv, vd_err *err) {
    vd_status s = check_lists(&hp->model, err);
    if (!s) s = check_io(hp, lv, err);
    if (!s) s = check_resolutions(hp, lv, err);
    if (!s) s = check_up_channels(hp, lv, err);
    for (int i = 0; !s && i < hp->model.n_down; i++) s = check_down_level(hp, lv, i, err);
    if (!s) s = count_tables(hp, lv, err);
    return s;
}
