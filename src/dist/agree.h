/* Agreement between ranks on things that must be the same everywhere before a job may go on
 * (the config, the weights a run starts from) or on a failure that some ranks met alone: every
 * rank learns the outcome, so all go on or all stop with the same error, and none waits for a
 * rank that has given up. */
#ifndef VD_DIST_AGREE_H
#define VD_DIST_AGREE_H

#include <stdint.h>

#include "dist/comm.h"

/* Every rank's status of a step that may fail on some ranks only: VD_OK when all succeeded;
 * else every rank returns an error, its own or "rank R: <message>" of the first rank that
 * failed, and c->failed_together is set (the job can end without an abort). */
vd_status vd_dist_agree_status(vd_comm *c, vd_status st, vd_err *err);

/* The same 64-bit digest of `what` on every rank, or VD_ERR_INVALID on every rank naming each
 * rank whose digest differs from rank 0's with its `desc` (up to 255 bytes: what it loaded). */
vd_status vd_dist_agree_digest(vd_comm *c, const char *what, uint64_t digest, const char *desc,
                               vd_err *err);

/* The same text on every rank, compared line by line with rank 0's, or VD_ERR_INVALID on every
 * rank naming the first differing lines of each rank that differs; lines under a "[section]"
 * header of the form "key = value" are named "section.key". */
vd_status vd_dist_agree_text(vd_comm *c, const char *what, const char *text, vd_err *err);

/* A 64-bit digest of n bytes continuing from h (start with VD_FNV64_INIT): FNV-1a over 8-byte
 * words (then the tail bytes), eight times faster than bytewise on the weights of a model. */
#define VD_FNV64_INIT 0xcbf29ce484222325ull
uint64_t vd_fnv64(uint64_t h, const void *p, size_t n);

#endif
