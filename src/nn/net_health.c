/* net_health.c - finding non-finite values in a network's parameters, gradients and
 * buffers (net.h), read in place in the engine's layout: no reorder, no allocation, so the
 * trainer can look every step. */
#include "feed/finite.h"
#include "nn_internal.h"

int feed_net_first_nonfinite(const feed_net *net, int which, float *value) {
    for (int i = 0; i < net->ne; i++) {
        const feed_entry *e = &net->e[i];
        if (e->info.dtype != FEED_F32) continue;
        const float *x = which == FEED_CHECK_GRADS ? (e->info.kind == FEED_PARAM ? e->grad : NULL)
                       : which == FEED_CHECK_BUFFERS ? (e->info.kind == FEED_BUFFER ? e->data : NULL)
                       : e->data;
        if (!x) continue;
        size_t n = md_floats(&e->md), at = feed_first_nonfinite(x, n);
        if (at < n) {
            if (value) *value = x[at];
            return i;
        }
    }
    return -1;
}
