/* CRC32C for TFRecord framing, by hand: Debian has no small C library for it (zlib's crc32 is
 * another polynomial, ISA-L a storage toolkit, crcutil C++) and it is a dozen lines. */
#include "io/crc32c.h"

/* Reflected polynomial 0x82f63b78 applied to each 4-bit value: half a byte per lookup is fast
 * enough for logs and keeps the table small. */
static const uint32_t nibble_table[16] = {
    0x00000000, 0x105ec76f, 0x20bd8ede, 0x30e349b1, 0x417b1dbc, 0x5125dad3, 0x61c69362, 0x7198540d,
    0x82f63b78, 0x92a8fc17, 0xa24bb5a6, 0xb21572c9, 0xc38d26c4, 0xd3d3e1ab, 0xe330a81a, 0xf36e6f75,
};

uint32_t vd_crc32c(const void *p, size_t n) {
    const unsigned char *b = p;
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        crc ^= b[i];
        crc = (crc >> 4) ^ nibble_table[crc & 15];
        crc = (crc >> 4) ^ nibble_table[crc & 15];
    }
    return crc ^ 0xffffffffu;
}

uint32_t vd_crc32c_masked(const void *p, size_t n) {
    uint32_t crc = vd_crc32c(p, n);
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}
