/* CUDA convolutions through cuDNN 9's legacy convolution API: dense NHWC float tensors, KRSC
 * filters, cross-correlation, summed in float32 (FMA math for exact fp32, TF32 tensor cores when
 * allowed and in bf16 precision).
 *
 * What cuDNN does not take directly goes through the backend's scratch (vd_cu_scratch, one
 * buffer carved per call, grown only), each by one elementwise kernel:
 * - x is packed dense (as silu(x) for pre_act: act_math.h's act_value in double rounded to
 *   float, the oracle's numbers; then bf16-rounded in bf16 precision), with zero rows/columns
 *   added where the pads are asymmetric: cuDNN pads both sides alike, so it gets
 *   min(pad_lo, pad_hi, k - 1) on each side and the copy carries the rest (pad_top - that
 *   above, pad_bottom - that below; likewise left/right). The output then is exactly the
 *   asymmetric conv's, and the data gradient is the padded copy's gradient cropped back.
 * - dy (a channel view, or rounded to bf16) is packed dense.
 * - weights are OIHW in our buffers and KRSC in cuDNN's NHWC filter layout: transposed (and
 *   rounded) into scratch; a 1x1 filter is the same bytes in both, so fp32 1x1 convs pass w and
 *   dw as they are. dw of a larger filter comes back KRSC and is transposed onto dw (+=).
 * - y or dx that are views, or a dx that cuDNN sees padded, come out dense in scratch and are
 *   written through ld (=, or += when accumulating; y also gets the bias there). A dense,
 *   aligned y or dx is cuDNN's output directly, beta = 1 accumulating.
 * - db is a column sum of the float32 dy in double (its own kernel), added as cpu_ref does.
 * bf16 precision rounds x, w and dy to bf16 in those packing passes and convolves the rounded
 * floats under TF32 math: a bf16 value is exact in TF32 and the product of two is exact in
 * float32, so this is "round the factors, multiply and sum in float32" (ops.h).
 *
 * Algorithms: each distinct (direction, shapes, pads cuDNN sees, math mode) gets its cuDNN
 * descriptors and a ranked list of algorithms once: cudnnFind*Algorithm benchmarks them (then
 * the cudnnGet*_v7 heuristics are appended as a fallback), keeping those whose status is
 * success, whose workspace is at most VD_CU_CONV_WS_MAX, whose math type is allowed, and,
 * outside TF32 fp32, only the sum-of-products algorithms (implicit/explicit GEMM, direct: no
 * FFT or Winograd, whose transforms would round values other than the factors); backward
 * passes rank deterministic algorithms first. A call runs the entry's current algorithm; if
 * cuDNN answers NOT_SUPPORTED or a misaligned pointer (both checked before launching), the
 * entry moves on to the next one for good. The workspace (vd_cu(be)->ws) grows when an
 * algorithm needs more.
 *
 * Under VD_CUDA_EMU (host tests of this file's plumbing, not built by the project) the three
 * cuDNN calls are plain loops with cuDNN's semantics on the dense operands, and everything else
 * (checks, packing, transposes, crops, accumulation, bias, cache) is the code the GPU runs. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/act_math.h"
#include "backend/bf16.h"
#include "backend/cuda/cuda.h"

VD_CU_BEGIN

/* The largest cuDNN workspace an algorithm may ask for. */
#define VD_CU_CONV_WS_MAX ((size_t)1 << 30)
/* Algorithms kept per cache entry (cuDNN has at most 8 per direction, from two sources). */
#define VD_CU_CONV_CANDS 16

enum { VD_CU_DIR_FWD, VD_CU_DIR_BWD_DATA, VD_CU_DIR_BWD_FILTER };
/* How a convolution may multiply: exact fp32 (FMA math), TF32 tensor cores on fp32 operands
 * (any algorithm), or bf16-rounded operands under TF32 math (sum-of-products algorithms). */
enum { VD_CU_MODE_EXACT, VD_CU_MODE_TF32, VD_CU_MODE_BF16 };

/* What cuDNN sees: compared with memcmp, so always built from a zeroed struct. */
typedef struct vd_cu_conv_key {
    int32_t dir, mode;
    int32_t n, h, w, c_in;  /* the (padded) input cuDNN convolves */
    int32_t c_out, kh, kw, stride;
    int32_t ph, pw;         /* symmetric pads cuDNN applies */
} vd_cu_conv_key;

typedef struct vd_cu_conv_algo {
    int algo; /* cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t */
    int math; /* cudnnMathType_t to run it under */
    size_t ws; /* workspace bytes */
} vd_cu_conv_algo;

typedef struct vd_cu_conv_entry {
    vd_cu_conv_key key;
    bool used;
    int ho, wo;
    int n_cand, cur; /* the ranked algorithms and the one in use */
    vd_cu_conv_algo cand[VD_CU_CONV_CANDS];
#ifndef VD_CUDA_EMU
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
#endif
} vd_cu_conv_entry;

/* Open addressing over a power-of-two table, at most half full. */
struct vd_cu_conv_cache {
    vd_cu_conv_entry *slots;
    int cap, count;
};

namespace {

/* ---- geometry: the pads split into cuDNN's symmetric part and the copy's extra zeros */

struct conv_geom {
    int n, h, w;          /* the logical input (x or dx) */
    int ho, wo;           /* the output (y or dy) */
    int ph, pw;           /* symmetric pads cuDNN applies */
    int et, eb, el, er;   /* zero rows above/below, columns left/right, the copy adds */
    int hp, wp;           /* the input cuDNN sees: h + et + eb, w + el + er */
};

int imin(int a, int b) {
    return a < b ? a : b;
}

int out_size(int in, int k, int s, int lo, int hi) {
    int span = in + lo + hi - k;
    return span < 0 ? 0 : span / s + 1;
}

conv_geom geom_make(const vd_conv_desc *cv, int n, int h, int w) {
    conv_geom g;
    g.n = n, g.h = h, g.w = w;
    g.ph = imin(imin(cv->pad_top, cv->pad_bottom), cv->kh - 1);
    g.pw = imin(imin(cv->pad_left, cv->pad_right), cv->kw - 1);
    g.et = cv->pad_top - g.ph, g.eb = cv->pad_bottom - g.ph;
    g.el = cv->pad_left - g.pw, g.er = cv->pad_right - g.pw;
    g.hp = h + g.et + g.eb, g.wp = w + g.el + g.er;
    g.ho = out_size(g.hp, cv->kh, cv->stride, g.ph, g.ph);
    g.wo = out_size(g.wp, cv->kw, cv->stride, g.pw, g.pw);
    return g;
}

bool geom_padded(const conv_geom &g) {
    return g.et || g.eb || g.el || g.er;
}

/* ---- element kernels (functors for vd_cu_for; I: the index type of the divisions, 32-bit
 * where the tensor allows, as 64-bit divisions cost several times more on a GPU) */

template <class I> struct nhwc_at {
    I n, h, w, c;
};
/* Element i of a dense [.][h][w][c] tensor. */
template <class I> VD_HD nhwc_at<I> nhwc_split(I i, I h, I w, I c) {
    nhwc_at<I> e;
    e.c = i % c;
    I q = i / c;
    e.w = q % w;
    q /= w;
    e.h = q % h;
    e.n = q / h;
    return e;
}

/* dst (dense [n][hp][wp][c]) = src shifted by (et, el) inside zeros, as silu (optional) and
 * bf16 (optional) make it: the operand cuDNN reads for x or dy. */
template <class I> struct pack_f {
    vd_tensor src;
    float *dst;
    int hp, wp, et, el;
    bool silu, bf16;
    VD_HD void operator()(int64_t i) const {
        nhwc_at<I> e = nhwc_split<I>((I)i, (I)hp, (I)wp, (I)src.c);
        int h = (int)e.h - et, w = (int)e.w - el;
        float v = 0.0f;
        if (h >= 0 && h < src.h && w >= 0 && w < src.w) {
            v = src.data[(((int64_t)e.n * src.h + h) * src.w + w) * src.ld + (int64_t)e.c];
            if (silu) v = (float)act_value(VD_ACT_SILU, 0.0, v);
            if (bf16) v = vd_bf16_round(v);
        }
        dst[i] = v;
    }
};

/* t (a view) (= or +=) src (dense [n][hs][ws][c]) at offset (et, el), plus bias[c] when given:
 * y from the forward output, dx cropped from the padded input's gradient. */
template <class I> struct unpack_f {
    const float *src;
    vd_tensor t;
    int hs, ws, et, el;
    const float *bias;
    bool acc;
    VD_HD void operator()(int64_t i) const {
        nhwc_at<I> e = nhwc_split<I>((I)i, (I)t.h, (I)t.w, (I)t.c);
        float v = src[(((int64_t)e.n * hs + (int64_t)e.h + et) * ws + (int64_t)e.w + el) * t.c + (int64_t)e.c];
        if (bias) v = v + bias[e.c];
        float &d = t.data[(((int64_t)e.n * t.h + (int64_t)e.h) * t.w + (int64_t)e.w) * t.ld + (int64_t)e.c];
        d = acc ? d + v : v;
    }
};

/* t += bias[c] (y written by cuDNN in place). */
template <class I> struct bias_f {
    vd_tensor t;
    const float *bias;
    VD_HD void operator()(int64_t i) const {
        I c = (I)i % (I)t.c, q = (I)i / (I)t.c;
        t.data[(int64_t)q * t.ld + (int64_t)c] += bias[c];
    }
};

/* dst (KRSC: [c_out][kh][kw][c_in]) = w (OIHW), rounded to bf16 when asked. */
struct krsc_f {
    const float *w;
    float *dst;
    int c_in, kh, kw;
    bool bf16;
    VD_HD void operator()(int64_t i) const {
        int64_t c = i % c_in, q = i / c_in, s = q % kw;
        q /= kw;
        int64_t r = q % kh, k = q / kh;
        float v = w[((k * c_in + c) * kh + r) * kw + s];
        dst[i] = bf16 ? vd_bf16_round(v) : v;
    }
};

/* dw (OIHW) += src (KRSC). */
struct oihw_add_f {
    const float *src;
    float *dw;
    int c_in, kh, kw;
    VD_HD void operator()(int64_t i) const {
        int64_t s = i % kw, q = i / kw, r = q % kh;
        q /= kh;
        int64_t c = q % c_in, k = q / c_in;
        dw[i] += src[((k * kh + r) * kw + s) * c_in + c];
    }
};

/* db[k] += (float)sum[k], the sums in double (cpu_ref's rounding). */
struct db_add_f {
    const double *sum;
    float *db;
    VD_HD void operator()(int64_t k) const {
        db[k] += (float)sum[k];
    }
};

template <template <class> class F, class... A>
void launch(vd_backend *be, const char *op, int64_t n, A... args) {
    if (n <= INT32_MAX) vd_cu_for(be, op, n, F<uint32_t>{args...});
    else vd_cu_for(be, op, n, F<int64_t>{args...});
}

/* ---- small host helpers */

/* cv->pre_act as the int a C caller stored: C++ may not load an enum value outside its range. */
int pre_act_of(const vd_conv_desc *cv) {
    static_assert(sizeof cv->pre_act == sizeof(int), "vd_conv_pre_act is an int");
    int v;
    memcpy(&v, &cv->pre_act, sizeof v);
    return v;
}

/* VD_CONV_PRE_SILU: true; VD_CONV_PRE_NONE: false; anything else recorded as cpu_ref does. */
bool pre_act_silu(vd_backend *be, const vd_conv_desc *cv, bool *silu) {
    int v = pre_act_of(cv);
    *silu = v == VD_CONV_PRE_SILU;
    if (v == VD_CONV_PRE_NONE || v == VD_CONV_PRE_SILU) return true;
    vd_backend_fail(be, VD_ERR_INVALID, "conv: unknown pre-activation %d", v);
    return false;
}

bool dense(const vd_tensor *t) {
    return t->ld == t->c;
}

/* cuDNN's vectorised kernels read 16-byte aligned operands; parameters sit at any float
 * offset in their flat buffer, so a pointer handed over as it is must be checked. */
bool aligned(const void *p) {
    return ((uintptr_t)p & 15u) == 0;
}

size_t round_up(size_t n, size_t a) {
    return (n + a - 1) / a * a;
}

/* Carves the scratch into `count` regions of sizes[k] floats (0: none, out[k] = NULL), each
 * 256-byte aligned. False (failure recorded) when the scratch cannot grow. */
bool carve(vd_backend *be, const size_t *sizes, float **out, int count) {
    size_t total = 0;
    for (int k = 0; k < count; k++) total += round_up(sizes[k], 64);
    float *base = total ? vd_cu_scratch(be, total) : NULL;
    if (total && !base) return false;
    size_t at = 0;
    for (int k = 0; k < count; k++) {
        out[k] = sizes[k] ? base + at : NULL;
        at += round_up(sizes[k], 64);
    }
    return true;
}

/* cpu_ref's argument checks (ref_conv.c), and cuDNN's 32-bit element counts. x is the
 * convolution's input or its gradient, y its output or gradient. */
bool conv_check(vd_backend *be, const char *op, const vd_conv_desc *cv, const vd_tensor *x,
                const vd_tensor *y) {
    if (!vd_cu_valid(be, op, "input", x) || !vd_cu_valid(be, op, "output", y)) return false;
    if (cv->stride < 1 || cv->kh < 1 || cv->kw < 1 || cv->pad_top < 0 || cv->pad_left < 0 ||
        cv->pad_bottom < 0 || cv->pad_right < 0) {
        vd_backend_fail(be, VD_ERR_INVALID, "%s: bad geometry k %dx%d stride %d pads %d,%d,%d,%d", op,
                        cv->kh, cv->kw, cv->stride, cv->pad_top, cv->pad_left, cv->pad_bottom,
                        cv->pad_right);
        return false;
    }
    int ho = out_size(x->h, cv->kh, cv->stride, cv->pad_top, cv->pad_bottom);
    int wo = out_size(x->w, cv->kw, cv->stride, cv->pad_left, cv->pad_right);
    if (x->c != cv->c_in || y->c != cv->c_out || y->n != x->n || y->h != ho || y->w != wo) {
        vd_backend_fail(be, VD_ERR_INVALID,
                        "%s: input [%d,%d,%d,%d] and output [%d,%d,%d,%d] do not fit a %d->%d conv "
                        "k %dx%d stride %d (output should be %dx%d)",
                        op, x->n, x->h, x->w, x->c, y->n, y->h, y->w, y->c, cv->c_in, cv->c_out, cv->kh,
                        cv->kw, cv->stride, ho, wo);
        return false;
    }
    conv_geom g = geom_make(cv, x->n, x->h, x->w);
    if ((int64_t)g.n * g.hp * g.wp * cv->c_in > INT32_MAX || vd_cu_numel(*y) > INT32_MAX ||
        (int64_t)cv->c_out * cv->c_in * cv->kh * cv->kw > INT32_MAX) {
        vd_backend_fail(be, VD_ERR_UNSUPPORTED,
                        "%s: input [%d,%d,%d,%d] or output [%d,%d,%d,%d] has more than 2^31 elements, "
                        "beyond cuDNN's convolutions",
                        op, x->n, x->h, x->w, x->c, y->n, y->h, y->w, y->c);
        return false;
    }
    return true;
}

int conv_mode(vd_backend *be) {
    vd_cuda *cu = vd_cu(be);
    if (cu->precision == VD_PREC_BF16) return VD_CU_MODE_BF16;
    return cu->tf32 ? VD_CU_MODE_TF32 : VD_CU_MODE_EXACT;
}

/* ---- the cache of cuDNN set-ups */

uint64_t key_hash(const vd_cu_conv_key &k) {
    const unsigned char *p = (const unsigned char *)&k;
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < sizeof k; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* The slot holding key, or the empty slot where it belongs. */
vd_cu_conv_entry *slot_of(vd_cu_conv_cache *c, const vd_cu_conv_key &k) {
    size_t mask = (size_t)c->cap - 1;
    for (size_t i = (size_t)key_hash(k) & mask;; i = (i + 1) & mask) {
        vd_cu_conv_entry *e = &c->slots[i];
        if (!e->used || memcmp(&e->key, &k, sizeof k) == 0) return e;
    }
}

/* Room for one more entry (a table at most half full). */
bool cache_reserve(vd_backend *be, const char *op) {
    vd_cuda *cu = vd_cu(be);
    vd_cu_conv_cache *c = cu->convs;
    if (!c) {
        c = (vd_cu_conv_cache *)calloc(1, sizeof *c);
        if (!c) {
            vd_backend_fail(be, VD_ERR_NOMEM, "%s: out of host memory for the convolution cache", op);
            return false;
        }
        cu->convs = c;
    }
    if (2 * (c->count + 1) <= c->cap) return true;
    int cap = c->cap ? 2 * c->cap : 64;
    vd_cu_conv_entry *old = c->slots;
    int old_cap = c->cap;
    c->slots = (vd_cu_conv_entry *)calloc((size_t)cap, sizeof *c->slots);
    if (!c->slots) {
        c->slots = old;
        vd_backend_fail(be, VD_ERR_NOMEM, "%s: out of host memory for the convolution cache", op);
        return false;
    }
    c->cap = cap;
    for (int i = 0; i < old_cap; i++)
        if (old[i].used) *slot_of(c, old[i].key) = old[i];
    free(old);
    return true;
}

#ifndef VD_CUDA_EMU

/* ---- cuDNN */

const char *dir_name(int dir) {
    return dir == VD_CU_DIR_FWD ? "forward" : dir == VD_CU_DIR_BWD_DATA ? "backward data" : "backward filter";
}
const char *mode_name(int mode) {
    return mode == VD_CU_MODE_EXACT ? "fp32" : mode == VD_CU_MODE_TF32 ? "tf32" : "bf16";
}

/* "[2,7,7,4] -> 6 k 4x4 stride 1 pads 1,1 fp32" for messages. */
void key_text(const vd_cu_conv_key &k, char *buf, size_t cap) {
    snprintf(buf, cap, "%s [%d,%d,%d,%d] -> %d, k %dx%d stride %d, symmetric pads %d,%d, %s",
             dir_name(k.dir), k.n, k.h, k.w, k.c_in, k.c_out, k.kh, k.kw, k.stride, k.ph, k.pw,
             mode_name(k.mode));
}

void count_bytes(vd_cuda *cu, size_t add, size_t sub) {
    cu->bytes_now = cu->bytes_now + add - sub;
    if (cu->bytes_now > cu->bytes_peak) cu->bytes_peak = cu->bytes_now;
}

bool cuda_ok(vd_backend *be, cudaError_t e, const char *op, const char *what) {
    if (e == cudaSuccess) return true;
    vd_backend_fail(be, VD_ERR_INTERNAL, "%s: %s failed: %s", op, what, cudaGetErrorString(e));
    return false;
}

/* Records a cuDNN failure with the call, cuDNN's own detail and the convolution. */
void dnn_fail(vd_backend *be, const char *op, const vd_cu_conv_key &k, const char *call, cudnnStatus_t s) {
    char detail[256] = "", what[160];
    cudnnGetLastErrorString(detail, sizeof detail);
    key_text(k, what, sizeof what);
    vd_backend_fail(be, VD_ERR_INTERNAL, "%s: cuDNN %s failed: %s%s%s (%s)", op, call, cudnnGetErrorString(s),
                    detail[0] ? ": " : "", detail, what);
}

#define DNN(call)                                                                                  \
    do {                                                                                           \
        cudnnStatus_t st_ = (call);                                                                \
        if (st_ != CUDNN_STATUS_SUCCESS) {                                                         \
            dnn_fail(be, op, e->key, #call, st_);                                                  \
            return false;                                                                          \
        }                                                                                          \
    } while (0)

/* The workspace holds at least `bytes` (grown, never shrunk). False, recording nothing, when
 * the device has no room: the caller tries a leaner algorithm. */
bool ws_reserve(vd_backend *be, const char *op, size_t bytes) {
    vd_cuda *cu = vd_cu(be);
    if (bytes <= cu->ws_cap) return true;
    bytes = round_up(bytes, (size_t)1 << 20);
    if (cu->ws) {
        /* ops queued before may still use it */
        if (!cuda_ok(be, cudaStreamSynchronize(cu->stream), op, "cudaStreamSynchronize")) return false;
        if (!cuda_ok(be, cudaFree(cu->ws), op, "cudaFree(workspace)")) return false;
        count_bytes(cu, 0, cu->ws_cap);
        cu->ws = NULL, cu->ws_cap = 0;
    }
    void *p = NULL;
    if (cudaMalloc(&p, bytes) != cudaSuccess) {
        (void)cudaGetLastError();
        return false;
    }
    cu->ws = p, cu->ws_cap = bytes;
    count_bytes(cu, bytes, 0);
    return true;
}

/* Sum-of-products algorithms: each output a sum of the operands' products as they are. */
bool algo_direct(int dir, int algo) {
    if (dir == VD_CU_DIR_FWD)
        return algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM ||
               algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
               algo == CUDNN_CONVOLUTION_FWD_ALGO_GEMM || algo == CUDNN_CONVOLUTION_FWD_ALGO_DIRECT;
    if (dir == VD_CU_DIR_BWD_DATA)
        return algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 || algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
    return algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 || algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 ||
           algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
}

/* The math type a cuDNN result may run under in this mode, or -1 to skip it. Exact fp32 keeps
 * the descriptor at FMA math whatever the result says (cuDNN may label FMA-only algorithms
 * DEFAULT); TF32 modes run a result under the math it was measured with, as cuDNN asks. */
int cand_math(int mode, cudnnMathType_t m) {
    if (m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) return -1; /* may convert to half */
    if (mode == VD_CU_MODE_EXACT) return m == CUDNN_TENSOR_OP_MATH ? -1 : (int)CUDNN_FMA_MATH;
    return (int)m;
}

/* Appends the usable results of a Find/Get to e's candidates: deterministic ones first for the
 * backward passes (two sweeps), dropping duplicates. */
template <class Perf> void add_cands(vd_cu_conv_entry *e, const Perf *p, int count) {
    int dir = e->key.dir, mode = e->key.mode;
    bool det_first = dir != VD_CU_DIR_FWD;
    for (int sweep = det_first ? 0 : 1; sweep < 2; sweep++) {
        for (int i = 0; i < count && e->n_cand < VD_CU_CONV_CANDS; i++) {
            if (p[i].status != CUDNN_STATUS_SUCCESS || p[i].memory > VD_CU_CONV_WS_MAX) continue;
            if (sweep == 0 && p[i].determinism != CUDNN_DETERMINISTIC) continue;
            if (sweep == 1 && det_first && p[i].determinism == CUDNN_DETERMINISTIC) continue;
            int algo = (int)p[i].algo, math = cand_math(mode, p[i].mathType);
            if (math < 0 || (mode != VD_CU_MODE_TF32 && !algo_direct(dir, algo))) continue;
            bool dup = false;
            for (int j = 0; j < e->n_cand; j++) dup |= e->cand[j].algo == algo && e->cand[j].math == math;
            if (!dup) e->cand[e->n_cand++] = vd_cu_conv_algo{algo, math, p[i].memory};
        }
    }
}

/* The workspace candidate c needs under its math type (at least what Find reported). */
bool cand_ws(vd_backend *be, const char *op, vd_cu_conv_entry *e, vd_cu_conv_algo *c) {
    cudnnHandle_t h = vd_cu(be)->dnn;
    size_t bytes = 0;
    DNN(cudnnSetConvolutionMathType(e->conv, (cudnnMathType_t)c->math));
    cudnnStatus_t st;
    if (e->key.dir == VD_CU_DIR_FWD)
        st = cudnnGetConvolutionForwardWorkspaceSize(h, e->x, e->w, e->conv, e->y,
                                                     (cudnnConvolutionFwdAlgo_t)c->algo, &bytes);
    else if (e->key.dir == VD_CU_DIR_BWD_DATA)
        st = cudnnGetConvolutionBackwardDataWorkspaceSize(h, e->w, e->y, e->conv, e->x,
                                                          (cudnnConvolutionBwdDataAlgo_t)c->algo, &bytes);
    else
        st = cudnnGetConvolutionBackwardFilterWorkspaceSize(h, e->x, e->y, e->conv, e->w,
                                                            (cudnnConvolutionBwdFilterAlgo_t)c->algo, &bytes);
    if (st != CUDNN_STATUS_SUCCESS || bytes > VD_CU_CONV_WS_MAX) return false; /* not this one */
    if (bytes > c->ws) c->ws = bytes;
    return true;
}

/* Ranks e's algorithms: Find (benchmarks, host-blocking, once), then the heuristics. */
bool rank_algos(vd_backend *be, const char *op, vd_cu_conv_entry *e) {
    cudnnHandle_t h = vd_cu(be)->dnn;
    int dir = e->key.dir, max = 0, got = 0;
    cudnnStatus_t find_st = CUDNN_STATUS_SUCCESS, get_st = CUDNN_STATUS_SUCCESS;
    if (dir == VD_CU_DIR_FWD) {
        cudnnConvolutionFwdAlgoPerf_t p[VD_CU_CONV_CANDS];
        DNN(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &max));
        max = imin(max, VD_CU_CONV_CANDS);
        find_st = cudnnFindConvolutionForwardAlgorithm(h, e->x, e->w, e->conv, e->y, max, &got, p);
        if (find_st == CUDNN_STATUS_SUCCESS) add_cands(e, p, got);
        get_st = cudnnGetConvolutionForwardAlgorithm_v7(h, e->x, e->w, e->conv, e->y, max, &got, p);
        if (get_st == CUDNN_STATUS_SUCCESS) add_cands(e, p, got);
    } else if (dir == VD_CU_DIR_BWD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t p[VD_CU_CONV_CANDS];
        DNN(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &max));
        max = imin(max, VD_CU_CONV_CANDS);
        find_st = cudnnFindConvolutionBackwardDataAlgorithm(h, e->w, e->y, e->conv, e->x, max, &got, p);
        if (find_st == CUDNN_STATUS_SUCCESS) add_cands(e, p, got);
        get_st = cudnnGetConvolutionBackwardDataAlgorithm_v7(h, e->w, e->y, e->conv, e->x, max, &got, p);
        if (get_st == CUDNN_STATUS_SUCCESS) add_cands(e, p, got);
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t p[VD_CU_CONV_CANDS];
        DNN(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &max));
        max = imin(max, VD_CU_CONV_CANDS);
        find_st = cudnnFindConvolutionBackwardFilterAlgorithm(h, e->x, e->y, e->conv, e->w, max, &got, p);
        if (find_st == CUDNN_STATUS_SUCCESS) add_cands(e, p, got);
        get_st = cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, e->x, e->y, e->conv, e->w, max, &got, p);
        if (get_st == CUDNN_STATUS_SUCCESS) add_cands(e, p, got);
    }
    /* a failed Find may leave an error on the context (it allocates as it measures) */
    (void)cudaGetLastError();
    int kept = 0;
    for (int i = 0; i < e->n_cand; i++) {
        vd_cu_conv_algo c = e->cand[i];
        if (!cand_ws(be, op, e, &c)) {
            if (vd_cu_failed(be)) return false;
            continue;
        }
        e->cand[kept++] = c;
    }
    e->n_cand = kept;
    if (kept == 0) {
        char what[160];
        key_text(e->key, what, sizeof what);
        vd_backend_fail(be, VD_ERR_INTERNAL,
                        "%s: cuDNN offers no usable algorithm for %s (Find: %s, Get_v7: %s)", op, what,
                        cudnnGetErrorString(find_st), cudnnGetErrorString(get_st));
        return false;
    }
    e->cur = 0;
    DNN(cudnnSetConvolutionMathType(e->conv, (cudnnMathType_t)e->cand[0].math));
    return true;
}

void entry_release(vd_cu_conv_entry *e) {
    if (e->x) cudnnDestroyTensorDescriptor(e->x);
    if (e->y) cudnnDestroyTensorDescriptor(e->y);
    if (e->w) cudnnDestroyFilterDescriptor(e->w);
    if (e->conv) cudnnDestroyConvolutionDescriptor(e->conv);
    e->x = e->y = NULL, e->w = NULL, e->conv = NULL;
}

/* Descriptors and ranked algorithms for e->key (e zeroed but for its key and ho, wo). */
bool entry_build(vd_backend *be, const char *op, vd_cu_conv_entry *e) {
    const vd_cu_conv_key &k = e->key;
    DNN(cudnnCreateTensorDescriptor(&e->x));
    DNN(cudnnCreateTensorDescriptor(&e->y));
    DNN(cudnnCreateFilterDescriptor(&e->w));
    DNN(cudnnCreateConvolutionDescriptor(&e->conv));
    DNN(cudnnSetTensor4dDescriptor(e->x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, k.n, k.c_in, k.h, k.w));
    DNN(cudnnSetTensor4dDescriptor(e->y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, k.n, k.c_out, e->ho, e->wo));
    DNN(cudnnSetFilter4dDescriptor(e->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, k.c_out, k.c_in, k.kh, k.kw));
    DNN(cudnnSetConvolution2dDescriptor(e->conv, k.ph, k.pw, k.stride, k.stride, 1, 1, CUDNN_CROSS_CORRELATION,
                                        CUDNN_DATA_FLOAT));
    DNN(cudnnSetConvolutionMathType(e->conv, k.mode == VD_CU_MODE_EXACT ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH));
    int dn = 0, dc = 0, dh = 0, dw = 0;
    DNN(cudnnGetConvolution2dForwardOutputDim(e->conv, e->x, e->w, &dn, &dc, &dh, &dw));
    if (dn != k.n || dc != k.c_out || dh != e->ho || dw != e->wo) {
        char what[160];
        key_text(k, what, sizeof what);
        vd_backend_fail(be, VD_ERR_INTERNAL, "%s: cuDNN's output [%d,%d,%d,%d] is not ours [%d,%d,%d,%d] (%s)",
                        op, dn, dh, dw, dc, k.n, e->ho, e->wo, k.c_out, what);
        return false;
    }
    return rank_algos(be, op, e);
}

/* One cuDNN call with the entry's current algorithm: fwd out = conv(a = x, b = w), bwd data
 * out = conv_T(a = dy, b = w), bwd filter out = corr(a = x, b = dy); out = result + beta out. */
cudnnStatus_t dnn_call(vd_backend *be, vd_cu_conv_entry *e, const float *a, const float *b, float *out,
                       float beta) {
    vd_cuda *cu = vd_cu(be);
    const vd_cu_conv_algo &c = e->cand[e->cur];
    const float one = 1.0f;
    switch (e->key.dir) {
    case VD_CU_DIR_FWD:
        return cudnnConvolutionForward(cu->dnn, &one, e->x, a, e->w, b, e->conv, (cudnnConvolutionFwdAlgo_t)c.algo,
                                       cu->ws, cu->ws_cap, &beta, e->y, out);
    case VD_CU_DIR_BWD_DATA:
        return cudnnConvolutionBackwardData(cu->dnn, &one, e->w, b, e->y, a, e->conv,
                                            (cudnnConvolutionBwdDataAlgo_t)c.algo, cu->ws, cu->ws_cap, &beta,
                                            e->x, out);
    default:
        return cudnnConvolutionBackwardFilter(cu->dnn, &one, e->x, a, e->y, b, e->conv,
                                              (cudnnConvolutionBwdFilterAlgo_t)c.algo, cu->ws, cu->ws_cap,
                                              &beta, e->w, out);
    }
}

bool dnn_run(vd_backend *be, const char *op, vd_cu_conv_entry *e, const float *a, const float *b, float *out,
             float beta) {
    for (;;) {
        const vd_cu_conv_algo &c = e->cand[e->cur];
        bool more = e->cur + 1 < e->n_cand;
        cudnnStatus_t st = CUDNN_STATUS_SUCCESS;
        if (!ws_reserve(be, op, c.ws)) {
            if (vd_cu_failed(be)) return false;
            if (!more) {
                vd_backend_fail(be, VD_ERR_NOMEM, "%s: no device memory for a %zu-byte cuDNN workspace", op,
                                c.ws);
                return false;
            }
        } else {
            st = dnn_call(be, e, a, b, out, beta);
            if (st == CUDNN_STATUS_SUCCESS) return true;
            /* both are decided before anything runs: out is untouched */
            bool next = CUDNN_STATUS_CATEGORY(st) == CUDNN_STATUS_NOT_SUPPORTED ||
                        st == CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER;
            if (!more || !next) {
                char call[64];
                snprintf(call, sizeof call, "%s (algorithm %d, math %d)", dir_name(e->key.dir), c.algo, c.math);
                dnn_fail(be, op, e->key, call, st);
                return false;
            }
        }
        e->cur++;
        DNN(cudnnSetConvolutionMathType(e->conv, (cudnnMathType_t)e->cand[e->cur].math));
    }
}

/* db[k] += sum over pixels of dy[., k], in double: 32 channels by 8 pixel lanes per block,
 * coalesced along channels, each block's partial sums added atomically (in double, so the
 * order barely shows once rounded to float). */
__global__ void db_kernel(vd_tensor dy, int64_t pixels, double *acc) {
    __shared__ double part[8][32];
    int c = (int)(blockIdx.x * 32 + threadIdx.x);
    double s = 0;
    if (c < dy.c)
        for (int64_t p = blockIdx.y * (int64_t)8 + threadIdx.y; p < pixels; p += (int64_t)gridDim.y * 8)
            s += dy.data[p * dy.ld + c];
    part[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && c < dy.c) {
        double t = 0;
        for (int k = 0; k < 8; k++) t += part[k][threadIdx.x];
        atomicAdd(acc + c, t);
    }
}

void db_sums(vd_backend *be, const char *op, const vd_tensor *dy, double *acc) {
    int64_t pixels = vd_cu_pixels(*dy);
    unsigned gx = (unsigned)((dy->c + 31) / 32);
    int64_t gy = (pixels + 7) / 8, cap = vd_cu(be)->max_blocks / (int64_t)gx;
    if (cap < 1) cap = 1;
    if (gy > cap) gy = cap;
    if (gy > 65535) gy = 65535;
    db_kernel<<<dim3(gx, (unsigned)gy), dim3(32, 8), 0, vd_cu(be)->stream>>>(*dy, pixels, acc);
    vd_cu_launched(be, op);
}

#undef DNN

#else /* VD_CUDA_EMU: cuDNN's three calls as loops, with its semantics on the dense operands */

bool entry_build(vd_backend *, const char *, vd_cu_conv_entry *e) {
    e->n_cand = 1, e->cur = 0;
    e->cand[0] = vd_cu_conv_algo{0, 0, 0};
    return true;
}

/* out = sum + beta out, out not read when beta is 0 (as cuDNN) */
void emu_store(float *out, double sum, float beta) {
    *out = beta != 0.0f ? (float)sum + beta * *out : (float)sum;
}

bool dnn_run(vd_backend *, const char *, vd_cu_conv_entry *e, const float *a, const float *b, float *out,
             float beta) {
    const vd_cu_conv_key &k = e->key;
    int ho = e->ho, wo = e->wo, S = k.stride;
    /* x [n][h][w][c_in], y [n][ho][wo][c_out], w [c_out][kh][kw][c_in] */
    auto X = [&](const float *p, int64_t n, int64_t h, int64_t w, int64_t c) {
        return (double)p[((n * k.h + h) * k.w + w) * k.c_in + c];
    };
    auto Y = [&](int64_t n, int64_t h, int64_t w, int64_t c) { return ((n * ho + h) * wo + w) * k.c_out + c; };
    auto W = [&](int64_t o, int64_t r, int64_t s, int64_t c) { return ((o * k.kh + r) * k.kw + s) * k.c_in + c; };
    if (k.dir == VD_CU_DIR_FWD) {
        for (int n = 0; n < k.n; n++)
            for (int oh = 0; oh < ho; oh++)
                for (int ow = 0; ow < wo; ow++)
                    for (int o = 0; o < k.c_out; o++) {
                        double sum = 0;
                        for (int r = 0; r < k.kh; r++)
                            for (int s = 0; s < k.kw; s++) {
                                int ih = oh * S - k.ph + r, iw = ow * S - k.pw + s;
                                if (ih < 0 || ih >= k.h || iw < 0 || iw >= k.w) continue;
                                for (int c = 0; c < k.c_in; c++) sum += X(a, n, ih, iw, c) * b[W(o, r, s, c)];
                            }
                        emu_store(&out[Y(n, oh, ow, o)], sum, beta);
                    }
    } else if (k.dir == VD_CU_DIR_BWD_DATA) {
        for (int n = 0; n < k.n; n++)
            for (int ih = 0; ih < k.h; ih++)
                for (int iw = 0; iw < k.w; iw++)
                    for (int c = 0; c < k.c_in; c++) {
                        double sum = 0;
                        for (int r = 0; r < k.kh; r++)
                            for (int s = 0; s < k.kw; s++) {
                                int th = ih + k.ph - r, tw = iw + k.pw - s;
                                if (th < 0 || tw < 0 || th % S || tw % S || th / S >= ho || tw / S >= wo) continue;
                                for (int o = 0; o < k.c_out; o++)
                                    sum += (double)a[Y(n, th / S, tw / S, o)] * b[W(o, r, s, c)];
                            }
                        emu_store(&out[((int64_t)(n * k.h + ih) * k.w + iw) * k.c_in + c], sum, beta);
                    }
    } else {
        for (int o = 0; o < k.c_out; o++)
            for (int r = 0; r < k.kh; r++)
                for (int s = 0; s < k.kw; s++)
                    for (int c = 0; c < k.c_in; c++) {
                        double sum = 0;
                        for (int n = 0; n < k.n; n++)
                            for (int oh = 0; oh < ho; oh++)
                                for (int ow = 0; ow < wo; ow++) {
                                    int ih = oh * S - k.ph + r, iw = ow * S - k.pw + s;
                                    if (ih < 0 || ih >= k.h || iw < 0 || iw >= k.w) continue;
                                    sum += X(a, n, ih, iw, c) * b[Y(n, oh, ow, o)];
                                }
                        emu_store(&out[W(o, r, s, c)], sum, beta);
                    }
    }
    return true;
}

void db_sums(vd_backend *, const char *, const vd_tensor *dy, double *acc) {
    for (int c = 0; c < dy->c; c++) {
        double s = 0;
        for (int64_t p = 0; p < vd_cu_pixels(*dy); p++) s += vd_cu_px(*dy, p)[c];
        acc[c] += s;
    }
}

void entry_release(vd_cu_conv_entry *) {}

#endif

/* The cache entry of a convolution as cuDNN sees it, built on first use; NULL (failure
 * recorded) when it cannot be. */
vd_cu_conv_entry *entry_get(vd_backend *be, const char *op, int dir, const vd_conv_desc *cv, const conv_geom &g) {
    vd_cu_conv_key k;
    memset(&k, 0, sizeof k);
    k.dir = dir, k.mode = conv_mode(be);
    k.n = g.n, k.h = g.hp, k.w = g.wp, k.c_in = cv->c_in;
    k.c_out = cv->c_out, k.kh = cv->kh, k.kw = cv->kw, k.stride = cv->stride;
    k.ph = g.ph, k.pw = g.pw;
    vd_cu_conv_cache *c = vd_cu(be)->convs;
    if (c && c->cap) {
        vd_cu_conv_entry *e = slot_of(c, k);
        if (e->used) return e;
    }
    if (!cache_reserve(be, op)) return NULL;
    c = vd_cu(be)->convs;
    vd_cu_conv_entry fresh;
    memset(&fresh, 0, sizeof fresh);
    fresh.key = k, fresh.ho = g.ho, fresh.wo = g.wo;
    if (!entry_build(be, op, &fresh)) {
        entry_release(&fresh);
        return NULL;
    }
    vd_cu_conv_entry *e = slot_of(c, k);
    *e = fresh;
    e->used = true;
    c->count++;
    return e;
}

} // namespace

/* ---- the ops */

void vd_cu_conv_fwd(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *x, const float *w,
                    const float *b, const vd_tensor *y) {
    static const char op[] = "conv_fwd";
    if (vd_cu_failed(be) || !conv_check(be, op, cv, x, y)) return;
    bool silu;
    if (!pre_act_silu(be, cv, &silu)) return;
    VD_CU_REQUIRE(be, w, "conv_fwd: weights are missing");
    bool bf16 = vd_cu(be)->precision == VD_PREC_BF16;
    conv_geom g = geom_make(cv, x->n, x->h, x->w);
    int taps = cv->kh * cv->kw;
    bool x_direct = dense(x) && aligned(x->data) && !silu && !bf16 && !geom_padded(g);
    bool w_direct = taps == 1 && !bf16 && aligned(w);
    bool y_direct = dense(y) && aligned(y->data);
    size_t sizes[3] = {x_direct ? 0 : (size_t)g.n * g.hp * g.wp * cv->c_in,
                       w_direct ? 0 : (size_t)cv->c_out * cv->c_in * taps,
                       y_direct ? 0 : (size_t)vd_cu_numel(*y)};
    float *s[3];
    vd_cu_conv_entry *e = entry_get(be, op, VD_CU_DIR_FWD, cv, g);
    if (!e || !carve(be, sizes, s, 3)) return;
    if (!x_direct)
        launch<pack_f>(be, op, (int64_t)sizes[0], *x, s[0], g.hp, g.wp, g.et, g.el, silu, bf16);
    if (!w_direct)
        vd_cu_for(be, op, (int64_t)sizes[1], krsc_f{w, s[1], cv->c_in, cv->kh, cv->kw, bf16});
    if (vd_cu_failed(be)) return;
    const float *xs = x_direct ? x->data : s[0], *ws = w_direct ? w : s[1];
    if (y_direct) {
        if (!dnn_run(be, op, e, xs, ws, y->data, cv->acc_y ? 1.0f : 0.0f)) return;
        if (b) launch<bias_f>(be, op, vd_cu_numel(*y), *y, b);
    } else {
        if (!dnn_run(be, op, e, xs, ws, s[2], 0.0f)) return;
        launch<unpack_f>(be, op, vd_cu_numel(*y), (const float *)s[2], *y, y->h, y->w, 0, 0, b, cv->acc_y);
    }
}

void vd_cu_conv_bwd_data(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *dy, const float *w,
                         const vd_tensor *dx, bool acc) {
    static const char op[] = "conv_bwd_data";
    if (vd_cu_failed(be) || !conv_check(be, op, cv, dx, dy)) return;
    VD_CU_REQUIRE(be, w, "conv_bwd_data: weights are missing");
    bool bf16 = vd_cu(be)->precision == VD_PREC_BF16;
    conv_geom g = geom_make(cv, dx->n, dx->h, dx->w);
    int taps = cv->kh * cv->kw;
    bool dy_direct = dense(dy) && aligned(dy->data) && !bf16;
    bool w_direct = taps == 1 && !bf16 && aligned(w);
    bool dx_direct = dense(dx) && aligned(dx->data) && !geom_padded(g);
    size_t sizes[3] = {dy_direct ? 0 : (size_t)vd_cu_numel(*dy),
                       w_direct ? 0 : (size_t)cv->c_out * cv->c_in * taps,
                       dx_direct ? 0 : (size_t)g.n * g.hp * g.wp * cv->c_in};
    float *s[3];
    vd_cu_conv_entry *e = entry_get(be, op, VD_CU_DIR_BWD_DATA, cv, g);
    if (!e || !carve(be, sizes, s, 3)) return;
    if (!dy_direct) launch<pack_f>(be, op, (int64_t)sizes[0], *dy, s[0], dy->h, dy->w, 0, 0, false, bf16);
    if (!w_direct) vd_cu_for(be, op, (int64_t)sizes[1], krsc_f{w, s[1], cv->c_in, cv->kh, cv->kw, bf16});
    if (vd_cu_failed(be)) return;
    const float *dys = dy_direct ? dy->data : s[0], *ws = w_direct ? w : s[1];
    if (dx_direct) {
        dnn_run(be, op, e, dys, ws, dx->data, acc ? 1.0f : 0.0f);
    } else {
        if (!dnn_run(be, op, e, dys, ws, s[2], 0.0f)) return;
        launch<unpack_f>(be, op, vd_cu_numel(*dx), (const float *)s[2], *dx, g.hp, g.wp, g.et, g.el,
                         (const float *)NULL, acc);
    }
}

void vd_cu_conv_bwd_weights(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *x,
                            const vd_tensor *dy, float *dw, float *db) {
    static const char op[] = "conv_bwd_weights";
    if (vd_cu_failed(be) || !conv_check(be, op, cv, x, dy)) return;
    bool silu;
    if (!pre_act_silu(be, cv, &silu)) return;
    VD_CU_REQUIRE(be, dw, "conv_bwd_weights: dw is missing");
    bool bf16 = vd_cu(be)->precision == VD_PREC_BF16;
    conv_geom g = geom_make(cv, x->n, x->h, x->w);
    int taps = cv->kh * cv->kw;
    bool x_direct = dense(x) && aligned(x->data) && !silu && !bf16 && !geom_padded(g);
    bool dy_direct = dense(dy) && aligned(dy->data) && !bf16;
    bool dw_direct = taps == 1 && aligned(dw);
    size_t sizes[3] = {x_direct ? 0 : (size_t)g.n * g.hp * g.wp * cv->c_in,
                       dy_direct ? 0 : (size_t)vd_cu_numel(*dy),
                       dw_direct ? 0 : (size_t)cv->c_out * cv->c_in * taps};
    float *s[3];
    vd_cu_conv_entry *e = entry_get(be, op, VD_CU_DIR_BWD_FILTER, cv, g);
    if (!e || !carve(be, sizes, s, 3)) return;
    if (!x_direct)
        launch<pack_f>(be, op, (int64_t)sizes[0], *x, s[0], g.hp, g.wp, g.et, g.el, silu, bf16);
    if (!dy_direct) launch<pack_f>(be, op, (int64_t)sizes[1], *dy, s[1], dy->h, dy->w, 0, 0, false, bf16);
    if (vd_cu_failed(be)) return;
    const float *xs = x_direct ? x->data : s[0], *dys = dy_direct ? dy->data : s[1];
    if (dw_direct) {
        if (!dnn_run(be, op, e, xs, dys, dw, 1.0f)) return;
    } else {
        if (!dnn_run(be, op, e, xs, dys, s[2], 0.0f)) return;
        vd_cu_for(be, op, (int64_t)sizes[2], oihw_add_f{s[2], dw, cv->c_in, cv->kh, cv->kw});
    }
    if (!db) return; /* the float32 dy, unrounded: a bias gradient multiplies nothing */
    double *acc = vd_cu_acc(be, op, cv->c_out);
    if (!acc) return;
    db_sums(be, op, dy, acc);
    vd_cu_for(be, op, cv->c_out, db_add_f{acc, db});
}

void vd_cu_conv_destroy(vd_backend *be) {
    vd_cuda *cu = vd_cu(be);
    if (!cu) return;
    vd_cu_conv_cache *c = cu->convs;
    if (c) {
        for (int i = 0; i < c->cap; i++)
            if (c->slots[i].used) entry_release(&c->slots[i]);
        free(c->slots);
        free(c);
        cu->convs = NULL;
    }
#ifndef VD_CUDA_EMU
    if (cu->ws) {
        cudaFree(cu->ws); /* at teardown: nothing left to report a failure to */
        count_bytes(cu, 0, cu->ws_cap);
    }
#endif
    cu->ws = NULL, cu->ws_cap = 0;
}

VD_CU_END
