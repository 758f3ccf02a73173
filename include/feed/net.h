/* net.h - networks planned once for a fixed batch shape, run many times.
 *
 * Build a graph with the builder (feed_nb_*), then feed_nb_build() plans it: every oneDNN
 * primitive, activation/gradient buffer and workspace is created there, for the batch shape
 * given to feed_nb_create(). forward/backward then only execute (no allocation, no primitive
 * creation). Activations stay in oneDNN's blocked layouts; reorders happen only at the edges:
 * the plain NCHW input, the output, taps, and parameter get/set.
 *
 *   feed_nb *nb = feed_nb_create(B, C, H, W);          value 0 = the input (B,C,H,W)
 *   int x = feed_nb_conv(nb, "conv1", 0, 16, 3, 1, 1, 1, 0);
 *   x = feed_nb_bn(nb, "bn1", x, 1);                    BN + fused ReLU
 *   ...
 *   feed_nb_output(nb, logits);
 *   feed_net *net = feed_nb_build(nb, &opt);             nb is consumed
 *   feed_net_forward(net, x_nchw, 1);  loss/dlogits from feed_net_output(net);
 *   feed_net_backward(net, dlogits);   grads in feed_net_grads(); optimizer updates
 *   feed_net_params() in place.
 *
 * Parameter names are PyTorch state_dict keys: a layer named "layer1.0.conv1" owns
 * "layer1.0.conv1.weight". Gradients are written (not accumulated) by each backward.
 */
#ifndef FEED_NET_H
#define FEED_NET_H

#include <stddef.h>
#include <stdint.h>

typedef struct feed_net feed_net;
typedef struct feed_nb feed_nb;

/* ------------------------------------------------------------------ building a graph */

/* A new graph whose input (value 0) is a batch of shape (batch, channels, h, w). */
feed_nb *feed_nb_create(int batch, int channels, int h, int w);
/* Each layer function returns the id of its output value. `name` is the PyTorch module path
 * of layers with parameters ("layer1.0.conv1"); names must be unique. */
int feed_nb_conv(feed_nb *nb, const char *name, int in, int out_channels, int kernel, int stride,
                 int pad, int groups, int bias);
/* Transposed convolution (PyTorch ConvTranspose2d; weight (in, out/groups, k, k)). */
int feed_nb_deconv(feed_nb *nb, const char *name, int in, int out_channels, int kernel, int stride,
                   int pad, int output_padding, int groups, int bias);
/* Batch norm (eps 1e-5, momentum 0.1, PyTorch running statistics); relu=1 fuses a ReLU. */
int feed_nb_bn(feed_nb *nb, const char *name, int in, int relu);
int feed_nb_relu(feed_nb *nb, int in);
int feed_nb_leaky_relu(feed_nb *nb, int in, float negative_slope);
/* a + b (same shape); relu=1 applies a ReLU to the sum. */
int feed_nb_add(feed_nb *nb, int a, int b, int relu);
int feed_nb_maxpool(feed_nb *nb, int in, int kernel, int stride, int pad);
/* Global average pooling: (B,C,H,W) -> (B,C,1,1). */
int feed_nb_avgpool_global(feed_nb *nb, int in);
/* Fully connected on (B,C,1,1) or (B,C,H,W) flattened: weight (out, C*H*W), bias (out). */
int feed_nb_linear(feed_nb *nb, const char *name, int in, int out_features);
/* Inverted dropout with probability p (train mode only); masks come from the counter-based
 * RNG: (seed, FEED_RNG_DROPOUT, step, layer, element), see feed_net_set_step(). */
int feed_nb_dropout(feed_nb *nb, int in, float p);
/* CIFAR ResNet shortcut option A: x[:, :, ::stride, ::stride], channels zero-padded to
 * out_channels ((out-in)/2 in front, the rest behind). */
int feed_nb_shortcut_a(feed_nb *nb, int in, int out_channels, int stride);
/* Name a value so it can be read (feed_net_tap) and given a gradient (feed_net_tap_add_grad):
 * a feature map (B, C, H, W) or a matrix (B, C). */
void feed_nb_tap(feed_nb *nb, const char *tap_name, int value);
/* The output: logits (B, classes) after a linear layer, or a (B,C,H,W) map. */
void feed_nb_output(feed_nb *nb, int value);
/* Shape of a value: dims[0..ndims-1]. */
int feed_nb_shape(const feed_nb *nb, int value, int dims[4]);

typedef struct feed_net_options {
    uint64_t seed;      /* initialisation (and dropout) seed */
    int inference_only; /* no backward: no gradient buffers; BN folded into convs where possible */
    int input_grad;     /* compute d loss / d input (layer stacks: NTL, translator) */
    /* FEED_PRECISION_BF16: activations, their gradients and the weights the kernels read are
     * bf16 (oneDNN's bf16 primitives multiply in bf16 and accumulate in fp32). Parameters,
     * parameter gradients, BN statistics and every array feed_net_* hands in or out stay
     * fp32: the fp32 parameters are the master copy, converted to the kernels' bf16 copy on the
     * first forward after they change. Without bf16 kernels on this CPU
     * (feed_engine_bf16_supported) the net is fp32: feed_net_precision() tells which it is. */
    int precision;
} feed_net_options;

enum feed_precision { FEED_PRECISION_FP32 = 0, FEED_PRECISION_BF16 = 1 };
/* "fp32" | "bf16" -> *out; 0 on success, -1 for another name. */
int feed_precision_parse(const char *name, int *out);
const char *feed_precision_name(int precision);

/* Plan the graph (consumes nb). */
feed_net *feed_nb_build(feed_nb *nb, const feed_net_options *opt);
void feed_nb_free(feed_nb *nb); /* only for a builder that is not built */

void feed_net_free(feed_net *net);

/* ------------------------------------------------------------------ running */

/* x: plain NCHW float (B,C,H,W) of the planned shape. train=1: batch statistics, dropout,
 * BN running-stat update; train=0: running statistics. */
void feed_net_forward(feed_net *net, const float *x, int train);
/* Plain output of the last forward: logits (B, classes) row-major or (B,C,H,W). */
const float *feed_net_output(feed_net *net);
/* Output shape; returns ndims (2 for logits, 4 for maps). */
int feed_net_output_shape(const feed_net *net, int dims[4]);
/* Backward of the last forward. dout: plain, same shape as the output (NULL = zero, e.g. when
 * only tap gradients drive it). Parameter gradients are overwritten. */
void feed_net_backward(feed_net *net, const float *dout);
/* d/d input (plain NCHW) of the last backward; needs options.input_grad. */
const float *feed_net_input_grad(feed_net *net);
void feed_net_zero_grad(feed_net *net);
/* Dropout masks depend on this step counter (incremented by every train forward). */
void feed_net_set_step(feed_net *net, uint64_t step);
uint64_t feed_net_step(const feed_net *net);
int feed_net_batch(const feed_net *net);
/* The precision the net computes in (FEED_PRECISION_*; fp32 when bf16 was asked for on a CPU
 * without bf16 kernels). */
int feed_net_precision(const feed_net *net);
/* How many of the net's primitives have no optimised kernel here (oneDNN runs its reference
 * code for them: correct, tens of times slower), *first (may be NULL) naming the first.
 * feed_model_build builds a bf16 model in fp32 when that has fewer of them. */
int feed_net_reference_kernels(const feed_net *net, const char **first);

/* ------------------------------------------------------------------ taps */

int feed_net_num_taps(const feed_net *net);
const char *feed_net_tap_name(const feed_net *net, int i);
/* Plain (row-major) copy of a tapped value after the last forward; dims (B,C,H,W) if dims !=
 * NULL ((B,C,1,1) for a matrix). Returns NULL if no tap has that name. Models name "final"
 * and "layer1".."layer3/4" (models.h). */
const float *feed_net_tap(feed_net *net, const char *name, int dims[4]);
/* bf16 nets: the tapped value after the last forward written to dst as plain (row-major)
 * bf16, n = the tap's element count, without a pass through fp32 (the values are bf16
 * already: the same bits as rounding feed_net_tap's copy). For a bf16 wire. Returns 0 when
 * the net is not bf16 or has no such tap (dst untouched), 1 when written. */
int feed_net_tap_bf16(feed_net *net, const char *name, uint16_t *dst);
/* Add g (plain NCHW, the tap's shape) to the tap's gradient in the next backward. Calls
 * accumulate until that backward consumes them. */
void feed_net_tap_add_grad(feed_net *net, const char *name, const float *g);

/* ------------------------------------------------------------------ parameters and buffers */

enum feed_param_kind { FEED_PARAM = 0, FEED_BUFFER = 1 };
enum feed_dtype { FEED_F32 = 0, FEED_I64 = 1 };

typedef struct feed_param_info {
    const char *name;  /* PyTorch state_dict key, e.g. "layer1.0.bn1.running_var" */
    int kind;          /* FEED_PARAM (trainable) or FEED_BUFFER (BN running stats) */
    int dtype;         /* FEED_F32, or FEED_I64 (num_batches_tracked) */
    int ndims;         /* PyTorch shape (0 for a scalar) */
    int64_t shape[4];
    size_t numel;      /* product of shape */
    /* FEED_PARAM only: position in the flat arrays of feed_net_params()/feed_net_grads(), in
     * the engine's layout (len >= numel; padding elements are zero and stay zero). */
    size_t offset, len;
    int decay;         /* 1: weight decay applies (all params by default, as in PyTorch) */
} feed_param_info;

/* Every parameter and buffer in state_dict order. */
int feed_net_num_entries(const feed_net *net);
const feed_param_info *feed_net_entry(const feed_net *net, int i);
int feed_net_find(const feed_net *net, const char *name); /* -1 if absent */
/* Copy out / in, plain PyTorch layout (conv OIHW, linear [out,in]); dst/src hold numel
 * floats (FEED_F32) or int64_t (FEED_I64). */
void feed_net_get(const feed_net *net, int i, void *dst);
void feed_net_set(feed_net *net, int i, const void *src);
/* The gradient of parameter i (FEED_PARAM) from the last backward, plain PyTorch layout. */
void feed_net_get_grad(const feed_net *net, int i, float *dst);
/* Trainable scalar count as PyTorch counts it (sum of numel over FEED_PARAM). */
size_t feed_net_num_param_scalars(const feed_net *net);

/* Numerical health (finite.h): the first entry (feed_net_entry index) whose parameters
 * (FEED_CHECK_PARAMS: trainable parameters and buffers), gradients from the last backward
 * (FEED_CHECK_GRADS) or BN buffers (FEED_CHECK_BUFFERS) hold an Inf or NaN, with that value
 * in *value (may be NULL); -1 when all are finite. Reads the engine's arrays in place: cheap
 * enough for every step. */
enum { FEED_CHECK_PARAMS = 0, FEED_CHECK_GRADS = 1, FEED_CHECK_BUFFERS = 2 };
int feed_net_first_nonfinite(const feed_net *net, int which, float *value);
/* The BN buffers (running statistics and num_batches_tracked, in the engine's layout) as one
 * byte string of feed_net_buffers_bytes(net): saved before a training forward and restored
 * when the trainer drops that step (train.on_nonfinite = skip_step), so a dropped step leaves
 * no trace in the statistics. */
size_t feed_net_buffers_bytes(const feed_net *net);
void feed_net_buffers_save(const feed_net *net, void *buf);
void feed_net_buffers_restore(feed_net *net, const void *buf);

/* ------------------------------------------------------------------ data-parallel replicas
 * A net trained as one of several replicas of a data-parallel job (train.h: train.replicas,
 * distill.student_ranks; docs/data_parallel.md) is told so after it is built. Every replica
 * holds the same net planned for its share B of the global batch.
 *   sum      synchronised BN when not NULL: every training-mode BN layer sums its per-channel
 *            statistics (forward) and per-channel gradient sums (backward) over the replicas
 *            with sum(ctx, buf, n) - in place, n floats; collective: every replica makes the
 *            same calls in the same order. The statistics are then those of count * B
 *            samples, as one BN over the global batch would see them. NULL: every replica
 *            normalises with its own batch statistics.
 *   count    replicas (>= 1) taking part in sum.
 *   grads_final_from   called after each layer's backward with the lowest offset in the
 *            gradient arena (feed_net_grads) from which every gradient is final; it only
 *            decreases within a backward. Where gradient buckets start their allreduce while
 *            the backward goes on. May be NULL.
 * The hooks see ctx. Pass NULL to detach. */
typedef struct feed_net_replicas {
    void (*sum)(void *ctx, float *buf, int n);
    int count;
    void (*grads_final_from)(void *ctx, size_t offset);
    void *ctx;
} feed_net_replicas;
void feed_net_set_replicas(feed_net *net, const feed_net_replicas *r);

/* Flat arrays of all trainable parameters and their gradients, in the engine's layout: the
 * optimizer updates them elementwise in place (see feed_param_info offset/len/decay). */
float *feed_net_params(feed_net *net, size_t *n);
float *feed_net_grads(feed_net *net, size_t *n);
/* Tell the net its parameters changed behind its back (only matters for inference-only nets,
 * which cache BN folded into convs; feed_net_set does it automatically). */
void feed_net_params_changed(feed_net *net);

/* Print the layer list with layouts and buffers (stderr or a FILE*). */
void feed_net_print(const feed_net *net, void *file);
/* Forward FLOPs of one batch: 2 x multiply-adds of convolutions, transposed convolutions and
 * linear layers (what benchmarks divide by). */
double feed_net_forward_flops(const feed_net *net);
/* Convolution primitives (forward, backward data, backward weights) running oneDNN's
 * Winograd kernels (feed_engine_set_winograd); for reports and tests. */
int feed_net_winograd_primitives(const feed_net *net);
/* Bytes of planned activation/gradient/workspace buffers. */
size_t feed_net_planned_bytes(const feed_net *net);

#endif
