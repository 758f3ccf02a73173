/* teacher_outputs.c - the payload layout of teacher_outputs.h. */
#include <stdio.h>
#include <string.h>

#include "feed/teacher_outputs.h"

/* Offsets (in floats) of each block; absent blocks have size 0. */
typedef struct {
    size_t final, attention[FEED_MAX_STAGES], logits, factor, total;
} payload_offsets;

static payload_offsets offsets_of(const feed_teacher_layout *l) {
    payload_offsets o = {0};
    size_t at = 0, B = (size_t)l->batch;
    o.final = at;
    if (l->outputs & FEED_OUT_FINAL) at += B * l->final_c * l->final_h * l->final_w;
    for (int s = 0; s < l->stages && s < FEED_MAX_STAGES; s++) {
        o.attention[s] = at;
        if (l->outputs & FEED_OUT_ATTENTION) at += B * l->stage_h[s] * l->stage_w[s];
    }
    o.logits = at;
    if (l->outputs & FEED_OUT_LOGITS) at += B * l->classes;
    o.factor = at;
    if (l->outputs & FEED_OUT_FACTOR) at += B * l->factor_c * l->final_h * l->final_w;
    o.total = at;
    return o;
}

size_t feed_teacher_payload_elems(const feed_teacher_layout *l) { return offsets_of(l).total; }

feed_teacher_view feed_teacher_view_of(const feed_teacher_layout *l, const float *payload) {
    payload_offsets o = offsets_of(l);
    feed_teacher_view v = {0};
    if (l->outputs & FEED_OUT_FINAL) v.final = payload + o.final;
    if (l->outputs & FEED_OUT_ATTENTION)
        for (int s = 0; s < l->stages; s++) v.attention[s] = payload + o.attention[s];
    if (l->outputs & FEED_OUT_LOGITS) v.logits = payload + o.logits;
    if (l->outputs & FEED_OUT_FACTOR) v.factor = payload + o.factor;
    return v;
}

/* Every block is (B, per-sample floats) row-major: shard r takes rows r, r + P, ... */
void feed_teacher_payload_shard(const feed_teacher_layout *whole, const float *payload, int r, int P, float *dst) {
    feed_teacher_layout part = *whole;
    part.batch = whole->batch / P;
    payload_offsets a = offsets_of(whole), b = offsets_of(&part);
    size_t from[3 + FEED_MAX_STAGES], to[3 + FEED_MAX_STAGES], per[3 + FEED_MAX_STAGES];
    int n = 0;
    if (whole->outputs & FEED_OUT_FINAL)
        from[n] = a.final, to[n] = b.final, per[n++] = (size_t)whole->final_c * whole->final_h * whole->final_w;
    if (whole->outputs & FEED_OUT_ATTENTION)
        for (int s = 0; s < whole->stages; s++)
            from[n] = a.attention[s], to[n] = b.attention[s], per[n++] = (size_t)whole->stage_h[s] * whole->stage_w[s];
    if (whole->outputs & FEED_OUT_LOGITS) from[n] = a.logits, to[n] = b.logits, per[n++] = (size_t)whole->classes;
    if (whole->outputs & FEED_OUT_FACTOR)
        from[n] = a.factor, to[n] = b.factor, per[n++] = (size_t)whole->factor_c * whole->final_h * whole->final_w;
    for (int k = 0; k < n; k++)
        for (int j = 0; j < part.batch; j++)
            memcpy(dst + to[k] + (size_t)j * per[k], payload + from[k] + ((size_t)j * P + r) * per[k],
                   per[k] * sizeof(float));
}

const char *feed_teacher_outputs_str(const feed_teacher_layout *l, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = 0;
#define APPEND(...) (n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, __VA_ARGS__))
    if (l->outputs & FEED_OUT_FINAL) APPEND("final map %dx%dx%d", l->final_c, l->final_h, l->final_w);
    if (l->outputs & FEED_OUT_ATTENTION) {
        APPEND("%sattention maps", n ? " + " : "");
        for (int s = 0; s < l->stages; s++) APPEND("%s%dx%d", s ? "," : " ", l->stage_h[s], l->stage_w[s]);
    }
    if (l->outputs & FEED_OUT_LOGITS) APPEND("%slogits %d", n ? " + " : "", l->classes);
    if (l->outputs & FEED_OUT_FACTOR)
        APPEND("%sFT factor %dx%dx%d", n ? " + " : "", l->factor_c, l->final_h, l->final_w);
#undef APPEND
    return buf;
}
