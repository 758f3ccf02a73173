/* terms.c - the table of distillation terms (distill_term.h). */
#include <stdio.h>
#include <stdlib.h>

#include "feed/check.h"
#include "feed/distill_term.h"

static const float *net_tap(void *ctx, const char *name, int dims[4]) { return feed_net_tap(ctx, name, dims); }
static void net_tap_add_grad(void *ctx, const char *name, const float *g) { feed_net_tap_add_grad(ctx, name, g); }

feed_student_taps feed_student_taps_of(feed_net *student) {
    return (feed_student_taps){.ctx = student, .get = net_tap, .add_grad = net_tap_add_grad};
}

const feed_term_ops *const feed_term_table[FEED_NUM_TERMS] = {
    [FEED_TERM_FEED] = &feed_term_feed,
    [FEED_TERM_KD] = &feed_term_kd,
    [FEED_TERM_AT] = &feed_term_at,
    [FEED_TERM_L1] = &feed_term_l1,
    [FEED_TERM_FT] = &feed_term_ft,
};

int feed_terms_outputs(const feed_config *cfg) {
    const feed_int_list *terms = feed_cfg_terms(cfg);
    int outputs = 0;
    for (int i = 0; i < terms->n; i++) outputs |= feed_term_table[terms->v[i]]->outputs;
    return outputs;
}

void feed_term_losses_init(feed_term_losses *l, int n, const char *prefix, bool per_teacher) {
    l->n = n;
    l->steps = 0;
    l->sum = feed_xcalloc((size_t)n, sizeof *l->sum, "term losses");
    l->last = feed_xcalloc((size_t)n, sizeof *l->last, "term losses");
    l->names = feed_xcalloc((size_t)n, sizeof *l->names, "term metric names");
    for (int k = 0; k < n; k++) {
        if (per_teacher) snprintf(l->names[k], sizeof l->names[k], "%s_%d", prefix, k + 1);
        else snprintf(l->names[k], sizeof l->names[k], "%s", prefix);
    }
}

void feed_term_losses_begin(feed_term_losses *l) {
    for (int k = 0; k < l->n; k++) l->last[k] = 0;
}

void feed_term_losses_commit(feed_term_losses *l) {
    for (int k = 0; k < l->n; k++) l->sum[k] += l->last[k];
    l->steps++;
}

int feed_term_losses_report(feed_term_losses *l, const char **names, double *values, int max) {
    int m = 0;
    for (int k = 0; k < l->n && m < max; k++, m++) {
        names[m] = l->names[k];
        values[m] = l->steps ? l->sum[k] / (double)l->steps : 0;
        l->sum[k] = 0;
    }
    l->steps = 0;
    return m;
}

void feed_term_losses_free(feed_term_losses *l) {
    free(l->sum), free(l->last), free(l->names);
    l->sum = l->last = NULL, l->names = NULL;
}

float feed_term_scale(double beta, int beta_reduce, int n_teachers) {
    return (float)(beta_reduce == FEED_BETA_MEAN ? beta / n_teachers : beta);
}
