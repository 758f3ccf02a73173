/* h5_image_fixup.c - repairs the superblock checksum of an HDF5 1.10 file image.
 *
 * H5Fget_file_image clears the "open for writing" flag (byte 11) of a version 2 or 3
 * superblock in the image it returns, but keeps the checksum computed with the flag set, so
 * the image does not open ("incorrect metadata checksum"). We recompute the checksum with
 * HDF5's own function, Bob Jenkins' lookup3 hashlittle() (public domain), over the superblock.
 * When HDF5 gets this right, the recomputed value is the one already there. */
#include "h5_util.h"

#include <string.h>

#define ROT(x, k) (((x) << (k)) | ((x) >> (32 - (k))))
#define MIX(a, b, c)                                                                              \
    do {                                                                                          \
        a -= c; a ^= ROT(c, 4);  c += b;                                                          \
        b -= a; b ^= ROT(a, 6);  a += c;                                                          \
        c -= b; c ^= ROT(b, 8);  b += a;                                                          \
        a -= c; a ^= ROT(c, 16); c += b;                                                          \
        b -= a; b ^= ROT(a, 19); a += c;                                                          \
        c -= b; c ^= ROT(b, 4);  b += a;                                                          \
    } while (0)
#define FINAL(a, b, c)                                                                            \
    do {                                                                                          \
        c ^= b; c -= ROT(b, 14);                                                                  \
        a ^= c; a -= ROT(c, 11);                                                                  \
        b ^= a; b -= ROT(a, 25);                                                                  \
        c ^= b; c -= ROT(b, 16);                                                                  \
        a ^= c; a -= ROT(c, 4);                                                                   \
        b ^= a; b -= ROT(a, 14);                                                                  \
        c ^= b; c -= ROT(b, 24);                                                                  \
    } while (0)

uint32_t h5_checksum_lookup3(const void *data, size_t length, uint32_t initval) {
    const uint8_t *k = data;
    uint32_t a, b, c;
    a = b = c = 0xdeadbeefu + (uint32_t)length + initval;
    while (length > 12) {
        a += k[0] + ((uint32_t)k[1] << 8) + ((uint32_t)k[2] << 16) + ((uint32_t)k[3] << 24);
        b += k[4] + ((uint32_t)k[5] << 8) + ((uint32_t)k[6] << 16) + ((uint32_t)k[7] << 24);
        c += k[8] + ((uint32_t)k[9] << 8) + ((uint32_t)k[10] << 16) + ((uint32_t)k[11] << 24);
        MIX(a, b, c);
        length -= 12;
        k += 12;
    }
    switch (length) { /* the last 1..12 bytes; every case falls through */
    case 12: c += (uint32_t)k[11] << 24; /* fall through */
    case 11: c += (uint32_t)k[10] << 16; /* fall through */
    case 10: c += (uint32_t)k[9] << 8;   /* fall through */
    case 9: c += k[8];                   /* fall through */
    case 8: b += (uint32_t)k[7] << 24;   /* fall through */
    case 7: b += (uint32_t)k[6] << 16;   /* fall through */
    case 6: b += (uint32_t)k[5] << 8;    /* fall through */
    case 5: b += k[4];                   /* fall through */
    case 4: a += (uint32_t)k[3] << 24;   /* fall through */
    case 3: a += (uint32_t)k[2] << 16;   /* fall through */
    case 2: a += (uint32_t)k[1] << 8;    /* fall through */
    case 1: a += k[0]; break;
    case 0: return c;
    }
    FINAL(a, b, c);
    return c;
}

int h5_image_fix_superblock(unsigned char *image, size_t size) {
    static const unsigned char signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    if (size < 12 || memcmp(image, signature, 8) != 0) return -1;
    unsigned version = image[8], sizeof_offsets = image[9];
    if (version < 2) return 0; /* versions 0 and 1 have no checksum */
    /* version 2/3: signature, version, sizes of offsets and lengths, flags (12 bytes), then
     * base, extension, end-of-file and root addresses, then the checksum */
    size_t checked = 12 + 4 * (size_t)sizeof_offsets;
    if (sizeof_offsets == 0 || checked + 4 > size) return -1;
    uint32_t sum = h5_checksum_lookup3(image, checked, 0);
    for (int i = 0; i < 4; i++) image[checked + i] = (unsigned char)(sum >> (8 * i)); /* little-endian */
    return 0;
}
