/* lr_schedule.h - learning-rate schedules with the values of torch.optim.lr_scheduler.
 *
 * Epoch-level schedules (scheduler.step() once per epoch, epoch counted from 0):
 *   multistep  lr(e) = base_lr * gamma^(number of milestones <= e)            MultiStepLR
 *   cosine     lr(e) = eta_min + (base_lr - eta_min) * (1 + cos(pi * e / T)) / 2
 *              with T = total_epochs                                       CosineAnnealingLR
 * Both are evaluated with PyTorch's recursive ("chainable") formulas in double, so the values
 * equal what PyTorch's scheduler puts into param_group['lr'] to the last bit, including for
 * epochs past T (cosine then rises again, as in PyTorch).
 *
 * Optional linear warm-up, per optimizer step (global step s counted from 0 over the run):
 *   lr(s, e) = lr(e) * (s + 1) / warmup_steps   for s < warmup_steps,   lr(e) afterwards.
 */
#ifndef FEED_LR_SCHEDULE_H
#define FEED_LR_SCHEDULE_H

#define FEED_LR_MAX_MILESTONES 16

typedef enum { FEED_LR_MULTISTEP = 0, FEED_LR_COSINE = 1 } feed_lr_kind;

typedef struct {
    feed_lr_kind kind;
    double base_lr;
    /* multistep */
    int milestones[FEED_LR_MAX_MILESTONES]; /* epochs, ascending (repeats multiply again) */
    int num_milestones;
    double gamma;
    /* cosine */
    int total_epochs; /* T_max */
    double eta_min;
    /* warm-up (0: none) */
    long warmup_steps;
} feed_lr_schedule;

feed_lr_schedule feed_lr_multistep(double base_lr, const int *milestones, int num_milestones, double gamma);
feed_lr_schedule feed_lr_cosine(double base_lr, int total_epochs, double eta_min);

/* FEED_FAIL on a bad schedule (milestones not ascending or negative, T_max < 1, ...). */
void feed_lr_validate(const feed_lr_schedule *s);

/* The lr of epoch e >= 0 (before warm-up). */
double feed_lr_at_epoch(const feed_lr_schedule *s, int epoch);

/* The lr of global optimizer step `step` (0-based) that belongs to epoch `epoch`. */
double feed_lr_at_step(const feed_lr_schedule *s, int epoch, long step);

#endif
