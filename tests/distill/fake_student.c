/* fake_student.c - see fake_student.h. */
#include "fake_student.h"

#include <string.h>

size_t fake_tap_numel(const fake_tap *t) { return (size_t)t->dims[0] * t->dims[1] * t->dims[2] * t->dims[3]; }

fake_tap *fake_student_find(fake_student *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->taps[i].name, name) == 0) return &s->taps[i];
    return NULL;
}

static const float *get(void *ctx, const char *name, int dims[4]) {
    fake_tap *t = fake_student_find(ctx, name);
    if (t && dims) memcpy(dims, t->dims, sizeof t->dims);
    return t ? t->value : NULL;
}

static void add_grad(void *ctx, const char *name, const float *g) {
    fake_tap *t = fake_student_find(ctx, name);
    for (size_t i = 0; t && i < fake_tap_numel(t); i++) t->grad[i] += g[i];
}

feed_student_taps fake_student_taps(fake_student *s) {
    return (feed_student_taps){.ctx = s, .get = get, .add_grad = add_grad};
}

void fake_student_zero_grads(fake_student *s) {
    for (int i = 0; i < s->n; i++) memset(s->taps[i].grad, 0, fake_tap_numel(&s->taps[i]) * sizeof(float));
}
