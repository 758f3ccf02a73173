/* teacher.c - a frozen teacher and its payload (teacher.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
#include "feed/loss_at.h"
#include "feed/paraphraser.h"
#include "feed/teacher.h"
#include "feed/train.h"

struct feed_teacher {
    feed_net *net;          /* inference-only */
    feed_net *encoder;      /* FT's paraphraser encoder, or NULL */
    feed_teacher_layout layout;
};

feed_net *feed_teacher_load_net(const char *path, const feed_dataset *ds, const char *data_path, int batch) {
    feed_net *net = feed_model_load(path, "teacher", ds, data_path, batch, NULL, 0);
    int dims[4];
    FEED_CHECK(feed_net_tap(net, "final", dims), "this is a bug", "teacher model %s has no 'final' tap", path);
    return net;
}

feed_teacher_layout feed_teacher_layout_of(feed_net *net, int outputs, int factor_c) {
    feed_teacher_layout l = {.outputs = outputs};
    int d[4];
    feed_net_tap(net, "final", d);
    l.batch = d[0], l.final_c = d[1], l.final_h = d[2], l.final_w = d[3];
    l.stages = feed_model_num_stages(net);
    FEED_CHECK(l.stages <= FEED_MAX_STAGES, "this is a bug", "model with %d stages", l.stages);
    for (int s = 0; s < l.stages; s++) {
        feed_net_tap(net, feed_fmt("layer%d", s + 1), d);
        l.stage_c[s] = d[1], l.stage_h[s] = d[2], l.stage_w[s] = d[3];
    }
    feed_net_output_shape(net, d);
    l.classes = d[1];
    l.factor_c = outputs & FEED_OUT_FACTOR ? factor_c : 0;
    return l;
}

feed_teacher_layout feed_teacher_layout_from_file(const feed_config *cfg, int n, const feed_dataset *ds, int outputs,
                                                  int batch) {
    feed_net *net = feed_teacher_load_net(cfg->distill.teachers.v[n], ds, cfg->data.path, 1);
    int d[4];
    feed_net_tap(net, "final", d);
    int factor_c = (int)lround(cfg->ft.rate * d[1]);
    feed_teacher_layout l = feed_teacher_layout_of(net, outputs, factor_c < 1 ? 1 : factor_c);
    l.batch = batch;
    feed_net_free(net);
    return l;
}

feed_teacher *feed_teacher_open(const feed_config *cfg, int n, const feed_dataset *ds, int outputs, int batch) {
    feed_teacher *t = feed_xcalloc(1, sizeof *t, "teacher");
    t->net = feed_teacher_load_net(cfg->distill.teachers.v[n], ds, cfg->data.path, batch);
    int factor_c = 0;
    if (outputs & FEED_OUT_FACTOR) {
        t->encoder = feed_paraphraser_encoder(cfg, n, t->net, ds, batch);
        int d[4];
        feed_net_output_shape(t->encoder, d);
        factor_c = d[1];
    }
    t->layout = feed_teacher_layout_of(t->net, outputs, factor_c);
    return t;
}

feed_teacher *feed_teacher_wrap(feed_net *net, int outputs) {
    FEED_CHECK(!(outputs & FEED_OUT_FACTOR), "this is a bug", "a wrapped teacher has no paraphraser");
    feed_teacher *t = feed_xcalloc(1, sizeof *t, "teacher");
    t->net = net;
    t->layout = feed_teacher_layout_of(net, outputs, 0);
    return t;
}

const feed_teacher_layout *feed_teacher_get_layout(const feed_teacher *t) { return &t->layout; }

feed_net *feed_teacher_net(feed_teacher *t) { return t->net; }

void feed_teacher_compute(feed_teacher *t, const float *x, float *payload) {
    const feed_teacher_layout *l = &t->layout;
    feed_teacher_view v = feed_teacher_view_of(l, payload);
    feed_net_forward(t->net, x, 0);
    size_t B = (size_t)l->batch, final_elems = B * l->final_c * l->final_h * l->final_w;
    const float *final = NULL;
    if (l->outputs & (FEED_OUT_FINAL | FEED_OUT_FACTOR)) final = feed_net_tap(t->net, "final", NULL);
    if (v.final) memcpy((float *)v.final, final, final_elems * sizeof(float));
    for (int s = 0; v.attention[0] && s < l->stages; s++) {
        const float *a = feed_net_tap(t->net, feed_fmt("layer%d", s + 1), NULL); /* (B, C_s, H_s, W_s) */
        feed_attention_map(a, l->batch, l->stage_c[s], (size_t)l->stage_h[s] * l->stage_w[s], (float *)v.attention[s]);
    }
    if (v.logits) memcpy((float *)v.logits, feed_net_output(t->net), B * l->classes * sizeof(float));
    if (v.factor) {
        feed_net_forward(t->encoder, final, 0);
        memcpy((float *)v.factor, feed_net_output(t->encoder), B * l->factor_c * l->final_h * l->final_w * sizeof(float));
    }
}

int feed_teacher_direct_bf16(const feed_teacher *t) {
    return t->layout.outputs == FEED_OUT_FINAL && feed_net_precision(t->net) == FEED_PRECISION_BF16 &&
           !getenv("FEED_TEACHER_NO_DIRECT_BF16"); /* tests: the fp32 route, to compare */
}

void feed_teacher_compute_bf16(feed_teacher *t, const float *x, uint16_t *payload) {
    FEED_CHECK(feed_teacher_direct_bf16(t), "this is a bug", "direct bf16 payload from a teacher that has none");
    feed_net_forward(t->net, x, 0);
    feed_net_tap_bf16(t->net, "final", payload); /* (B, C, H, W) */
}

void feed_teacher_free(feed_teacher *t) {
    if (!t) return;
    feed_net_free(t->net);
    feed_net_free(t->encoder);
    free(t);
}

uint64_t feed_batch_id(const int64_t *idx, int n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < n; i++) {
        uint64_t v = (uint64_t)idx[i];
        for (int b = 0; b < 8; b++) {
            h ^= (v >> (8 * b)) & 0xff;
            h *= 0x100000001b3ull;
        }
    }
    return h;
}
