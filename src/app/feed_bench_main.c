/* feed_bench_main.c - how fast the engine runs a model: training steps and inference forwards.
 *
 *   feed_bench --model resnet56 --classes 100 --batch 128 --threads 2 [--steps 10] [--warmup 3]
 *              [--in-channels 3] [--size 32] [--peak-gflops G] [--winograd on|off] [--precision fp32|bf16]
 *              train|forward|pfeed-step|kd-step|at-step|ft-step|l1-step [--teachers N]
 *
 * Prints one line per measurement (median over --steps timed steps after --warmup untimed):
 *   <what> model=<m> batch=<b> threads=<t> precision=<p> ms_per_step=<x> img_per_s=<y> peak_rss_mb=<z>
 *          gflop_per_s=<g> peak_gflop_per_s=<p> peak_frac=<g/p>
 * train   = forward (train-mode BN) + cross-entropy + backward + SGD (momentum 0.9, Nesterov,
 *           weight decay 5e-4): the step tools/torch_bench.py times for PyTorch;
 * forward = inference forward of an inference-only net (BN folded into the convolutions).
 * <term>-step = the student's step of a distill job with that term and --teachers N teachers
 *           of the student's architecture whose outputs are given (fixed random payloads):
 *           train step plus the term's step (src/distill/term_*.c, default weights), SGD over
 *           the student and the term's modules; the steps tools/torch_bench.py times.
 *           pfeed-step: NTL forward + FEED loss + NTL backward per teacher; kd-step: soft
 *           targets + KL on the logits; at-step: attention maps of the 3 stages; ft-step: a
 *           translator per teacher against given factors; l1-step: FEED's loss on x^S itself.
 *           Lines end with teachers=N. FLOPs count the student and the term's modules.
 * FLOPs: 2 x multiply-adds of the convolutions and linear layers (forward); a training step
 * counts 3x that (forward, backward data, backward weights). Winograd convolutions do fewer
 * multiplies than that, so with them gflop_per_s is an effective rate (direct-convolution
 * FLOPs per second); stderr says how many Winograd primitives a net uses. peak is the fp32
 * FMA peak of --threads threads, measured at start-up (src/util/fma_peak.c; 235 GFLOP/s on the
 * 2-core Zen 4 dev machine), or --peak-gflops G; with --precision bf16 the bf16 peak measured
 * the same way (src/util/bf16_peak.c: AVX512-BF16 or AMX tiles; 469 GFLOP/s there). bf16
 * (weights, activations and their gradients; fp32 accumulation, master weights and
 * optimizer state) applies to the measured network and, in the term steps, to the term's
 * modules.
 *
 * Adding a measurement: write `static void bench_<name>(const bench_opts *o)` that builds what
 * it needs, times o->steps steps with bench_time_steps(), and calls bench_report(); add it to
 * BENCHES[] (the term steps take --teachers N, parsed into bench_opts.teachers).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "feed/check.h"
#include "feed/engine.h"
#include "feed/fma_peak.h"
#include "feed/loss_ce.h"
#include "feed/models.h"
#include "feed/net.h"
#include "feed/distill_modules.h"
#include "feed/distill_term.h"
#include "feed/teacher.h"
#include "feed/train.h"
#include "feed/rng.h"
#include "feed/sgd.h"

typedef struct bench_opts {
    const char *model, *what;
    int classes, batch, threads, steps, warmup, in_channels, size, teachers;
    double peak_gflops;
    int winograd;
    int precision; /* FEED_PRECISION_*: the student's / inference net's */
    feed_model_spec spec;
} bench_opts;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Run step(ctx) warmup + steps times; returns the median seconds of the timed ones. */
static double bench_time_steps(const bench_opts *o, void (*step)(void *), void *ctx) {
    for (int i = 0; i < o->warmup; i++) step(ctx);
    double *t = feed_xmalloc(sizeof(double) * (size_t)o->steps, "timings");
    for (int i = 0; i < o->steps; i++) {
        double t0 = now_s();
        step(ctx);
        t[i] = now_s() - t0;
    }
    qsort(t, (size_t)o->steps, sizeof(double), cmp_double);
    double med = o->steps % 2 ? t[o->steps / 2] : 0.5 * (t[o->steps / 2 - 1] + t[o->steps / 2]);
    free(t);
    return med;
}

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* ru_maxrss is in KiB on Linux */
}

static void bench_report(const bench_opts *o, const char *what, const feed_net *net, double sec,
                         double flop_per_step, const char *extra) {
    double gf = flop_per_step / sec / 1e9;
    fprintf(stderr, "feed_bench: %s: %d Winograd convolution primitives (--winograd %s)\n", what,
            feed_net_winograd_primitives(net), o->winograd ? "on" : "off");
    printf("%s model=%s batch=%d threads=%d precision=%s ms_per_step=%.2f img_per_s=%.1f peak_rss_mb=%.0f "
           "gflop_per_s=%.1f peak_gflop_per_s=%.1f peak_frac=%.2f%s\n",
           what, o->model, o->batch, o->threads, feed_precision_name(o->precision), 1e3 * sec, o->batch / sec, peak_rss_mb(), gf,
           o->peak_gflops, gf / o->peak_gflops, extra ? extra : "");
    fflush(stdout);
}

static float *random_input(const bench_opts *o) {
    size_t n = (size_t)o->batch * o->spec.in_channels * o->spec.height * o->spec.width;
    float *x = feed_xmalloc(n * sizeof(float), "input");
    for (size_t i = 0; i < n; i++) x[i] = feed_rng_normal(1, FEED_RNG_TEST, i);
    return x;
}

/* ------------------------------------------------------------------ train */

typedef struct train_ctx {
    feed_net *net;
    feed_sgd sgd;
    float *x, *dlogits;
    int32_t *labels;
    int batch, classes;
} train_ctx;

static void train_step(void *p) {
    train_ctx *c = p;
    feed_net_forward(c->net, c->x, 1);
    feed_ce_forward_backward(feed_net_output(c->net), c->labels, c->batch, c->classes, 0.0f, c->dlogits);
    feed_net_backward(c->net, c->dlogits);
    feed_sgd_step(&c->sgd, 0.1);
}

static void bench_train(const bench_opts *o) {
    train_ctx c = {.batch = o->batch, .classes = o->classes};
    c.net = feed_model_build(&o->spec, &(feed_net_options){.seed = 1, .precision = o->precision});
    feed_sgd_init(&c.sgd, (feed_sgd_config){.momentum = 0.9f, .weight_decay = 5e-4f, .nesterov = 1});
    float *mom = feed_sgd_add_net(&c.sgd, c.net);
    c.x = random_input(o);
    c.dlogits = feed_xmalloc(sizeof(float) * (size_t)o->batch * o->classes, "dlogits");
    c.labels = feed_xmalloc(sizeof(int32_t) * (size_t)o->batch, "labels");
    for (int i = 0; i < o->batch; i++) c.labels[i] = (int32_t)feed_rng_below(2, FEED_RNG_TEST, (uint64_t)i, (uint32_t)o->classes);
    double sec = bench_time_steps(o, train_step, &c);
    /* What the trainer adds to every step: the scan of the gradients and BN statistics for
       Inf/NaN (trainer.c, step_nonfinite), timed on its own. */
    double h0 = now_s();
    int bad = 0;
    for (int i = 0; i < 100; i++)
        bad |= feed_net_first_nonfinite(c.net, FEED_CHECK_GRADS, NULL) >= 0 ||
               feed_net_first_nonfinite(c.net, FEED_CHECK_BUFFERS, NULL) >= 0;
    double health = (now_s() - h0) / 100;
    bench_report(o, "train", c.net, sec, 3.0 * feed_net_forward_flops(c.net),
                 feed_fmt(" health_check_ms=%.3f%s", 1e3 * health, bad ? " (non-finite values!)" : ""));
    feed_sgd_free(&c.sgd);
    free(mom), free(c.x), free(c.dlogits), free(c.labels);
    feed_net_free(c.net);
}

/* ------------------------------------------------------------------ distillation steps */

/* The student's step of a distill job (src/distill/student.c) with --teachers N teachers of the
 * student's architecture whose payloads are given (random, fixed): forward (train), CE, the
 * term's step on every teacher's payload, backward, SGD over the student and the term's
 * modules. The term is the implementation the run uses (distill_term.h). */
typedef struct term_ctx {
    train_ctx t;
    const feed_term_ops *ops;
    void *term;
    feed_student_taps taps;
    int n;                     /* teachers */
    float **payload;           /* [n] */
    feed_teacher_view *views;  /* [n] */
} term_ctx;

static void term_step(void *p) {
    term_ctx *c = p;
    feed_net_forward(c->t.net, c->t.x, 1);
    const float *logits = feed_net_output(c->t.net);
    feed_ce_forward_backward(logits, c->t.labels, c->t.batch, c->t.classes, 0.0f, c->t.dlogits);
    feed_term_batch b = {.taps = &c->taps, .logits = logits, .dlogits = c->t.dlogits, .teachers = c->views};
    c->ops->step(c->term, &b);
    feed_net_backward(c->t.net, c->t.dlogits);
    feed_sgd_step(&c->t.sgd, 0.1);
}

/* A fixed payload of random values shaped like a teacher's outputs: post-ReLU maps,
 * unit-norm attention maps, logits. */
static float *random_payload(const feed_teacher_layout *l, uint64_t seed) {
    size_t n = feed_teacher_payload_elems(l);
    float *p = feed_xaligned(n * sizeof(float), "teacher payload");
    for (size_t i = 0; i < n; i++) p[i] = fabsf((float)feed_rng_normal(seed, FEED_RNG_TEST, i));
    feed_teacher_view v = feed_teacher_view_of(l, p);
    for (int s = 0; v.attention[0] && s < l->stages; s++) {
        size_t d = (size_t)l->stage_h[s] * l->stage_w[s];
        for (int b = 0; b < l->batch; b++) {
            float *q = (float *)v.attention[s] + (size_t)b * d;
            double norm = 0;
            for (size_t i = 0; i < d; i++) norm += (double)q[i] * q[i];
            for (size_t i = 0; i < d; i++) q[i] = (float)(q[i] / sqrt(norm));
        }
    }
    return p;
}

static void bench_term_step(const bench_opts *o, int term_id) {
    term_ctx c = {.t = {.batch = o->batch, .classes = o->classes}, .n = o->teachers};
    c.ops = feed_term_table[term_id];
    c.t.net = feed_model_build(&o->spec, &(feed_net_options){.seed = 1, .precision = o->precision});
    feed_sgd_init(&c.t.sgd, (feed_sgd_config){.momentum = 0.9f, .weight_decay = 5e-4f, .nesterov = 1});
    float *mom = feed_sgd_add_net(&c.t.sgd, c.t.net);
    /* the job's defaults (beta 500, T 4, alpha 0.9, beta_at 1000, rate 0.5) from the schema */
    feed_config cfg;
    feed_cfg_errors errs = {0};
    const char *ini = "[data]\npath = unused.h5\n";
    FEED_CHECK(feed_config_load_text(&cfg, "feed_bench", ini, strlen(ini), 0, NULL, (feed_cfg_load_opts){0}, &errs) == 0,
               "this is a bug", "default configuration: %s", errs.text);
    int d[4];
    feed_net_tap(c.t.net, "final", d);
    int factor_c = (int)lround(cfg.ft.rate * d[1]);
    feed_teacher_layout *layouts = feed_xcalloc((size_t)c.n, sizeof *layouts, "teacher layouts");
    c.payload = feed_xcalloc((size_t)c.n, sizeof *c.payload, "payloads");
    c.views = feed_xcalloc((size_t)c.n, sizeof *c.views, "views");
    for (int k = 0; k < c.n; k++) {
        layouts[k] = feed_teacher_layout_of(c.t.net, c.ops->outputs, factor_c);
        c.payload[k] = random_payload(&layouts[k], (uint64_t)(k + 10));
        c.views[k] = feed_teacher_view_of(&layouts[k], c.payload[k]);
    }
    c.taps = feed_student_taps_of(c.t.net);
    feed_term_setup setup = {.cfg = &cfg, .taps = &c.taps, .batch = o->batch, .classes = o->classes, .seed = 1,
                             .sgd = &c.t.sgd,
                             .n_teachers = c.n, .teachers = layouts};
    c.term = c.ops->create(&setup);
    c.t.x = random_input(o);
    c.t.dlogits = feed_xmalloc(sizeof(float) * (size_t)o->batch * o->classes, "dlogits");
    c.t.labels = feed_xmalloc(sizeof(int32_t) * (size_t)o->batch, "labels");
    for (int i = 0; i < o->batch; i++) c.t.labels[i] = (int32_t)feed_rng_below(2, FEED_RNG_TEST, (uint64_t)i, (uint32_t)o->classes);
    double sec = bench_time_steps(o, term_step, &c);
    char extra[32];
    snprintf(extra, sizeof extra, " teachers=%d", c.n);
    /* FLOPs: the student's and the term modules' convolutions (NTLs, translators, regressors) */
    double flops = 3.0 * feed_net_forward_flops(c.t.net);
    if (term_id == FEED_TERM_FEED || term_id == FEED_TERM_FT)
        for (int k = 0; k < c.n; k++) {
            feed_net *m = term_id == FEED_TERM_FEED ? feed_ntl_build(d[0], d[1], d[1], d[2], d[3], 0, 1)
                                                   : feed_translator_build(d[0], d[1], factor_c, d[2], d[3], 1);
            flops += 3.0 * feed_net_forward_flops(m);
            feed_net_free(m);
        }
    bench_report(o, o->what, c.t.net, sec, flops, extra);
    c.ops->destroy(c.term);
    for (int k = 0; k < c.n; k++) free(c.payload[k]);
    free(c.payload), free(c.views), free(layouts), free(mom);
    free(c.t.x), free(c.t.dlogits), free(c.t.labels);
    feed_config_free(&cfg);
    feed_cfg_errors_free(&errs);
    feed_sgd_free(&c.t.sgd);
    feed_net_free(c.t.net);
}

static void bench_pfeed_step(const bench_opts *o) { bench_term_step(o, FEED_TERM_FEED); }
static void bench_kd_step(const bench_opts *o) { bench_term_step(o, FEED_TERM_KD); }
static void bench_at_step(const bench_opts *o) { bench_term_step(o, FEED_TERM_AT); }
static void bench_ft_step(const bench_opts *o) { bench_term_step(o, FEED_TERM_FT); }
static void bench_l1_step(const bench_opts *o) { bench_term_step(o, FEED_TERM_L1); }

/* ------------------------------------------------------------------ forward */

typedef struct fwd_ctx {
    feed_net *net;
    float *x;
} fwd_ctx;

static void forward_step(void *p) {
    fwd_ctx *c = p;
    feed_net_forward(c->net, c->x, 0);
}

static void bench_forward(const bench_opts *o) {
    fwd_ctx c;
    c.net = feed_model_build(&o->spec, &(feed_net_options){.seed = 1, .inference_only = 1, .precision = o->precision});
    c.x = random_input(o);
    double sec = bench_time_steps(o, forward_step, &c);
    bench_report(o, "forward", c.net, sec, feed_net_forward_flops(c.net), NULL);
    free(c.x);
    feed_net_free(c.net);
}

/* ------------------------------------------------------------------ main */

static const struct {
    const char *name;
    void (*run)(const bench_opts *);
} BENCHES[] = {
    {"train", bench_train},
    {"forward", bench_forward},
    {"pfeed-step", bench_pfeed_step},
    {"kd-step", bench_kd_step},
    {"at-step", bench_at_step},
    {"ft-step", bench_ft_step},
    {"l1-step", bench_l1_step},
};

static void usage(void) {
    fprintf(stderr,
            "usage: feed_bench [--model NAME] [--classes K] [--batch B] [--threads T] [--steps N]\n"
            "                  [--warmup N] [--in-channels C] [--size HW] [--peak-gflops G]\n"
            "                  [--winograd on|off] [--precision fp32|bf16] WHAT...\n"
            "  WHAT: train | forward | pfeed-step | kd-step | at-step | ft-step | l1-step [--teachers N]\n"
            "  NAME: resnet20|32|44|56|110[-a|-b], wrn-D-K, resnext29-CxDd, resnet18|34\n");
}

int main(int argc, char **argv) {
    bench_opts o = {.model = "resnet56", .classes = 100, .batch = 128, .threads = 2, .steps = 10, .warmup = 3,
                    .in_channels = 3, .size = 0, .teachers = 5, .peak_gflops = 0.0, .winograd = 1};
    const char *whats[8];
    int nwhat = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT_INT(flag, field)                                                                      \
    if (strcmp(a, flag) == 0 && v) {                                                               \
        o.field = atoi(v);                                                                         \
        i++;                                                                                       \
        continue;                                                                                  \
    }
        OPT_INT("--classes", classes)
        OPT_INT("--batch", batch)
        OPT_INT("--threads", threads)
        OPT_INT("--steps", steps)
        OPT_INT("--warmup", warmup)
        OPT_INT("--in-channels", in_channels)
        OPT_INT("--size", size)
        OPT_INT("--teachers", teachers)
#undef OPT_INT
        if (strcmp(a, "--model") == 0 && v) {
            o.model = v;
            i++;
            continue;
        }
        if (strcmp(a, "--peak-gflops") == 0 && v) {
            o.peak_gflops = atof(v);
            i++;
            continue;
        }
        if (strcmp(a, "--winograd") == 0 && v && (strcmp(v, "on") == 0 || strcmp(v, "off") == 0)) {
            o.winograd = strcmp(v, "on") == 0;
            i++;
            continue;
        }
        if (strcmp(a, "--precision") == 0 && v && feed_precision_parse(v, &o.precision) == 0) {
            i++;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage();
            return 0;
        }
        if (a[0] == '-' || nwhat == 8) {
            usage();
            FEED_INPUT_ERROR("see the usage above", "bad argument '%s'", a);
        }
        whats[nwhat++] = a;
    }
    if (nwhat == 0) {
        usage();
        FEED_INPUT_ERROR("name a measurement: train, forward, pfeed-step, kd-step, at-step, ft-step or l1-step",
                         "nothing to measure");
    }
    if (o.steps < 1 || o.warmup < 0 || o.batch < 1 || o.classes < 1 || o.threads < 1 || o.peak_gflops < 0)
        FEED_INPUT_ERROR("steps, batch, classes, threads >= 1; warmup, peak-gflops >= 0", "bad numeric option");
    if (feed_model_parse(o.model, &o.spec) != 0)
        FEED_INPUT_ERROR("models: resnet20|32|44|56|110[-a|-b], wrn-D-K, resnext29-CxDd, resnet18|34",
                         "unknown model '%s'", o.model);
    o.spec.in_channels = o.in_channels;
    o.spec.num_classes = o.classes;
    o.spec.batch = o.batch;
    if (o.size > 0) o.spec.height = o.spec.width = o.size;
    feed_engine_set_threads(o.threads);
    feed_engine_set_winograd(o.winograd);
    feed_engine_set_precision(o.precision, o.precision); /* the term modules follow the student */
    fprintf(stderr, "feed_bench: %s, %d threads, oneDNN ISA %s\n", o.model, feed_engine_threads(), feed_engine_isa());
    if (o.precision == FEED_PRECISION_BF16 && !feed_engine_bf16_supported()) {
        feed_engine_bf16_fallback_note();
        o.precision = FEED_PRECISION_FP32;
    }
    if (o.peak_gflops == 0 && o.precision == FEED_PRECISION_BF16) { /* the peak of what the kernels run */
        const char *isa;
        o.peak_gflops = feed_bf16_peak_gflops(feed_engine_threads(), &isa);
        if (o.peak_gflops == 0) FEED_INPUT_ERROR("pass --peak-gflops G for this CPU", "no bf16 peak to measure");
        fprintf(stderr, "feed_bench: bf16 peak %.1f GFLOP/s (%s, %d threads, measured)\n", o.peak_gflops, isa,
                feed_engine_threads());
    }
    if (o.peak_gflops == 0) {
        const char *isa;
        o.peak_gflops = feed_fma_peak_gflops(feed_engine_threads(), &isa);
        if (o.peak_gflops == 0)
            FEED_INPUT_ERROR("pass --peak-gflops G for this CPU", "no AVX2/AVX-512 FMA to measure the fp32 peak with");
        fprintf(stderr, "feed_bench: fp32 FMA peak %.1f GFLOP/s (%s, %d threads, measured)\n", o.peak_gflops, isa,
                feed_engine_threads());
    }
    for (int k = 0; k < nwhat; k++) {
        int found = 0;
        for (size_t b = 0; b < sizeof BENCHES / sizeof BENCHES[0]; b++)
            if (strcmp(BENCHES[b].name, whats[k]) == 0) {
                o.what = whats[k];
                BENCHES[b].run(&o);
                found = 1;
            }
        if (!found)
            FEED_INPUT_ERROR("measurements: train, forward, pfeed-step, kd-step, at-step, ft-step, l1-step",
                             "unknown measurement '%s'", whats[k]);
    }
    feed_engine_shutdown();
    return 0;
}
