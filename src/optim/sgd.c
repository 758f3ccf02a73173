/* sgd.c - PyTorch-compatible SGD on flat float arrays; see sgd.h. */
#include "feed/sgd.h"

#include "feed/check.h"

#include <stdlib.h>

#ifdef _OPENMP
#define FEED_OMP(directive) _Pragma(directive)
#else
#define FEED_OMP(directive)
#endif

/* Below this many elements one thread does the whole array (thread start-up costs more). */
#define SGD_PARALLEL_MIN 32768

static void validate_config(const feed_sgd_config *c) {
    if (!(c->momentum >= 0.f) || !(c->dampening >= 0.f) || !(c->weight_decay >= 0.f))
        FEED_INPUT_ERROR("momentum, dampening and weight_decay must be >= 0",
                         "invalid SGD setting: momentum %g, dampening %g, weight_decay %g", (double)c->momentum,
                         (double)c->dampening, (double)c->weight_decay);
    if (c->nesterov && (c->momentum <= 0.f || c->dampening != 0.f))
        FEED_INPUT_ERROR("set momentum > 0 and dampening = 0, or nesterov = false (as torch.optim.SGD requires)",
                         "Nesterov momentum needs momentum > 0 and zero dampening (momentum %g, dampening %g)",
                         (double)c->momentum, (double)c->dampening);
}

void feed_sgd_init(feed_sgd *opt, feed_sgd_config config) {
    validate_config(&config);
    *opt = (feed_sgd){.config = config};
}

void feed_sgd_add_param(feed_sgd *opt, float *param, const float *grad, float *momentum_buf, size_t n,
                        int decay) {
    FEED_CHECK(param && grad, "internal: parameter without storage", "SGD parameter %d", opt->count);
    FEED_CHECK(momentum_buf || opt->config.momentum == 0.f, "internal: momentum needs a buffer per parameter",
               "SGD parameter %d has no momentum buffer", opt->count);
    if (opt->count == opt->capacity) {
        opt->capacity = opt->capacity ? 2 * opt->capacity : 64;
        opt->params = feed_xrealloc(opt->params, (size_t)opt->capacity * sizeof *opt->params, "SGD parameter list");
    }
    opt->params[opt->count++] = (feed_sgd_param){param, grad, momentum_buf, n, decay ? 1 : 0};
}

void feed_sgd_update(const feed_sgd_config *c, double lr, int first_step, float *param, const float *grad,
                     float *momentum_buf, size_t n, int decay) {
    const float wd = decay ? c->weight_decay : 0.f, m = c->momentum, keep = 1.f - c->dampening;
    const float neg_lr = (float)-lr;
    const int nesterov = c->nesterov, use_momentum = m != 0.f;
    const int parallel = n >= SGD_PARALLEL_MIN;
    (void)parallel;
    FEED_OMP("omp parallel for schedule(static) if(parallel)")
    for (size_t i = 0; i < n; i++) {
        float d = grad[i];
        if (wd != 0.f) d = d + wd * param[i];
        if (use_momentum) {
            float buf = first_step ? d : m * momentum_buf[i] + keep * d;
            momentum_buf[i] = buf;
            d = nesterov ? d + m * buf : buf;
        }
        param[i] = param[i] + neg_lr * d;
    }
}

void feed_sgd_step(feed_sgd *opt, double lr) {
    int first = opt->steps_taken == 0;
    for (int k = 0; k < opt->count; k++) {
        const feed_sgd_param *p = &opt->params[k];
        feed_sgd_update(&opt->config, lr, first, p->param, p->grad, p->momentum_buf, p->n, p->decay);
    }
    opt->steps_taken++;
}

void feed_sgd_set_steps_taken(feed_sgd *opt, long steps) { opt->steps_taken = steps; }

void feed_sgd_free(feed_sgd *opt) {
    free(opt->params);
    *opt = (feed_sgd){0};
}
