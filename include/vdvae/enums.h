/* The enums that both the typed hyper-parameters (vdvae/config.h) and the backend op
 * interface (src/backend/ops.h) speak, in a header of their own so that ops.h needs no cfg. */
#ifndef VDVAE_ENUMS_H
#define VDVAE_ENUMS_H

#ifdef __cplusplus
extern "C" {
#endif

/* What a latent's or the output's second parameter is: a std (through softplus) or a log std. */
typedef enum vd_dist_base { VD_BASE_STD, VD_BASE_LOGSTD } vd_dist_base;
typedef enum vd_opt_type { VD_OPT_ADAMAX, VD_OPT_ADAM, VD_OPT_RADAM } vd_opt_type;
/* The precision of the convolutions ([run] precision). */
typedef enum vd_precision { VD_PREC_FP32, VD_PREC_BF16 } vd_precision;

#ifdef __cplusplus
}
#endif

#endif
