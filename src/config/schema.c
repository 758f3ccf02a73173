/* schema.c - the one table of configuration keys. Parsing, validation, --help and
 * --print-config are generated from it: add a key here and in feed_config, nowhere else. */
#include <stddef.h>

#include "feed/config.h"

const char *const feed_cfg_mode_names[] = {"scratch", "pfeed", NULL};
const char *const feed_cfg_mode_docs[] = {
    "train N independent networks with cross-entropy, rank r with seed run.seed + r "
    "(the teachers of FEED)",
    "parallel FEED: rank 0 trains the student ([model]) with one NTL per teacher; rank n hosts "
    "teacher n of feed.teachers and streams its final feature map (run with N+1 ranks)",
    NULL,
};

const char *const feed_cfg_arch_names[] = {"resnet20", "resnet32", "resnet44", "resnet56",
                                           "resnet110", "wrn", "resnext29", "resnet18",
                                           "resnet34", NULL};
static const char *const pad_modes[] = {"zero", "reflect", NULL};
static const char *const shortcuts[] = {"A", "B", NULL};
static const char *const schedules[] = {"multistep", "cosine", NULL};
static const char *const on_corrupt[] = {"fallback", "refuse", NULL};
static const char *const beta_reduce[] = {"sum", "mean", NULL};
static const char *const transfers[] = {"fp32", "bf16", "fp16", NULL};

#define OFF(field) offsetof(feed_config, field)
#define NO_RANGE 0, 0
#define BIG 1e9

const feed_cfg_key feed_cfg_keys[] = {
    /* [run] */
    {"run", "mode", FEED_CFG_ENUM, OFF(run.mode), "scratch", NO_RANGE, feed_cfg_mode_names,
     "what to run (see MODES above)"},
    {"run", "name", FEED_CFG_STRING, OFF(run.name), "feed", NO_RANGE, NULL,
     "run name: prefix of checkpoint and metrics files"},
    {"run", "dir", FEED_CFG_DIR, OFF(run.dir), "runs/feed", NO_RANGE, NULL,
     "run folder for checkpoints and metrics (created if missing)"},
    {"run", "seed", FEED_CFG_INT, OFF(run.seed), "1", 0, 2147483647.0, NULL,
     "base random seed (initialisation, data order, augmentation)"},
    {"run", "threads", FEED_CFG_INT, OFF(run.threads), "0", 0, 1024, NULL,
     "OpenMP threads per rank; 0 = OMP_NUM_THREADS, else all cores"},
    {"run", "winograd", FEED_CFG_BOOL, OFF(run.winograd), "true", NO_RANGE, NULL,
     "Winograd convolutions for 3x3 stride-1 layers with >= 64 channels (AVX-512 CPUs; a ResNet-56 "
     "step ~8% faster); false = direct convolutions everywhere, as PyTorch"},

    /* [data] */
    {"data", "path", FEED_CFG_PATH, OFF(data.path), NULL, NO_RANGE, NULL,
     "HDF5 data set written by feed_convert (required)"},
    {"data", "pad", FEED_CFG_INT, OFF(data.pad), "4", 0, 64, NULL,
     "training augmentation: pixels of padding before the random crop"},
    {"data", "pad_mode", FEED_CFG_ENUM, OFF(data.pad_mode), "zero", NO_RANGE, pad_modes,
     "padding fill for the random crop"},
    {"data", "crop", FEED_CFG_BOOL, OFF(data.crop), "true", NO_RANGE, NULL,
     "training augmentation: random crop back to the image size"},
    {"data", "flip", FEED_CFG_BOOL, OFF(data.flip), "true", NO_RANGE, NULL,
     "training augmentation: random horizontal flip"},
    {"data", "subset_per_class", FEED_CFG_INT, OFF(data.subset_per_class), "0", 0, BIG, NULL,
     "use only the first K training images of each class (0 = all)"},
    {"data", "subset_fraction", FEED_CFG_FLOAT, OFF(data.subset_fraction), "1", 1e-6, 1, NULL,
     "use this fraction of the training images (1 = all)"},
    {"data", "prefetch", FEED_CFG_INT, OFF(data.prefetch), "2", 0, 64, NULL,
     "batches prepared ahead by the loader thread (0 = none)"},

    /* [model] */
    {"model", "arch", FEED_CFG_ENUM, OFF(model.arch), "resnet56", NO_RANGE, feed_cfg_arch_names,
     "network architecture"},
    {"model", "shortcut", FEED_CFG_ENUM, OFF(model.shortcut), "B", NO_RANGE, shortcuts,
     "CIFAR ResNet shortcut: A zero-padded identity, B 1x1 conv + BN"},
    {"model", "wrn_depth", FEED_CFG_INT, OFF(model.wrn_depth), "28", 10, 1000, NULL,
     "WRN depth d (d - 4 divisible by 6)"},
    {"model", "wrn_width", FEED_CFG_INT, OFF(model.wrn_width), "10", 1, 64, NULL,
     "WRN widening factor k"},
    {"model", "dropout", FEED_CFG_FLOAT, OFF(model.dropout), "0", 0, 0.95, NULL,
     "WRN dropout probability between the convolutions of a block"},
    {"model", "resnext_cardinality", FEED_CFG_INT, OFF(model.resnext_cardinality), "16", 1, 256,
     NULL, "ResNeXt-29 cardinality c"},
    {"model", "resnext_width", FEED_CFG_INT, OFF(model.resnext_width), "64", 1, 1024, NULL,
     "ResNeXt-29 bottleneck width d"},

    /* [train] */
    {"train", "epochs", FEED_CFG_INT, OFF(train.epochs), "200", 1, 100000, NULL,
     "number of training epochs"},
    {"train", "batch", FEED_CFG_INT, OFF(train.batch), "128", 1, 65536, NULL,
     "minibatch size per step"},
    {"train", "lr", FEED_CFG_FLOAT, OFF(train.lr), "0.1", 0, 100, NULL, "initial learning rate"},
    {"train", "momentum", FEED_CFG_FLOAT, OFF(train.momentum), "0.9", 0, 0.999999, NULL,
     "SGD momentum"},
    {"train", "nesterov", FEED_CFG_BOOL, OFF(train.nesterov), "true", NO_RANGE, NULL,
     "Nesterov momentum"},
    {"train", "weight_decay", FEED_CFG_FLOAT, OFF(train.weight_decay), "5e-4", 0, 1, NULL,
     "L2 weight decay (PyTorch SGD semantics)"},
    {"train", "schedule", FEED_CFG_ENUM, OFF(train.schedule), "multistep", NO_RANGE, schedules,
     "learning-rate schedule"},
    {"train", "milestones", FEED_CFG_INT_LIST, OFF(train.milestones), "60,120,160", 1, 100000,
     NULL, "multistep: epochs at which lr is multiplied by gamma (increasing)"},
    {"train", "gamma", FEED_CFG_FLOAT, OFF(train.gamma), "0.2", 1e-6, 1, NULL,
     "multistep: lr factor at each milestone"},
    {"train", "warmup_epochs", FEED_CFG_INT, OFF(train.warmup_epochs), "0", 0, 100000, NULL,
     "linear learning-rate warm-up from 0 over this many epochs"},
    {"train", "label_smoothing", FEED_CFG_FLOAT, OFF(train.label_smoothing), "0", 0, 0.999,
     NULL, "cross-entropy label smoothing"},
    {"train", "eval_every", FEED_CFG_INT, OFF(train.eval_every), "1", 1, 100000, NULL,
     "evaluate on the test split every N epochs (and after the last)"},

    /* [checkpoint] */
    {"checkpoint", "every", FEED_CFG_INT, OFF(checkpoint.every), "1", 1, 100000, NULL,
     "write a checkpoint every N epochs (and at the end)"},
    {"checkpoint", "keep_last", FEED_CFG_INT, OFF(checkpoint.keep_last), "2", 1, 1000, NULL,
     "keep the newest K periodic checkpoints"},
    {"checkpoint", "keep_best", FEED_CFG_BOOL, OFF(checkpoint.keep_best), "true", NO_RANGE,
     NULL, "also keep the checkpoint with the lowest test error"},
    {"checkpoint", "resume", FEED_CFG_STRING, OFF(checkpoint.resume), "auto", NO_RANGE, NULL,
     "auto = newest complete checkpoint in run.dir, none = start fresh, or a path "
     "({rank} in it becomes the rank number)"},
    {"checkpoint", "on_corrupt", FEED_CFG_ENUM, OFF(checkpoint.on_corrupt), "fallback",
     NO_RANGE, on_corrupt, "a corrupt newest checkpoint: fall back to the previous, or refuse"},

    /* [feed] (distillation) */
    {"feed", "teachers", FEED_CFG_PATH_LIST, OFF(feed.teachers), "", NO_RANGE, NULL,
     "teacher checkpoints, one per teacher rank (pfeed: required; {rank} not expanded)"},
    {"feed", "beta", FEED_CFG_FLOAT, OFF(feed.beta), "500", 0, 1e6, NULL,
     "weight of the FEED loss: L = CE + beta * sum_n L_FEED(n)"},
    {"feed", "beta_reduce", FEED_CFG_ENUM, OFF(feed.beta_reduce), "sum", NO_RANGE, beta_reduce,
     "combine the teachers' FEED terms by sum, or mean (beta / N each)"},
    {"feed", "ntl_bn", FEED_CFG_BOOL, OFF(feed.ntl_bn), "false", NO_RANGE, NULL,
     "batch norm after each NTL convolution (ablation)"},
    {"feed", "transfer", FEED_CFG_ENUM, OFF(feed.transfer), "fp32", NO_RANGE, transfers,
     "precision of the feature maps on the wire (converted back to fp32 for the loss)"},
    {"feed", "credits", FEED_CFG_INT, OFF(feed.credits), "2", 1, 64, NULL,
     "steps a teacher may run ahead of the student (memory: credits+1 maps per teacher)"},
    {"feed", "local_teachers", FEED_CFG_BOOL, OFF(feed.local_teachers), "false", NO_RANGE, NULL,
     "compute the teachers in the student's process (one rank; small machines, testing)"},
    {"feed", "teacher_timeout", FEED_CFG_FLOAT, OFF(feed.teacher_timeout), "300", 0, 1e6, NULL,
     "seconds the student waits for a teacher's map before ending the job (0 = forever)"},
};

const int feed_cfg_num_keys = (int)(sizeof feed_cfg_keys / sizeof feed_cfg_keys[0]);
_Static_assert(sizeof feed_cfg_keys / sizeof feed_cfg_keys[0] <= FEED_CFG_MAX_KEYS,
               "raise FEED_CFG_MAX_KEYS");
