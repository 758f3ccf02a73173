/* net_snapshot.c - a network's parameters and buffers as one byte string (train.h). */
#include <string.h>

#include "feed/check.h"
#include "feed/train.h"

static size_t entry_bytes(const feed_param_info *e) { return e->numel * (e->dtype == FEED_I64 ? 8 : 4); }

size_t feed_net_snapshot_bytes(const feed_net *net) {
    size_t n = 0;
    for (int i = 0; i < feed_net_num_entries(net); i++) n += entry_bytes(feed_net_entry(net, i));
    return n;
}

/* int64 entries may sit at any offset of the byte string: they go through an aligned copy. */
void feed_net_snapshot_get(const feed_net *net, void *buf) {
    char *p = buf;
    for (int i = 0; i < feed_net_num_entries(net); i++) {
        const feed_param_info *e = feed_net_entry(net, i);
        if (e->dtype == FEED_I64) {
            int64_t v;
            feed_net_get(net, i, &v);
            memcpy(p, &v, sizeof v);
        } else {
            feed_net_get(net, i, p);
        }
        p += entry_bytes(e);
    }
}

void feed_net_snapshot_set(feed_net *net, const void *buf) {
    const char *p = buf;
    for (int i = 0; i < feed_net_num_entries(net); i++) {
        const feed_param_info *e = feed_net_entry(net, i);
        if (e->dtype == FEED_I64) {
            int64_t v;
            memcpy(&v, p, sizeof v);
            feed_net_set(net, i, &v);
        } else {
            feed_net_set(net, i, p);
        }
        p += entry_bytes(e);
    }
}

void feed_net_snapshot_read(const feed_ckpt *ck, const feed_net *net, const char *group, void *buf) {
    char *p = buf;
    for (int i = 0; i < feed_net_num_entries(net); i++) {
        const feed_param_info *e = feed_net_entry(net, i);
        feed_ckpt_shape s = {e->dtype == FEED_I64 ? FEED_CKPT_I64 : FEED_CKPT_F32, e->ndims, {0}};
        for (int d = 0; d < e->ndims; d++) s.dims[d] = e->shape[d];
        if (e->dtype == FEED_I64) {
            int64_t v;
            feed_ckpt_read(ck, group, e->name, s, &v);
            memcpy(p, &v, sizeof v);
        } else {
            feed_ckpt_read(ck, group, e->name, s, p);
        }
        p += entry_bytes(e);
    }
}
