/* teacher_outputs.c - the payload layout of teacher_outputs.h. */
#include <stdio.h>

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
