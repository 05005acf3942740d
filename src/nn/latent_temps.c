/* Sampling temperatures per latent group from one temperature_settings entry, as the
 * reference's generation and training-time samples read them. */
#include "vdvae/model.h"

void vd_arch_latent_temps(const vd_arch *a, int n_levels, const vd_temp_setting *t, float *temps) {
    int g = 0;
    for (int i = 0; i < a->n_blocks; i++) {
        const vd_block *b = &a->blocks[i];
        if (b->kind != VD_BLOCK_DOWN) continue;
        double v = t->kind == VD_TEMP_CONST ? t->t
                 : t->kind == VD_TEMP_LIST ? t->per_block[b->level]
                 : t->first + (t->last - t->first) * b->level / n_levels;
        temps[g++] = (float)v; /* latent groups are the DOWN blocks in execution order */
    }
}
