/* finite.c - see include/feed/finite.h. */
#include "feed/finite.h"

#include <stdint.h>
#include <string.h>

/* Inf and NaN are the floats whose 8 exponent bits are all ones. */
static inline uint32_t nonfinite_bit(const float *p) {
    uint32_t u;
    memcpy(&u, p, sizeof u);
    return (uint32_t)((u & 0x7f800000u) == 0x7f800000u);
}

size_t feed_first_nonfinite(const float *x, size_t n) {
    const size_t block = 4096; /* scan a block branch-free, then find the position in it */
    for (size_t start = 0; start < n; start += block) {
        size_t end = start + block < n ? start + block : n;
        uint32_t bad = 0;
        for (size_t i = start; i < end; i++) bad |= nonfinite_bit(&x[i]);
        if (bad)
            for (size_t i = start; i < end; i++)
                if (nonfinite_bit(&x[i])) return i;
    }
    return n;
}
