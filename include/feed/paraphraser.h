/* paraphraser.h - FT's paraphraser of one teacher (docs/methods.md, "FT"): an auto-encoder
 * (distill_modules.h) trained on the frozen teacher's final map with an L1 reconstruction
 * loss; its encoder then turns the teacher's map into the factor the student's translator
 * learns to match.
 *
 * The trained paraphraser is a checkpoint of its own (/model/conv0..2, /model/deconv0..2, the
 * per-epoch reconstruction loss in /train/recon_loss, and root attributes naming the teacher
 * by its file's SHA-256, the shapes and the rate), so later runs reuse it instead of training
 * it again.
 */
#ifndef FEED_PARAPHRASER_H
#define FEED_PARAPHRASER_H

#include "feed/config.h"
#include "feed/dataset.h"
#include "feed/net.h"

/* Where teacher n's (0-based) paraphraser lives: ft.paraphrasers[n], or
 * run.dir/paraphraser_<n>.h5 when that list is empty. Caller frees. */
char *feed_paraphraser_path(const feed_config *cfg, int n);

/* Teacher n's paraphraser encoder, frozen, planned for inputs (batch, C_t, H, W) (teacher is
 * its inference net, planned for `batch` too): loaded from feed_paraphraser_path() when that
 * file exists (it must have been trained for this teacher, rate and epochs: else exit 2 with
 * what differs), otherwise trained here - ft.paraphraser_epochs epochs over the job's
 * training minibatches (run.seed), SGD with ft.paraphraser_lr, momentum 0.9 and
 * train.weight_decay - and saved there atomically. Progress lines go to stdout. */
feed_net *feed_paraphraser_encoder(const feed_config *cfg, int n, feed_net *teacher, const feed_dataset *ds,
                                   int batch);

/* One training step of a paraphraser (distill_modules.h, full auto-encoder) on teacher maps
 * xt (B, C_t, H, W): forward, L1 reconstruction loss against xt, backward, SGD step with lr.
 * grad is scratch of B*C_t*H*W floats. Returns the loss before the step. */
#include "feed/sgd.h"
double feed_paraphraser_step(feed_net *para, feed_sgd *sgd, const float *xt, float *grad, double lr);

/* For --check: 1 if teacher n's paraphraser file exists and fits (it will be reused), 0 if it
 * will be trained; a file that does not fit ends the process with exit code 2. */
int feed_paraphraser_check(const feed_config *cfg, int n, feed_net *teacher);

#endif
