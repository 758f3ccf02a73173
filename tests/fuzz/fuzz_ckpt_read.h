/* fuzz_ckpt_read.h - the reads `feed_mpi eval` and a resume make on a checkpoint, for the
 * checkpoint fuzz targets (fuzz_ckpt.c, fuzz_ckpt_gen.c). */
#ifndef FEED_FUZZ_CKPT_READ_H
#define FEED_FUZZ_CKPT_READ_H

#include "feed/net.h"

/* The data set a checkpoint is loaded for: the geometry of Fashion-MNIST. */
#define FUZZ_CKPT_CLASSES 10
#define FUZZ_CKPT_CHANNELS 1
#define FUZZ_CKPT_SIZE 28

/* What feed_model_load (eval) and the trainer's restore (resume) do with checkpoint `path`:
 * open and verify it, check classes and channels, read the model spec from its attributes,
 * check the image size, then - for small models - read every parameter and buffer of
 * /model and every momentum buffer of /optim/momentum into the network and the trainer's
 * scalars of /train. Errors end in feed_fatal: call it inside fuzz_catch(). */
void fuzz_ckpt_read(const char *path);
/* After fuzz_catch() caught an error in fuzz_ckpt_read: frees what it held. */
void fuzz_ckpt_read_cleanup(void);

/* A training network (batch 1) of model `name` ("resnet8-a") for the geometry above, built
 * once per name and kept; NULL if the model is too large to be worth building in a fuzzer. */
feed_net *fuzz_ckpt_net(const char *name);

#endif
