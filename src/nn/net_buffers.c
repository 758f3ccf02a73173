/* net_buffers.c - a network's BN buffers (running statistics, num_batches_tracked) saved
 * before a training forward and put back when the step is dropped (net.h). Plain memcpy of
 * the engine's arrays in entry order: no reorder, no allocation. */
#include <string.h>

#include "nn_internal.h"

static size_t buffer_bytes(const feed_entry *e) {
    return e->info.dtype == FEED_I64 ? sizeof(int64_t) : md_floats(&e->md) * sizeof(float);
}

size_t feed_net_buffers_bytes(const feed_net *net) {
    size_t n = 0;
    for (int i = 0; i < net->ne; i++)
        if (net->e[i].info.kind == FEED_BUFFER) n += buffer_bytes(&net->e[i]);
    return n;
}

void feed_net_buffers_save(const feed_net *net, void *buf) {
    char *p = buf;
    for (int i = 0; i < net->ne; i++) {
        const feed_entry *e = &net->e[i];
        if (e->info.kind != FEED_BUFFER) continue;
        size_t n = buffer_bytes(e);
        memcpy(p, e->info.dtype == FEED_I64 ? (const void *)&e->i64 : (const void *)e->data, n);
        p += n;
    }
}

void feed_net_buffers_restore(feed_net *net, const void *buf) {
    const char *p = buf;
    for (int i = 0; i < net->ne; i++) {
        feed_entry *e = &net->e[i];
        if (e->info.kind != FEED_BUFFER) continue;
        size_t n = buffer_bytes(e);
        memcpy(e->info.dtype == FEED_I64 ? (void *)&e->i64 : (void *)e->data, p, n);
        p += n;
    }
}
