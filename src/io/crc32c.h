/* CRC32C (Castagnoli), the checksum of TFRecord framing, and TFRecord's masked form. */
#ifndef VDVAE_IO_CRC32C_H
#define VDVAE_IO_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC32C of p[0..n) (crc32c("123456789") == 0xe3069283). */
uint32_t vd_crc32c(const void *p, size_t n);
/* TFRecord stores ((crc >> 15) | (crc << 17)) + 0xa282ead8, so that a CRC of data that itself
 * holds CRCs does not degenerate. */
uint32_t vd_crc32c_masked(const void *p, size_t n);

#endif
