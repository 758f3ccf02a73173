/* analyze.h - what a trained network's final feature map holds (docs/analyze.md).
 *
 * The reconstruction probe (probe.c): an FT paraphraser (paraphraser.h: a 3-conv encoder to
 * round(rate x C) channels and a 3-deconv decoder back) trained for a fixed number of epochs
 * to reconstruct the frozen network's final map (B, C, H, W) of the training images, with an
 * L1 loss; the record is the mean L1 per map element of each epoch's steps. Maps that carry
 * more information reconstruct worse. Checkpointed every epoch; a run resumes exactly.
 *
 * The closed-form companions (similarity.c), on n test images' final maps flattened to
 * p = C*H*W features (centred): linear CKA, and the ridge-regression reconstruction of one
 * network's map from another's (fitted on the first half of the n images, measured on the
 * second half: the fraction of the variance not explained). Both in the kernel form (n x n
 * Gram matrices by cblas_ssyrk), so p may exceed n; deterministic for a fixed thread count.
 */
#ifndef FEED_ANALYZE_H
#define FEED_ANALYZE_H

#include <stdbool.h>
#include <stdint.h>

#include "feed/dataset.h"
#include "feed/net.h"

typedef struct feed_probe_config {
    int epochs;               /* E >= 1 */
    int batch;                /* B: the network must be planned for it */
    double rate;              /* factor channels = max(1, round(rate * C)) */
    double lr;                /* SGD, momentum 0.9, constant rate */
    double weight_decay;
    uint64_t seed;            /* the paraphraser's initialisation and the sample order */
    int64_t subset_per_class; /* > 0: the first K training images of each class */
} feed_probe_config;

/* Trains the probe on net's "final" tap (net: frozen inference net planned for cfg->batch)
 * over ds's training split, file order shuffled every epoch by seed, no augmentation.
 * recon[e] (cfg->epochs values) gets epoch e's mean L1 per map element.
 *
 * Checkpoints `dir/<prefix>_e<epoch>_s<step>.h5` after every epoch (and `<prefix>.h5` at the
 * end); an existing one of the same probe - same network file (SHA-256), data set, batch,
 * rate, lr, weight decay, seed, subset - is resumed from, bit for bit as if never stopped, a
 * different one refused (exit 2, naming what differs). Progress lines on stdout start with
 * `label`. A stop signal (SIGTERM, SIGUSR1) ends the run at the next step: returns the
 * number of epochs completed and recorded (cfg->epochs when done). */
int feed_probe_run(feed_net *net, const char *network_path, const feed_dataset *ds, const feed_probe_config *cfg,
                   const char *dir, const char *prefix, const char *label, double *recon);

/* The final maps of the first n test images (n <= test split), as an n x p row-major
 * matrix (malloc'ed, p = C*H*W); map_dims gets C, H, W. net: inference net planned for batch. */
float *feed_final_maps(feed_net *net, const feed_dataset *ds, int batch, int64_t n, int64_t *p, int map_dims[3]);

/* The two Gram matrices of one network's maps X (n x p), computed once and used for every
 * pair: centred by the mean over all n images (CKA), and centred by the mean of the fit half
 * (ridge); plus those features, centred the second way, as the ridge's targets. */
typedef struct feed_gram feed_gram;
feed_gram *feed_gram_create(const float *x, int64_t n, int64_t p);
void feed_gram_free(feed_gram *g);

/* Linear CKA of two networks' maps over the same n images: <Ka, Kb> / (|Ka| |Kb|) of the
 * centred Gram matrices, in [0, 1]. */
double feed_linear_cka(const feed_gram *a, const feed_gram *b);
/* Ridge regression of b's maps from a's (kernel form: (K_ff + lambda I)^-1, lambda = 1e-3 x
 * the mean of diag(K_ff)), fitted on images [0, n/2), measured on [n/2, n): the residual sum
 * of squares over the total sum of squares of b's held-out maps (0: perfect, 1: no better
 * than b's fit-half mean). */
double feed_ridge_error(const feed_gram *a, const feed_gram *b);

#endif
