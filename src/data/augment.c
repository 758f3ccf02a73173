/* augment.c - per-sample augmentation parameters and the pad + crop + flip + normalise of one
 * image from H x W x C uint8 to C x H x W float32 (contract in include/feed/loader.h). */
#include <stdint.h>

#include "feed/loader.h"
#include "feed/rng.h"

feed_augment_params feed_augment_draw(uint64_t seed, int64_t epoch, int64_t sample_index,
                                      int pad, bool random_crop, bool hflip) {
    uint32_t w[4];
    feed_philox4x32_10(seed, FEED_RNG_AUGMENT, ((uint64_t)epoch << 32) | (uint64_t)sample_index, w);
    const uint64_t range = 2 * (uint64_t)pad + 1;
    feed_augment_params p;
    p.dy = random_crop ? (int)(((uint64_t)w[0] * range) >> 32) : pad;
    p.dx = random_crop ? (int)(((uint64_t)w[1] * range) >> 32) : pad;
    p.flip = hflip && (w[2] >> 31);
    return p;
}

void feed_augment_build_lut(const feed_dataset *ds, bool normalize, float *lut) {
    for (int c = 0; c < ds->channels; c++)
        for (int v = 0; v < 256; v++) {
            float x = (float)v / 255.0f;
            lut[c * 256 + v] = normalize ? (x - ds->mean[c]) / ds->std[c] : x;
        }
}

/* Source index for padded coordinate i of an axis of length n: -1 when it falls in a zero
 * border; mirrored (without repeating the edge) in reflect mode. Requires pad < n. */
static inline int source_index(int i, int n, feed_pad_mode mode) {
    if (i >= 0 && i < n) return i;
    if (mode == FEED_PAD_ZERO) return -1;
    return i < 0 ? -i : 2 * n - 2 - i;
}

void feed_augment_image(const uint8_t *src, int height, int width, int channels,
                        const feed_augment_params *p, int pad, feed_pad_mode mode,
                        const float *lut, float *dst) {
    /* Column and row maps of this crop: col_off[x] = byte offset of the source pixel within a
     * row (-1: zero border), row_src[y] = source row (-1: zero border). */
    int col_off[FEED_AUGMENT_MAX_SIDE], row_src[FEED_AUGMENT_MAX_SIDE];
    for (int x = 0; x < width; x++) {
        int sx = source_index((p->flip ? width - 1 - x : x) + p->dx - pad, width, mode);
        col_off[x] = sx < 0 ? -1 : sx * channels;
    }
    for (int y = 0; y < height; y++) row_src[y] = source_index(y + p->dy - pad, height, mode);
    for (int c = 0; c < channels; c++) {
        const float *lc = lut + c * 256;
        const float zero = lc[0];
        float *plane = dst + (int64_t)c * height * width; /* H x W */
        for (int y = 0; y < height; y++) {
            float *out = plane + (int64_t)y * width;
            if (row_src[y] < 0) {
                for (int x = 0; x < width; x++) out[x] = zero;
                continue;
            }
            const uint8_t *row = src + ((int64_t)row_src[y] * width) * channels + c;
            for (int x = 0; x < width; x++) out[x] = col_off[x] < 0 ? zero : lc[row[col_off[x]]];
        }
    }
}
