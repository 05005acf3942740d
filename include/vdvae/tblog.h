/* Training logs: TensorBoard event files (scalars, images, histograms), written by our own
 * encoder so that TensorBoard reads them without TensorFlow, and a metrics.jsonl line log. */
#ifndef VDVAE_TBLOG_H
#define VDVAE_TBLOG_H

#include <stddef.h>
#include <stdint.h>

#include "vdvae/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- TensorBoard event files ------------------------------------------------------------ */

/* One event file, not thread-safe. Events are TFRecord-framed `Event` protobufs. */
typedef struct vd_tb vd_tb;

/* Histograms use this many equal-width bins between the smallest and largest finite value. */
#define VD_TB_HIST_BINS 30
/* Buffered events are written out once they pass this size, even before vd_tb_flush. */
#define VD_TB_FLUSH_BYTES (1u << 20)

/* Create dir (and its parents) if missing and a new file events.out.tfevents.<unix time>.
 * <hostname> in it (".1", ".2", ... appended when that name exists), starting with the
 * file_version event, which is written at once. VD_ERR_IO naming the directory or file when it
 * cannot be created or written. */
vd_status vd_tb_open(vd_tb **out, const char *dir, vd_err *err);
/* The event file's path. */
const char *vd_tb_path(const vd_tb *tb);

/* Events are buffered in memory: a failing write (full disk) shows as VD_ERR_IO naming the
 * file from the call that writes, i.e. vd_tb_flush or a call whose event pushes the buffer
 * past VD_TB_FLUSH_BYTES; the events it held are dropped. An empty tag is VD_ERR_INVALID. */
vd_status vd_tb_scalar(vd_tb *tb, const char *tag, int64_t step, float value, vd_err *err);
/* h x w x c uint8 pixels, HWC, c = 1 (grey), 3 (RGB) or 4 (RGBA), stored as PNG. */
vd_status vd_tb_image(vd_tb *tb, const char *tag, int64_t step, const uint8_t *pix, int h, int w,
                      int c, vd_err *err);
/* A HistogramProto of the finite values of x[0..n): min, max, num, sum, sum of squares and
 * VD_TB_HIST_BINS equal-width buckets (each limit is a bucket's right edge; the last is the
 * max), which TensorBoard's histogram and distribution views draw as they are. Non-finite
 * values are left out; with none finite the histogram is empty (num 0, one empty bucket). */
vd_status vd_tb_histogram(vd_tb *tb, const char *tag, int64_t step, const float *x, size_t n,
                          vd_err *err);
vd_status vd_tb_flush(vd_tb *tb, vd_err *err);
/* Write what is buffered and free tb (NULL is ok). It cannot report a failing write: call
 * vd_tb_flush first where that matters. */
void vd_tb_close(vd_tb *tb);

/* ---- metrics.jsonl ---------------------------------------------------------------------- */

/* An append-only log with one JSON object per line:
 *   {"step": 100, "split": "train", "time": 1700000000.123, "loss": 2.5, "kl": null}
 * time is Unix seconds; non-finite values are written as null; numbers round-trip exactly.
 * Each line goes out in one write(2) as it is made, so a crash loses at most that line. */
typedef struct vd_metrics vd_metrics;

/* Open path for appending (created if missing). VD_ERR_IO naming path. */
vd_status vd_metrics_open(vd_metrics **out, const char *path, vd_err *err);
/* One line for step: split ("train", "val", ...) and n (name, value) pairs. A name that is
 * empty or one of "step", "split", "time" is VD_ERR_INVALID; a failed write VD_ERR_IO. */
vd_status vd_metrics_write(vd_metrics *m, int64_t step, const char *split,
                           const char *const *names, const double *values, int n, vd_err *err);
/* NULL is ok. */
void vd_metrics_close(vd_metrics *m);

#ifdef __cplusplus
}
#endif
#endif
