/* check.c - `feed_mpi --check` of a distill job (distill.h): every teacher opened and checked
 * against the data set, the terms created against a one-image student exactly as the run
 * creates them (so their shape checks run), what each sends and builds, without training. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "feed/check.h"
#include "feed/distill.h"
#include "feed/distill_term.h"
#include "feed/feature_transport.h"
#include "feed/paraphraser.h"
#include "feed/teacher.h"
#include "feed/train.h"

void feed_distill_check(const feed_config *cfg, const feed_dataset *ds, const feed_model_spec *model) {
    int N = cfg->distill.teachers.n, outputs = feed_terms_outputs(cfg);
    feed_teacher_layout *layouts = feed_xcalloc((size_t)N, sizeof *layouts, "teacher layouts");
    for (int k = 0; k < N; k++) {
        const char *path = cfg->distill.teachers.v[k];
        feed_net *net = feed_teacher_load_net(path, ds, cfg->data.path, 1);
        int d[4];
        feed_net_tap(net, "final", d);
        int factor_c = (int)lround(cfg->ft.rate * d[1]);
        layouts[k] = feed_teacher_layout_of(net, outputs, factor_c < 1 ? 1 : factor_c);
        char what[256];
        size_t floats = feed_teacher_payload_elems(&layouts[k]);
        printf("teacher  %d: %s, final map %dx%dx%d; sends %s (%.2f MB per step of %d images, %s)\n", k + 1, path,
               d[1], d[2], d[3], feed_teacher_outputs_str(&layouts[k], what, sizeof what),
               (double)floats * cfg->train.batch * feed_wire_dtype_size((feed_wire_dtype)cfg->transport.dtype) / 1e6,
               cfg->train.batch, feed_wire_dtype_name((feed_wire_dtype)cfg->transport.dtype));
        if (outputs & FEED_OUT_FACTOR) {
            char *pp = feed_paraphraser_path(cfg, k);
            if (feed_paraphraser_check(cfg, k, net))
                printf("           paraphraser %s exists and fits: reused\n", pp);
            else
                printf("           paraphraser %s: trained first (%d epochs), then reused\n", pp,
                       cfg->ft.paraphraser_epochs);
            free(pp);
        }
        feed_net_free(net);
    }
    feed_model_spec one = *model;
    one.batch = 1;
    feed_net *student = feed_model_create(&one, 0, false);
    feed_sgd sgd;
    feed_sgd_init(&sgd, (feed_sgd_config){0});
    feed_student_taps taps = feed_student_taps_of(student);
    feed_term_setup s = {.cfg = cfg, .taps = &taps, .batch = 1, .classes = one.num_classes, .sgd = &sgd,
                         .n_teachers = N, .teachers = layouts};
    printf("loss     %g x cross-entropy", feed_cfg_ce_weight(cfg));
    for (int i = 0; i < cfg->distill.terms.n; i++) printf(" + %s", feed_cfg_term_names[cfg->distill.terms.v[i]]);
    printf("\n");
    for (int i = 0; i < cfg->distill.terms.n; i++) {
        const feed_term_ops *ops = feed_term_table[cfg->distill.terms.v[i]];
        void *term = ops->create(&s);
        for (int k = 0; k < N; k++) {
            char line[256];
            ops->describe(term, k, line, sizeof line);
            printf("term     %-4s teacher %d: %s\n", ops->name, k + 1, line);
        }
        ops->destroy(term);
    }
    feed_sgd_free(&sgd);
    feed_net_free(student);
    free(layouts);
}
