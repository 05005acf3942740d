/* The FID Inception-v3 network as op calls: pytorch-fid's InceptionV3 up to pool3, with its
 * FIDInception blocks (average pools that do not count pads, max pool in Mixed_7c), and the
 * fc to 1008 logits. One walk of the architecture plans at open (the convolution table, the
 * memory of every activation for the batch) and runs each forward, so the two cannot differ. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fid/inception.h"
#include "fid/inception_internal.h"

#define FID_SIDE 299      /* the network's input, as pytorch-fid resizes to */
#define FID_MAX_LAYERS 96 /* 94 BasicConv2d and the fc */

/* The memory activations live in: the caller's images, the resized input, the stream between
 * blocks (ping-pong A/B), two temporaries inside a block, and the two outputs. */
enum { SLOT_IMAGES, SLOT_INPUT, SLOT_A, SLOT_B, SLOT_T1, SLOT_T2, SLOT_POOL3, SLOT_LOGITS, SLOTS };

/* Where an activation lives: channels [c0, c0 + c) of h x w pixels ld floats apart in a slot
 * (n is the run's). The plan only names places, so no pointer exists before its memory. */
typedef struct place {
    int slot, h, w, c, c0, ld;
} place;

struct vd_inception {
    vd_backend *be;
    int batch, h, w, c;
    bool resize; /* the images are not 299 x 299 already */
    fid_layer layers[FID_MAX_LAYERS];
    int n_layers;
    float *weights;
    int64_t slot_floats[SLOTS]; /* per image: the most any place in the slot needs */
    float *slot[SLOTS];
    /* the walk */
    bool running; /* false: planning */
    int next;     /* running: the layer the next conv is */
    int n;        /* running: images */
    int cur;      /* the stream's slot, A or B */
};

static int out_size(int in, int k, int stride, int pad) {
    return (in + 2 * pad - k) / stride + 1;
}

/* An activation of h x w x c filling a slot (its size recorded while planning). */
static place at(vd_inception *net, int slot, int h, int w, int c) {
    int64_t floats = (int64_t)h * w * c;
    if (!net->running && floats > net->slot_floats[slot]) net->slot_floats[slot] = floats;
    return (place){slot, h, w, c, 0, c};
}

/* The next stream activation: the other of A and B than the block's input. */
static place stream(vd_inception *net, int h, int w, int c) {
    net->cur = net->cur == SLOT_A ? SLOT_B : SLOT_A;
    return at(net, net->cur, h, w, c);
}

/* Channels [c0, c0 + c) of p: concatenation is each branch writing its own. */
static place channels(place p, int c0, int c) {
    p.c0 += c0;
    p.c = c;
    return p;
}

static vd_tensor tensor(const vd_inception *net, place p) {
    vd_tensor t = vd_tensor_make(net->slot[p.slot], net->n, p.h, p.w, p.ld);
    return vd_tensor_channels(t, p.c0, p.c);
}

static void record(vd_inception *net, const char *name, place x, place y, int kh, int kw,
                   int stride, int ph, int pw, bool linear) {
    assert(net->n_layers < FID_MAX_LAYERS);
    fid_layer *l = &net->layers[net->n_layers++];
    snprintf(l->name, sizeof l->name, "%s", name);
    l->cv = (vd_conv_desc){x.c, y.c, kh, kw, stride, ph, pw, ph, pw, VD_CONV_PRE_NONE, false};
    /* the image's first conv has three input channels in the file whatever the images have */
    bool image = x.slot == SLOT_IMAGES || x.slot == SLOT_INPUT;
    l->c_in_file = image ? 3 : x.c;
    l->linear = linear;
}

/* The layer the walk has reached, as recorded. */
static const fid_layer *next_layer(vd_inception *net, const char *name) {
    assert(net->next < net->n_layers);
    const fid_layer *l = &net->layers[net->next++];
    assert(!strcmp(l->name, name));
    (void)name;
    return l;
}

/* BasicConv2d `name`: y = relu(bn(conv(x))), the bn folded at load; pads ph rows and pw
 * columns on both sides. */
static void conv(vd_inception *net, const char *name, place x, place y, int kh, int kw, int stride,
                 int ph, int pw) {
    assert(y.h == out_size(x.h, kh, stride, ph) && y.w == out_size(x.w, kw, stride, pw));
    if (!net->running) {
        record(net, name, x, y, kh, kw, stride, ph, pw, false);
        return;
    }
    const fid_layer *l = next_layer(net, name);
    vd_backend *be = net->be;
    vd_tensor xt = tensor(net, x), yt = tensor(net, y);
    /* ReLU as LeakyReLU of slope 0 (negatives may become -0.0 where torch's relu gives +0.0,
     * which no later sum, max or product tells apart), fused where the backend can. */
    vd_backend_conv_fwd_act(be, &l->cv, VD_ACT_LEAKY_RELU, 0.0f, &xt, net->weights + l->w_off,
                            net->weights + l->b_off, &yt);
}

/* fc: y [1 x 1 x c_out] = W x on pool3 [1 x 1 x 2048], a 1x1 convolution without fc.bias: the
 * Inception Score of the 2015 graph, and torch-fidelity's, reads these "unbiased" logits. */
static void fc(vd_inception *net, place x, place y) {
    if (!net->running) {
        record(net, "fc", x, y, 1, 1, 1, 0, 0, true);
        return;
    }
    const fid_layer *l = next_layer(net, "fc");
    vd_tensor xt = tensor(net, x), yt = tensor(net, y);
    net->be->i->conv_fwd(net->be, &l->cv, &xt, net->weights + l->w_off, NULL, &yt);
}

static void pool(vd_inception *net, vd_pool_kind kind, int kh, int kw, int stride, int pad,
                 place x, place y) {
    assert(y.h == out_size(x.h, kh, stride, pad) && y.w == out_size(x.w, kw, stride, pad));
    if (!net->running) return;
    vd_pool_desc p = {kind, kh, kw, stride, pad, pad, pad, pad};
    vd_tensor xt = tensor(net, x), yt = tensor(net, y);
    net->be->i->pool_fwd(net->be, &p, &xt, &yt);
}

/* "<block>.<branch>" into buf (the state_dict prefix of a block's conv). */
static const char *sub(char buf[FID_NAME_MAX], const char *block, const char *branch) {
    snprintf(buf, FID_NAME_MAX, "%s.%s", block, branch);
    return buf;
}

/* Conv2d_1a .. maxpool2: 299 x 299 x 3 to 35 x 35 x 192. */
static place stem(vd_inception *net, place x) {
    place a = stream(net, out_size(x.h, 3, 2, 0), out_size(x.w, 3, 2, 0), 32);
    conv(net, "Conv2d_1a_3x3", x, a, 3, 3, 2, 0, 0);
    place b = stream(net, a.h - 2, a.w - 2, 32);
    conv(net, "Conv2d_2a_3x3", a, b, 3, 3, 1, 0, 0);
    place c = stream(net, b.h, b.w, 64);
    conv(net, "Conv2d_2b_3x3", b, c, 3, 3, 1, 1, 1);
    place d = stream(net, out_size(c.h, 3, 2, 0), out_size(c.w, 3, 2, 0), 64);
    pool(net, VD_POOL_MAX, 3, 3, 2, 0, c, d);
    place e = stream(net, d.h, d.w, 80);
    conv(net, "Conv2d_3b_1x1", d, e, 1, 1, 1, 0, 0);
    place f = stream(net, e.h - 2, e.w - 2, 192);
    conv(net, "Conv2d_4a_3x3", e, f, 3, 3, 1, 0, 0);
    place g = stream(net, out_size(f.h, 3, 2, 0), out_size(f.w, 3, 2, 0), 192);
    pool(net, VD_POOL_MAX, 3, 3, 2, 0, f, g);
    return g;
}

/* FIDInceptionA (Mixed_5b..d): 1x1 | 1x1, 5x5 | 1x1, 3x3, 3x3 | avg 3x3 (pads not counted), 1x1 */
static place block_a(vd_inception *net, const char *name, place x, int pool_features) {
    char s[FID_NAME_MAX];
    int h = x.h, w = x.w;
    place y = stream(net, h, w, 224 + pool_features);
    conv(net, sub(s, name, "branch1x1"), x, channels(y, 0, 64), 1, 1, 1, 0, 0);
    place t1 = at(net, SLOT_T1, h, w, 48);
    conv(net, sub(s, name, "branch5x5_1"), x, t1, 1, 1, 1, 0, 0);
    conv(net, sub(s, name, "branch5x5_2"), t1, channels(y, 64, 64), 5, 5, 1, 2, 2);
    t1 = at(net, SLOT_T1, h, w, 64);
    place t2 = at(net, SLOT_T2, h, w, 96);
    conv(net, sub(s, name, "branch3x3dbl_1"), x, t1, 1, 1, 1, 0, 0);
    conv(net, sub(s, name, "branch3x3dbl_2"), t1, t2, 3, 3, 1, 1, 1);
    conv(net, sub(s, name, "branch3x3dbl_3"), t2, channels(y, 128, 96), 3, 3, 1, 1, 1);
    t1 = at(net, SLOT_T1, h, w, x.c);
    pool(net, VD_POOL_AVG, 3, 3, 1, 1, x, t1);
    conv(net, sub(s, name, "branch_pool"), t1, channels(y, 224, pool_features), 1, 1, 1, 0, 0);
    return y;
}

/* torchvision's InceptionB (Mixed_6a): 3x3 s2 | 1x1, 3x3, 3x3 s2 | max 3x3 s2 */
static place block_b(vd_inception *net, const char *name, place x) {
    char s[FID_NAME_MAX];
    place y = stream(net, out_size(x.h, 3, 2, 0), out_size(x.w, 3, 2, 0), 480 + x.c);
    conv(net, sub(s, name, "branch3x3"), x, channels(y, 0, 384), 3, 3, 2, 0, 0);
    place t1 = at(net, SLOT_T1, x.h, x.w, 64), t2 = at(net, SLOT_T2, x.h, x.w, 96);
    conv(net, sub(s, name, "branch3x3dbl_1"), x, t1, 1, 1, 1, 0, 0);
    conv(net, sub(s, name, "branch3x3dbl_2"), t1, t2, 3, 3, 1, 1, 1);
    conv(net, sub(s, name, "branch3x3dbl_3"), t2, channels(y, 384, 96), 3, 3, 2, 0, 0);
    pool(net, VD_POOL_MAX, 3, 3, 2, 0, x, channels(y, 480, x.c));
    return y;
}

/* FIDInceptionC (Mixed_6b..e): 1x1 | 1x1, 1x7, 7x1 | 1x1, 7x1, 1x7, 7x1, 1x7 | avg 3x3, 1x1 */
static place block_c(vd_inception *net, const char *name, place x, int c7) {
    char s[FID_NAME_MAX];
    int h = x.h, w = x.w;
    place y = stream(net, h, w, 768);
    conv(net, sub(s, name, "branch1x1"), x, channels(y, 0, 192), 1, 1, 1, 0, 0);
    place t1 = at(net, SLOT_T1, h, w, c7), t2 = at(net, SLOT_T2, h, w, c7);
    conv(net, sub(s, name, "branch7x7_1"), x, t1, 1, 1, 1, 0, 0);
    conv(net, sub(s, name, "branch7x7_2"), t1, t2, 1, 7, 1, 0, 3);
    conv(net, sub(s, name, "branch7x7_3"), t2, channels(y, 192, 192), 7, 1, 1, 3, 0);
    conv(net, sub(s, name, "branch7x7dbl_1"), x, t1, 1, 1, 1, 0, 0);
    conv(net, sub(s, name, "branch7x7dbl_2"), t1, t2, 7, 1, 1, 3, 0);
    conv(net, sub(s, name, "branch7x7dbl_3"), t2, t1, 1, 7, 1, 0, 3);
    conv(net, sub(s, name, "branch7x7dbl_4"), t1, t2, 7, 1, 1, 3, 0);
    conv(net, sub(s, name, "branch7x7dbl_5"), t2, channels(y, 384, 192), 1, 7, 1, 0, 3);
    t1 = at(net, SLOT_T1, h, w, x.c);
    pool(net, VD_POOL_AVG, 3, 3, 1, 1, x, t1);
    conv(net, sub(s, name, "branch_pool"), t1, channels(y, 576, 192), 1, 1, 1, 0, 0);
    return y;
}

/* torchvision's InceptionD (Mixed_7a): 1x1, 3x3 s2 | 1x1, 1x7, 7x1, 3x3 s2 | max 3x3 s2 */
static place block_d(vd_inception *net, const char *name, place x) {
    char s[FID_NAME_MAX];
    place y = stream(net, out_size(x.h, 3, 2, 0), out_size(x.w, 3, 2, 0), 512 + x.c);
    place t1 = at(net, SLOT_T1, x.h, x.w, 192), t2 = at(net, SLOT_T2, x.h, x.w, 192);
    conv(net, sub(s, name, "branch3x3_1"), x, t1, 1, 1, 1, 0, 0);
    conv(net, sub(s, name, "branch3x3_2"), t1, channels(y, 0, 320), 3, 3, 2, 0, 0);
    conv(net, sub(s, name, "branch7x7x3_1"), x, t1, 1, 1, 1, 0, 0);
    conv(net, sub(s, name, "branch7x7x3_2"), t1, t2, 1, 7, 1, 0, 3);
    conv(net, sub(s, name, "branch7x7x3_3"), t2, t1, 7, 1, 1, 3, 0);
    conv(net, sub(s, name, "branch7x7x3_4"), t1, channels(y, 320, 192), 3, 3, 2, 0, 0);
    pool(net, VD_POOL_MAX, 3, 3, 2, 0, x, channels(y, 512, x.c));
    return y;
}

/* FIDInceptionE_1 / _2 (Mixed_7b / 7c): 1x1 | 1x1, (1x3 | 3x1) | 1x1, 3x3, (1x3 | 3x1) |
 * pool 3x3, 1x1 where the pool is an average without pads (7b) or a max (7c, as the 2015
 * graph has it). */
static place block_e(vd_inception *net, const char *name, place x, vd_pool_kind pool_kind) {
    char s[FID_NAME_MAX];
    int h = x.h, w = x.w;
    place y = stream(net, h, w, 2048);
    conv(net, sub(s, name, "branch1x1"), x, channels(y, 0, 320), 1, 1, 1, 0, 0);
    place t1 = at(net, SLOT_T1, h, w, 384);
    conv(net, sub(s, name, "branch3x3_1"), x, t1, 1, 1, 1, 0, 0);
    conv(net, sub(s, name, "branch3x3_2a"), t1, channels(y, 320, 384), 1, 3, 1, 0, 1);
    conv(net, sub(s, name, "branch3x3_2b"), t1, channels(y, 704, 384), 3, 1, 1, 1, 0);
    t1 = at(net, SLOT_T1, h, w, 448);
    place t2 = at(net, SLOT_T2, h, w, 384);
    conv(net, sub(s, name, "branch3x3dbl_1"), x, t1, 1, 1, 1, 0, 0);
    conv(net, sub(s, name, "branch3x3dbl_2"), t1, t2, 3, 3, 1, 1, 1);
    conv(net, sub(s, name, "branch3x3dbl_3a"), t2, channels(y, 1088, 384), 1, 3, 1, 0, 1);
    conv(net, sub(s, name, "branch3x3dbl_3b"), t2, channels(y, 1472, 384), 3, 1, 1, 1, 0);
    t1 = at(net, SLOT_T1, h, w, x.c);
    pool(net, pool_kind, 3, 3, 1, 1, x, t1);
    conv(net, sub(s, name, "branch_pool"), t1, channels(y, 1856, 192), 1, 1, 1, 0, 0);
    return y;
}

/* The whole network, planning or running. pytorch-fid resizes images x in [0, 1] and then
 * takes 2x - 1; we are handed x in [-1, 1] and resize it as it is: the same values, since the
 * resize is linear with weights summing to 1, up to float rounding (~1e-7 relative). */
static void walk(vd_inception *net) {
    net->cur = SLOT_B; /* so that the stem's first output goes to A */
    net->next = 0;
    place x = {SLOT_IMAGES, net->h, net->w, net->c, 0, net->c};
    if (net->resize) {
        place r = at(net, SLOT_INPUT, FID_SIDE, FID_SIDE, net->c);
        if (net->running) {
            vd_tensor xt = tensor(net, x), rt = tensor(net, r);
            net->be->i->resize_bilinear(net->be, &xt, &rt);
        }
        x = r;
    }
    x = stem(net, x);
    x = block_a(net, "Mixed_5b", x, 32);
    x = block_a(net, "Mixed_5c", x, 64);
    x = block_a(net, "Mixed_5d", x, 64);
    x = block_b(net, "Mixed_6a", x);
    x = block_c(net, "Mixed_6b", x, 128);
    x = block_c(net, "Mixed_6c", x, 160);
    x = block_c(net, "Mixed_6d", x, 160);
    x = block_c(net, "Mixed_6e", x, 192);
    x = block_d(net, "Mixed_7a", x);
    x = block_e(net, "Mixed_7b", x, VD_POOL_AVG);
    x = block_e(net, "Mixed_7c", x, VD_POOL_MAX);
    place p3 = at(net, SLOT_POOL3, 1, 1, VD_FID_DIMS);
    pool(net, VD_POOL_AVG, x.h, x.w, 1, 0, x, p3); /* adaptive average pool to 1 x 1 */
    fc(net, p3, at(net, SLOT_LOGITS, 1, 1, VD_FID_CLASSES));
}

/* The state_dict tensors of layer l into out[*k .. *k + 5), as far as max allows. */
static void layer_tensors(const fid_layer *l, vd_inception_tensor *out, int max, int *k) {
    static const char *const bn[4] = {"weight", "bias", "running_mean", "running_var"};
    const vd_conv_desc *cv = &l->cv;
    vd_inception_tensor t[5];
    int n = 0;
    if (l->linear) {
        t[n] = (vd_inception_tensor){.ndim = 2, .shape = {cv->c_out, cv->c_in}};
        snprintf(t[n++].name, sizeof t->name, "%s.weight", l->name);
        t[n] = (vd_inception_tensor){.ndim = 1, .shape = {cv->c_out}};
        snprintf(t[n++].name, sizeof t->name, "%s.bias", l->name);
    } else {
        t[n] = (vd_inception_tensor){.ndim = 4, .shape = {cv->c_out, l->c_in_file, cv->kh, cv->kw}};
        snprintf(t[n++].name, sizeof t->name, "%s.conv.weight", l->name);
        for (int i = 0; i < 4; i++) {
            t[n] = (vd_inception_tensor){.ndim = 1, .shape = {cv->c_out}};
            snprintf(t[n++].name, sizeof t->name, "%s.bn.%s", l->name, bn[i]);
        }
    }
    for (int i = 0; i < n; i++, (*k)++)
        if (*k < max) out[*k] = t[i];
}

int vd_inception_tensors(vd_inception_tensor *out, int max) {
    vd_inception *net = calloc(1, sizeof *net);
    if (!net) return 0;
    *net = (vd_inception){.batch = 1, .h = FID_SIDE, .w = FID_SIDE, .c = 3};
    walk(net);
    int k = 0;
    for (int i = 0; i < net->n_layers; i++)
        layer_tensors(&net->layers[i], out, max, &k);
    free(net);
    return k;
}

void vd_inception_close(vd_inception *net) {
    if (!net) return;
    for (int s = 0; s < SLOTS; s++)
        if (s != SLOT_IMAGES && net->slot[s]) net->be->i->dealloc(net->be, net->slot[s]);
    if (net->weights) net->be->i->dealloc(net->be, net->weights);
    free(net);
}

/* Every planned slot for `batch` images. */
static vd_status alloc_slots(vd_inception *net, vd_err *err) {
    for (int s = 0; s < SLOTS; s++) {
        if (s == SLOT_IMAGES || !net->slot_floats[s]) continue;
        size_t bytes = (size_t)net->batch * (size_t)net->slot_floats[s] * sizeof(float);
        net->slot[s] = net->be->i->alloc(net->be, bytes);
        if (!net->slot[s])
            return vd_errorf(err, VD_ERR_NOMEM,
                             "FID Inception: the backend has no memory for %zu bytes of "
                             "activations (batch %d)", bytes, net->batch);
    }
    return VD_OK;
}

vd_status vd_inception_open(vd_inception **out, vd_backend *be, const char *path, int batch, int h,
                            int w, int c, vd_err *err) {
    *out = NULL;
    if (!be || !path)
        return vd_errorf(err, VD_ERR_INVALID, "FID Inception: no backend or weights file");
    if (batch < 1 || h < 1 || w < 1 || (c != 1 && c != 3))
        return vd_errorf(err, VD_ERR_INVALID,
                         "FID Inception: batch %d of %dx%dx%d images: needs batch >= 1 and 1 or 3 "
                         "channels", batch, h, w, c);
    vd_inception *net = calloc(1, sizeof *net);
    if (!net) return vd_errorf(err, VD_ERR_NOMEM, "FID Inception: out of memory");
    *net = (vd_inception){.be = be, .batch = batch, .h = h, .w = w, .c = c,
                          .resize = h != FID_SIDE || w != FID_SIDE};
    walk(net);
    vd_status s = fid_load_weights(be, path, net->layers, net->n_layers, &net->weights, err);
    if (s == VD_OK) s = alloc_slots(net, err);
    if (s == VD_OK && (s = vd_backend_check(be, err)) != VD_OK)
        vd_err_prefix(err, "FID Inception: loading %s", path);
    if (s != VD_OK) {
        vd_inception_close(net);
        return s;
    }
    *out = net;
    return VD_OK;
}

vd_status vd_inception_run(vd_inception *net, const float *images, int n, float *pool3,
                           float *logits, vd_err *err) {
    if (!net || !images || !pool3)
        return vd_errorf(err, VD_ERR_INVALID, "FID Inception: no network, images or pool3 output");
    if (n < 1 || n > net->batch)
        return vd_errorf(err, VD_ERR_INVALID, "FID Inception: %d images, the network takes 1 to %d",
                         n, net->batch);
    vd_backend *be = net->be;
    net->slot[SLOT_IMAGES] = (float *)images; /* read only: the first conv or the resize reads it */
    net->n = n;
    net->running = true;
    walk(net);
    net->running = false;
    assert(net->next == net->n_layers);
    be->i->download(be, pool3, net->slot[SLOT_POOL3], (size_t)n * VD_FID_DIMS * sizeof(float));
    if (logits)
        be->i->download(be, logits, net->slot[SLOT_LOGITS],
                        (size_t)n * VD_FID_CLASSES * sizeof(float));
    vd_status s = vd_backend_check(be, err);
    return s == VD_OK ? s : vd_err_prefix(err, "FID Inception forward");
}
