/* pfeed.h - parallel FEED (../shared/FEED.md): rank 0 trains the student, rank n hosts
 * frozen teacher n of feed.teachers and streams its final feature map for every minibatch.
 *
 *   teacher n:  loader batch (epoch, step) -> forward (eval) -> tap "final" -> send(step)
 *   student:    loader batch -> forward (train) -> x^S = tap "final"
 *               for n: u_n = NTL_n(x^S); L_n = |norm(u_n) - norm(x^T_n)|_1 / (B*D)
 *               L = CE + beta * sum_n L_n (beta/N each with beta_reduce = mean)
 *               backward through the NTLs into x^S, then through the student; SGD on both
 *
 * Set-up order (all ranks): every rank builds its network and the final maps' shapes are
 * gathered at the student (H x W must match; C may differ: the NTL maps C_s -> C_t); the
 * student resumes (or not) and broadcasts its starting step; then the feature transport
 * (feature_transport.h) is created and both sides run the same schedule.
 */
#ifndef FEED_PFEED_H
#define FEED_PFEED_H

#include <stdint.h>

#include "feed/app.h"
#include "feed/net.h"

/* The non-linear transformation layer: three 3x3 convs with bias, C_s -> C_t -> C_t -> C_t,
 * each followed by (BN if bn, then) LeakyReLU(0.1); PyTorch keys conv1..3.{weight,bias}
 * (bn1..3.* with BN), as tools/torch_models.py NTL. Planned for (batch, c_s, h, w), with the
 * gradient to its input. */
feed_net *feed_ntl_build(int batch, int c_s, int c_t, int h, int w, int bn, uint64_t seed);

/* One teacher's FEED term on the student's final map xs (B, C_s, H, W): NTL forward (train),
 * normalised-L1 loss against tmap (B, C_t, H, W) scaled by `scale` (beta or beta/N), NTL
 * backward, and the gradient into xs added to dxs. du is scratch of B*C_t*H*W floats.
 * Returns the unscaled loss. Shared by the pFEED student and feed_bench pfeed-step. */
double feed_ntl_feed_term(feed_net *ntl, const float *xs, const float *tmap, int batch, size_t ntl_elems,
                          size_t xs_elems, float scale, float *du, float *dxs);

/* Teacher `path` for batches of `batch` images of ds: inference-only (BN folded), with a
 * "final" tap; a checkpoint that does not fit the data set ends the job (exit 2). */
#include "feed/dataset.h"
feed_net *feed_pfeed_load_teacher(const char *path, const feed_dataset *ds, const char *data_path, int batch);

/* 64-bit FNV-1a hash of a minibatch's sample indices: both sides of the transport derive it,
 * so a teacher computing another minibatch is caught at once. */
uint64_t feed_batch_id(const int64_t *idx, int n);

/* The two roles of `run.mode = pfeed` (rank 0 / rank n >= 1). */
int feed_pfeed_student(const feed_run_ctx *ctx);
int feed_pfeed_teacher(const feed_run_ctx *ctx);

/* Tags of the set-up messages on MPI_COMM_WORLD (the transport uses its own communicator). */
enum { FEED_PFEED_TAG_SHAPE = 7001 };

#endif
