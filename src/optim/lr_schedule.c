/* lr_schedule.c - multistep and cosine schedules with PyTorch's exact values; see lr_schedule.h.
 *
 * PyTorch updates param_group['lr'] recursively at every scheduler.step(); the closed forms
 * differ in the last bits. We replay the same recursion from epoch 0 (cheap: epochs are few). */
#include "feed/lr_schedule.h"

#include "feed/check.h"

#include <math.h>

/* math.pi in Python == M_PI; spelled out because M_PI is not ISO C. */
static const double PI = 3.141592653589793;

feed_lr_schedule feed_lr_multistep(double base_lr, const int *milestones, int num_milestones, double gamma) {
    feed_lr_schedule s = {.kind = FEED_LR_MULTISTEP, .base_lr = base_lr, .gamma = gamma};
    FEED_CHECK(num_milestones >= 0 && num_milestones <= FEED_LR_MAX_MILESTONES, "use at most 16 milestones",
               "%d lr milestones given", num_milestones);
    for (int i = 0; i < num_milestones; i++) s.milestones[i] = milestones[i];
    s.num_milestones = num_milestones;
    feed_lr_validate(&s);
    return s;
}

feed_lr_schedule feed_lr_cosine(double base_lr, int total_epochs, double eta_min) {
    feed_lr_schedule s = {.kind = FEED_LR_COSINE, .base_lr = base_lr, .total_epochs = total_epochs, .eta_min = eta_min};
    feed_lr_validate(&s);
    return s;
}

void feed_lr_validate(const feed_lr_schedule *s) {
    if (!(s->base_lr > 0))
        FEED_INPUT_ERROR("the learning rate must be > 0", "invalid base learning rate %g", s->base_lr);
    if (s->warmup_steps < 0)
        FEED_INPUT_ERROR("warm-up steps must be >= 0", "invalid warm-up length %ld", s->warmup_steps);
    if (s->kind == FEED_LR_MULTISTEP) {
        if (!(s->gamma > 0))
            FEED_INPUT_ERROR("the lr decay factor gamma must be > 0", "invalid gamma %g", s->gamma);
        for (int i = 0; i < s->num_milestones; i++)
            if (s->milestones[i] < 0 || (i > 0 && s->milestones[i] < s->milestones[i - 1]))
                FEED_INPUT_ERROR("milestones are epochs >= 0 in ascending order, e.g. 60,120,160",
                                 "lr milestone %d (%d) is negative or out of order", i, s->milestones[i]);
    } else if (s->kind == FEED_LR_COSINE) {
        if (s->total_epochs < 1)
            FEED_INPUT_ERROR("the cosine schedule needs total epochs >= 1", "invalid T_max %d", s->total_epochs);
        if (!(s->eta_min >= 0) || s->eta_min > s->base_lr)
            FEED_INPUT_ERROR("eta_min must be in [0, base lr]", "invalid eta_min %g (base lr %g)", s->eta_min,
                             s->base_lr);
    } else {
        FEED_FAIL("internal: unknown schedule kind", "lr schedule kind %d", (int)s->kind);
    }
}

/* MultiStepLR.get_lr: at a milestone epoch lr *= gamma ** (times it is listed). */
static double multistep_next(const feed_lr_schedule *s, double lr, int epoch) {
    int times = 0;
    for (int i = 0; i < s->num_milestones; i++) times += s->milestones[i] == epoch;
    return times ? lr * pow(s->gamma, times) : lr;
}

/* CosineAnnealingLR.get_lr for last_epoch = epoch >= 1, reached by stepping from 0. */
static double cosine_next(const feed_lr_schedule *s, double lr, int epoch) {
    const double t_max = s->total_epochs, eta_min = s->eta_min;
    if ((epoch - 1 - s->total_epochs) % (2 * s->total_epochs) == 0)
        return lr + (s->base_lr - eta_min) * (1 - cos(PI / t_max)) / 2;
    return (1 + cos(PI * epoch / t_max)) / (1 + cos(PI * (epoch - 1) / t_max)) * (lr - eta_min) + eta_min;
}

double feed_lr_at_epoch(const feed_lr_schedule *s, int epoch) {
    FEED_CHECK(epoch >= 0, "internal: negative epoch", "lr asked for epoch %d", epoch);
    /* PyTorch's constructor already steps to epoch 0, so a milestone 0 applies at once. */
    double lr = s->kind == FEED_LR_MULTISTEP ? multistep_next(s, s->base_lr, 0) : s->base_lr;
    for (int e = 1; e <= epoch; e++)
        lr = s->kind == FEED_LR_MULTISTEP ? multistep_next(s, lr, e) : cosine_next(s, lr, e);
    return lr;
}

double feed_lr_at_step(const feed_lr_schedule *s, int epoch, long step) {
    double lr = feed_lr_at_epoch(s, epoch);
    if (s->warmup_steps > 0 && step < s->warmup_steps) lr = lr * (double)(step + 1) / (double)s->warmup_steps;
    return lr;
}
