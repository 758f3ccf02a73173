/* fake_student.h - a student as distillation terms see it (feed_student_taps), over arrays the
 * test owns: named taps with given values, and the gradients the term adds recorded per tap. */
#ifndef FAKE_STUDENT_H
#define FAKE_STUDENT_H

#include <stddef.h>

#include "feed/distill_term.h"

typedef struct {
    const char *name;   /* "final", "layer1", ... */
    int dims[4];        /* (B, C, H, W) */
    float *value, *grad; /* numel each; grad accumulates what the term adds */
} fake_tap;

typedef struct {
    fake_tap *taps;
    int n;
} fake_student;

/* The taps view of s (s must outlive it). */
feed_student_taps fake_student_taps(fake_student *s);
fake_tap *fake_student_find(fake_student *s, const char *name);
void fake_student_zero_grads(fake_student *s);
size_t fake_tap_numel(const fake_tap *t);

#endif
