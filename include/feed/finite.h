/* finite.h - finding Inf and NaN in float arrays: the numerical-health checks of training,
 * checkpoint writing and loading. */
#ifndef FEED_FINITE_H
#define FEED_FINITE_H

#include <stddef.h>

/* Index of the first Inf or NaN in x[0..n-1], or n when all are finite. Reads each float
 * once with an integer test of its exponent bits (vectorised, no float reassociation):
 * cheap enough to run over every gradient of every step. */
size_t feed_first_nonfinite(const float *x, size_t n);

#endif
