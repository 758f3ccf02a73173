/* net_checkpoint.c - a network's parameters, buffers and optimizer state <-> checkpoint
 * tensors in PyTorch names and layouts. */
#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
#include "feed/train.h"

static feed_ckpt_shape entry_shape(const feed_param_info *e) {
    feed_ckpt_shape s = {e->dtype == FEED_I64 ? FEED_CKPT_I64 : FEED_CKPT_F32, e->ndims, {0}};
    for (int d = 0; d < e->ndims; d++) s.dims[d] = e->shape[d];
    return s;
}

static size_t largest_entry(const feed_net *net) {
    size_t m = 1;
    for (int i = 0; i < feed_net_num_entries(net); i++) {
        size_t n = feed_net_entry(net, i)->numel;
        m = n > m ? n : m;
    }
    return m;
}

void feed_net_save(feed_ckpt_writer *w, feed_net *net, const char *group) {
    void *buf = feed_xmalloc(largest_entry(net) * 8, "checkpoint tensor");
    for (int i = 0; i < feed_net_num_entries(net); i++) {
        const feed_param_info *e = feed_net_entry(net, i);
        feed_net_get(net, i, buf);
        feed_ckpt_put(w, group, e->name, entry_shape(e), buf);
    }
    free(buf);
}

void feed_net_load(const feed_ckpt *ck, feed_net *net, const char *group) {
    void *buf = feed_xmalloc(largest_entry(net) * 8, "checkpoint tensor");
    for (int i = 0; i < feed_net_num_entries(net); i++) {
        const feed_param_info *e = feed_net_entry(net, i);
        feed_ckpt_read(ck, group, e->name, entry_shape(e), buf);
        feed_net_set(net, i, buf);
    }
    free(buf);
}

/* The engine converts between its layout and PyTorch's only for the parameters themselves
 * (feed_net_get/set). A flat array in the same layout (momentum) is converted by standing in
 * for the parameters for a moment: the conversion is a pure reorder, so this is exact. The
 * parameters are restored bit for bit afterwards. */
void feed_net_save_flat(feed_ckpt_writer *w, feed_net *net, const float *flat, const char *group) {
    size_t n;
    float *params = feed_net_params(net, &n);
    float *saved = feed_xmalloc(n * sizeof(float), "parameter backup");
    memcpy(saved, params, n * sizeof(float));
    memcpy(params, flat, n * sizeof(float));
    float *buf = feed_xmalloc(largest_entry(net) * sizeof(float), "checkpoint tensor");
    for (int i = 0; i < feed_net_num_entries(net); i++) {
        const feed_param_info *e = feed_net_entry(net, i);
        if (e->kind != FEED_PARAM) continue;
        feed_net_get(net, i, buf);
        feed_ckpt_put(w, group, e->name, entry_shape(e), buf);
    }
    memcpy(params, saved, n * sizeof(float));
    feed_net_params_changed(net);
    free(buf);
    free(saved);
}

void feed_net_load_flat(const feed_ckpt *ck, feed_net *net, float *flat, const char *group) {
    size_t n;
    float *params = feed_net_params(net, &n);
    float *saved = feed_xmalloc(n * sizeof(float), "parameter backup");
    memcpy(saved, params, n * sizeof(float));
    float *buf = feed_xmalloc(largest_entry(net) * sizeof(float), "checkpoint tensor");
    memset(flat, 0, n * sizeof(float));
    for (int i = 0; i < feed_net_num_entries(net); i++) {
        const feed_param_info *e = feed_net_entry(net, i);
        if (e->kind != FEED_PARAM) continue;
        feed_ckpt_read(ck, group, e->name, entry_shape(e), buf);
        feed_net_set(net, i, buf);
        memcpy(flat + e->offset, params + e->offset, e->len * sizeof(float));
    }
    memcpy(params, saved, n * sizeof(float));
    feed_net_params_changed(net);
    free(buf);
    free(saved);
}
