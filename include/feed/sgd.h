/* sgd.h - SGD with momentum, dampening, Nesterov and weight decay, PyTorch's semantics
 * (torch.optim.SGD, single-tensor path), on flat float arrays:
 *
 *   d   = g + wd * p                  (wd = weight_decay if the parameter's decay flag is set)
 *   buf = d                           on the optimizer's first step
 *   buf = momentum * buf + (1 - dampening) * d      afterwards        (only if momentum != 0)
 *   d   = nesterov ? d + momentum * buf : buf                         (only if momentum != 0)
 *   p   = p - lr * d
 *
 * Arithmetic is fp32 element by element, so the result is the same for any thread count
 * (OpenMP splits elements, never a reduction). The gradient is read, never modified.
 */
#ifndef FEED_SGD_H
#define FEED_SGD_H

#include <stddef.h>

typedef struct {
    float momentum;     /* 0 disables momentum buffers */
    float dampening;    /* must be 0 with nesterov */
    float weight_decay; /* L2 coefficient, applied to parameters whose decay flag is 1 */
    int nesterov;
} feed_sgd_config;

/* One parameter tensor seen flat. momentum_buf (n floats) is owned by the caller (it lives
 * in the checkpoint under /optim/<key>) and may be NULL only when momentum is 0. */
typedef struct {
    float *param;
    const float *grad;
    float *momentum_buf;
    size_t n;
    int decay; /* 1: weight decay applies (PyTorch default for every parameter), 0: not */
} feed_sgd_param;

typedef struct {
    feed_sgd_config config;
    feed_sgd_param *params;
    int count, capacity;
    long steps_taken; /* 0 before the first step: the buffers are then initialised to d */
} feed_sgd;

/* Validates the config (FEED_FAIL on negative values or nesterov with dampening/no momentum). */
void feed_sgd_init(feed_sgd *opt, feed_sgd_config config);
void feed_sgd_add_param(feed_sgd *opt, float *param, const float *grad, float *momentum_buf, size_t n,
                        int decay);
/* One update of every parameter with learning rate lr (used as float, like PyTorch's
 * alpha=-lr on fp32 tensors); increments steps_taken. */
void feed_sgd_step(feed_sgd *opt, double lr);
/* After restoring momentum buffers from a checkpoint: the number of steps already taken. */
void feed_sgd_set_steps_taken(feed_sgd *opt, long steps);
void feed_sgd_free(feed_sgd *opt);

/* The update of one flat array (what feed_sgd_step does per parameter); first_step != 0
 * initialises the buffer. */
void feed_sgd_update(const feed_sgd_config *config, double lr, int first_step, float *param,
                     const float *grad, float *momentum_buf, size_t n, int decay);

#endif
