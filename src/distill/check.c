/* check.c - `feed_mpi --check` of a distill job (distill.h): every teacher opened and checked
 * against the data set, the terms created against a one-image student exactly as the run
 * creates them (so their shape checks run), what each sends and builds, without training. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "feed/check.h"
#include "feed/distill.h"
#include "feed/distill_term.h"
#include "feed/feature_cache.h"
#include "feed/feature_transport.h"
#include "feed/paraphraser.h"
#include "feed/sfeed.h"
#include "feed/teacher.h"
#include "feed/teacher_source.h"
#include "feed/train.h"

static void print_loss(const feed_config *cfg) {
    const feed_int_list *terms = feed_cfg_terms(cfg);
    printf("loss     %g x cross-entropy", feed_cfg_ce_weight(cfg));
    for (int i = 0; i < terms->n; i++) printf(" + %s", feed_cfg_term_names[terms->v[i]]);
    printf("\n");
}

/* Create the job's terms against a one-image student of `model` and these teachers, as the
 * run does (their shape checks end the process with exit 2), and say what each builds; `who`
 * names the teacher of a one-teacher job (NULL: "teacher <k>"). */
static void check_terms(const feed_config *cfg, const feed_model_spec *model, const feed_teacher_layout *layouts,
                        int n, const char *who) {
    feed_model_spec one = *model;
    one.batch = 1;
    feed_net *student = feed_model_create(&one, 0, false);
    feed_sgd sgd;
    feed_sgd_init(&sgd, (feed_sgd_config){0});
    feed_student_taps taps = feed_student_taps_of(student);
    feed_term_setup s = {.cfg = cfg, .taps = &taps, .batch = 1, .classes = one.num_classes,
                         .seed = (uint64_t)cfg->run.seed, .sgd = &sgd, .n_teachers = n, .teachers = layouts};
    const feed_int_list *terms = feed_cfg_terms(cfg);
    for (int i = 0; i < terms->n; i++) {
        const feed_term_ops *ops = feed_term_table[terms->v[i]];
        void *term = ops->create(&s);
        for (int k = 0; k < n; k++) {
            char line[256];
            ops->describe(term, k, line, sizeof line);
            printf("term     %-4s %s: %s\n", ops->name, who ? who : feed_fmt("teacher %d", k + 1), line);
        }
        ops->destroy(term);
    }
    feed_sgd_free(&sgd);
    feed_net_free(student);
}

void feed_distill_check(const feed_config *cfg, const feed_dataset *ds, const feed_model_spec *model) {
    int N = cfg->distill.teachers.n, outputs = feed_terms_outputs(cfg);
    feed_teacher_layout *layouts = feed_xcalloc((size_t)N, sizeof *layouts, "teacher layouts");
    for (int k = 0; k < N; k++) {
        const char *path = cfg->distill.teachers.v[k];
        layouts[k] = feed_teacher_layout_from_file(cfg, k, ds, outputs, 1);
        const feed_teacher_layout *l = &layouts[k];
        char what[256];
        size_t floats = feed_teacher_payload_elems(l);
        printf("teacher  %d: %s, final map %dx%dx%d; sends %s (%.2f MB per step of %d images, %s)\n", k + 1, path,
               l->final_c, l->final_h, l->final_w, feed_teacher_outputs_str(l, what, sizeof what),
               (double)floats * cfg->train.batch * feed_wire_dtype_size((feed_wire_dtype)cfg->transport.dtype) / 1e6,
               cfg->train.batch, feed_wire_dtype_name((feed_wire_dtype)cfg->transport.dtype));
        if (outputs & FEED_OUT_FACTOR) {
            feed_net *net = feed_teacher_load_net(path, ds, cfg->data.path, 1);
            char *pp = feed_paraphraser_path(cfg, k);
            if (feed_paraphraser_check(cfg, k, net))
                printf("           paraphraser %s exists and fits: reused\n", pp);
            else
                printf("           paraphraser %s: trained first (%d epochs), then reused\n", pp,
                       cfg->ft.paraphraser_epochs);
            free(pp);
            feed_net_free(net);
        }
    }
    if (cfg->distill.source == FEED_SOURCE_CACHE) { /* every cache checked as the run checks it */
        feed_source_destroy(feed_source_cache_create(cfg, outputs, cfg->train.batch, 0, 1));
        for (int k = 0; k < N; k++) {
            char *path = feed_cache_path(cfg, k);
            printf("cache    %d: %s fits this job (%d views, %s)\n", k + 1, path, cfg->cache.views,
                   feed_wire_dtype_name((feed_wire_dtype)cfg->cache.dtype));
            free(path);
        }
    }
    print_loss(cfg);
    check_terms(cfg, model, layouts, N, NULL);
    free(layouts);
}

void feed_sfeed_check_job(const feed_config *cfg, const feed_dataset *ds, const feed_model_spec *model) {
    int outputs = feed_terms_outputs(cfg), K = cfg->sfeed.generations, E = cfg->train.epochs, L = cfg->sfeed.lag_epochs;
    print_loss(cfg);
    feed_model_spec one = *model;
    one.batch = 1;
    char name[64];
    if (cfg->sfeed.teacher) { /* generation 1 learns from the file */
        feed_net *net = feed_teacher_load_net(cfg->sfeed.teacher, ds, cfg->data.path, 1);
        feed_teacher_layout l = feed_teacher_layout_of(net, outputs, 0);
        char what[256];
        printf("gen 0    %s: final map %dx%dx%d; generation 1 learns from its %s\n", cfg->sfeed.teacher, l.final_c,
               l.final_h, l.final_w, feed_teacher_outputs_str(&l, what, sizeof what));
        check_terms(cfg, model, &l, 1, "generation 1 from generation 0");
        feed_net_free(net);
    } else {
        printf("gen 0    %s trained with cross-entropy in the job (seed %d)\n", feed_model_name(model, name, sizeof name),
               cfg->run.seed);
    }
    if (K >= 2 || !cfg->sfeed.teacher) { /* a generation of [model] as the teacher */
        feed_net *net = feed_model_create(&one, 0, true);
        feed_teacher_layout l = feed_teacher_layout_of(net, outputs, 0);
        check_terms(cfg, model, &l, 1, cfg->sfeed.teacher ? "generation g >= 2 from g-1" : "generation g from g-1");
        feed_net_free(net);
    }
    if (L == 0)
        printf("schedule strict: generation g starts when g-1 has finished its %d epochs and learns from its final "
               "weights; the last ends after about %d epochs' time\n", E, (K + !cfg->sfeed.teacher) * E);
    else
        printf("schedule pipelined: generation g starts after %d epochs of g-1; its epoch e learns from g-1 after "
               "epoch min(%d + e, %d); the last ends after about %d epochs' time\n", L, L, E,
               E + (K - (cfg->sfeed.teacher ? 1 : 0)) * L);
}
