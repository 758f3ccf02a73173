/* schema.c - the one table of configuration keys. Parsing, validation, --help and
 * --print-config are generated from it: add a key here and in feed_config, nowhere else. */
#include <stddef.h>

#include "feed/config.h"

#define MODE_NAME(id, name, entry, ranks, check, layout, doc) #name,
const char *const feed_cfg_mode_names[] = {FEED_MODE_LIST(MODE_NAME) NULL};
#undef MODE_NAME
/* In the order of enum feed_term_id. */
const char *const feed_cfg_term_names[] = {"feed", "kd", "at", "l1", "ft", NULL};
_Static_assert(sizeof feed_cfg_term_names / sizeof feed_cfg_term_names[0] == FEED_NUM_TERMS + 1,
               "one name per enum feed_term_id");

const char *const feed_cfg_arch_names[] = {"resnet20", "resnet32", "resnet44", "resnet56",
                                           "resnet110", "wrn", "resnext29", "resnet18",
                                           "resnet34", NULL};
static const char *const pad_modes[] = {"zero", "reflect", NULL};
static const char *const shortcuts[] = {"A", "B", NULL};
static const char *const schedules[] = {"multistep", "cosine", NULL};
static const char *const on_corrupt[] = {"fallback", "refuse", NULL};
static const char *const on_nonfinite[] = {"stop", "skip_step", NULL};
static const char *const beta_reduce[] = {"sum", "mean", NULL};
static const char *const transfers[] = {"fp32", "bf16", "fp16", NULL};
static const char *const sources[] = {"mpi", "local", "cache", NULL};
static const char *const precisions[] = {"fp32", "bf16", NULL}; /* enum feed_precision order */

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
    {"run", "progress_s", FEED_CFG_FLOAT, OFF(run.progress_s), "60", 0, 86400, NULL,
     "seconds between progress lines inside an epoch when the output is a log, not a terminal "
     "(SLURM); 0 = none. On a terminal one status line is redrawn in place instead"},
    {"run", "winograd", FEED_CFG_BOOL, OFF(run.winograd), "true", NO_RANGE, NULL,
     "Winograd convolutions for 3x3 stride-1 layers with >= 64 channels (AVX-512 CPUs; a ResNet-56 "
     "step ~8% faster); false = direct convolutions everywhere, as PyTorch"},
    {"run", "precision", FEED_CFG_ENUM, OFF(run.precision), "fp32", NO_RANGE, precisions,
     "inference networks (teachers of every mode, the cache writer, sFEED's in-rank teacher, evaluation): "
     "bf16 = bf16 weights and activations with fp32 accumulation on CPUs with AVX512-BF16 or AMX "
     "(docs/precision.md); fp32 elsewhere, said once at start"},

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
    {"train", "on_nonfinite", FEED_CFG_ENUM, OFF(train.on_nonfinite), "stop", NO_RANGE, on_nonfinite,
     "a step with a non-finite loss, gradient or BN statistic: stop the run, or skip_step (drop it: no update, "
     "BN statistics restored; counted as skipped_steps)"},
    {"train", "max_skipped_steps", FEED_CFG_INT, OFF(train.max_skipped_steps), "10", 1, 1000000, NULL,
     "skip_step: stop the run after this many skipped steps in a row"},
    {"train", "replicas", FEED_CFG_INT, OFF(train.replicas), "1", 1, 4096, NULL,
     "scratch: data-parallel replicas per network, each on its own rank with train.batch / P of every "
     "minibatch, gradients averaged with MPI_Allreduce (docs/data_parallel.md); the job needs P ranks per network"},
    {"train", "sync_bn", FEED_CFG_BOOL, OFF(train.sync_bn), "false", NO_RANGE, NULL,
     "scratch replicas: batch norm over the global batch (synchronised BN); false = each replica's own batch"},
    {"train", "precision", FEED_CFG_ENUM, OFF(train.precision), "fp32", NO_RANGE, precisions,
     "students (scratch networks, distillation students and their NTLs, translators, paraphrasers): bf16 = "
     "bf16 forward and backward with fp32 master weights, optimizer state, BN statistics and losses "
     "(docs/precision.md); checkpoints stay fp32"},
    {"train", "replica_check", FEED_CFG_INT, OFF(train.replica_check), "100", 0, 100000000, NULL,
     "replicas: compare every replica's parameters with replica 0's every N steps (a checksum; 0 = never)"},

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

    /* [distill] what a distillation job (run.mode = distill or pfeed) learns from */
    {"distill", "teachers", FEED_CFG_PATH_LIST, OFF(distill.teachers), "", NO_RANGE, NULL,
     "teacher checkpoints (required by distill and pfeed); with source = mpi one rank each"},
    {"distill", "terms", FEED_CFG_ENUM_LIST, OFF(distill.terms), "feed", NO_RANGE, feed_cfg_term_names,
     "distillation terms added to the cross-entropy, each weighted in its own section "
     "(docs/methods.md): feed = FEED with an NTL per teacher, kd = Hinton's KD, at = attention "
     "transfer, l1 = FEED's loss without NTL, ft = factor transfer"},
    {"distill", "source", FEED_CFG_ENUM, OFF(distill.source), "mpi", NO_RANGE, sources,
     "where the teachers run: mpi = one rank per teacher (N+1 ranks), local = in the student's "
     "process (one rank; the same result bit for bit), cache = their outputs read from the feature "
     "caches in cache.dir (one rank; written by run.mode = cache)"},
    {"distill", "ce_weight", FEED_CFG_STRING, OFF(distill.ce_weight), "auto", NO_RANGE, NULL,
     "weight of the cross-entropy: a number >= 0, or auto = 1 - kd.alpha with kd, else 1"},
    {"distill", "student_ranks", FEED_CFG_INT, OFF(distill.student_ranks), "1", 1, 4096, NULL,
     "data-parallel replicas of the student on ranks 0..P-1, each with train.batch / P of every minibatch "
     "(with source = mpi the teachers follow on ranks P..P+N-1; sfeed: P ranks per generation; "
     "docs/data_parallel.md)"},
    {"distill", "sync_bn", FEED_CFG_BOOL, OFF(distill.sync_bn), "false", NO_RANGE, NULL,
     "student replicas: batch norm over the global batch (synchronised BN); false = each replica's own batch"},

    /* [transport] teacher ranks -> student (distill.source = mpi) */
    {"transport", "dtype", FEED_CFG_ENUM, OFF(transport.dtype), "fp32", NO_RANGE, transfers,
     "precision of the teachers' outputs on the wire (converted back to fp32 for the losses)"},
    {"transport", "credits", FEED_CFG_INT, OFF(transport.credits), "2", 1, 64, NULL,
     "steps a teacher may run ahead of the student (memory: credits+1 outputs per teacher)"},
    {"transport", "timeout", FEED_CFG_FLOAT, OFF(transport.timeout), "300", 0, 1e6, NULL,
     "seconds the student waits for a teacher rank before ending the job (0 = forever)"},

    /* [cache] feature caches (run.mode = cache writes them, distill.source = cache reads them) */
    {"cache", "dir", FEED_CFG_DIR, OFF(cache.dir), "runs/cache", NO_RANGE, NULL,
     "folder of the caches: teacher_<n>.h5 for teacher n of distill.teachers (docs/cache.md)"},
    {"cache", "views", FEED_CFG_INT, OFF(cache.views), "4", 1, 10000, NULL,
     "augmented views of every training sample: the augmentations of epochs 0..V-1; a student's "
     "epoch e uses view e mod V"},
    {"cache", "dtype", FEED_CFG_ENUM, OFF(cache.dtype), "fp32", NO_RANGE, transfers,
     "precision of the stored outputs (bf16/fp16 round as transport.dtype does)"},
    {"cache", "compress", FEED_CFG_BOOL, OFF(cache.compress), "false", NO_RANGE, NULL,
     "HDF5 shuffle + deflate filters on the stored outputs (smaller files, slower reads)"},
    {"cache", "seed", FEED_CFG_INT, OFF(cache.seed), "0", 0, 2147483647.0, NULL,
     "augmentation seed of the views (0 = run.seed): a student with another run.seed sets the "
     "cache's here"},

    /* [feed] the FEED term (terms = feed) */
    {"feed", "beta", FEED_CFG_FLOAT, OFF(feed.beta), "500", 0, 1e6, NULL,
     "weight of the FEED loss: L = CE + beta * sum_n L_FEED(n)"},
    {"feed", "beta_reduce", FEED_CFG_ENUM, OFF(feed.beta_reduce), "sum", NO_RANGE, beta_reduce,
     "combine the teachers' FEED terms by sum, or mean (beta / N each)"},
    {"feed", "ntl_bn", FEED_CFG_BOOL, OFF(feed.ntl_bn), "false", NO_RANGE, NULL,
     "batch norm after each NTL convolution (ablation)"},

    /* [kd] Hinton's knowledge distillation (terms = kd) */
    {"kd", "T", FEED_CFG_FLOAT, OFF(kd.T), "4", 0.01, 1000, NULL,
     "temperature of the softened probabilities"},
    {"kd", "alpha", FEED_CFG_FLOAT, OFF(kd.alpha), "0.9", 0, 1e6, NULL,
     "weight of T^2 * KL(p_T || softmax(s/T)), p_T the teachers' mean softened probabilities"},

    /* [at] attention transfer (terms = at) */
    {"at", "beta", FEED_CFG_FLOAT, OFF(at.beta), "1000", 0, 1e9, NULL,
     "AT weight: beta/2 * sum over stages of mean((Q_S - Q_T)^2), one term per teacher"},
    {"at", "beta_reduce", FEED_CFG_ENUM, OFF(at.beta_reduce), "sum", NO_RANGE, beta_reduce,
     "combine the teachers' AT terms by sum, or mean (beta / N each)"},

    /* [l1] FEED's loss on the student's own final map, no NTL (terms = l1) */
    {"l1", "beta", FEED_CFG_FLOAT, OFF(l1.beta), "500", 0, 1e6, NULL,
     "weight of the normalised L1 loss, one term per teacher"},
    {"l1", "beta_reduce", FEED_CFG_ENUM, OFF(l1.beta_reduce), "sum", NO_RANGE, beta_reduce,
     "combine the teachers' L1 terms by sum, or mean (beta / N each)"},

    /* [ft] factor transfer (terms = ft) */
    {"ft", "beta", FEED_CFG_FLOAT, OFF(ft.beta), "500", 0, 1e6, NULL,
     "weight of the FT loss |norm(translator(x^S)) - norm(encoder(x^T))|, one term per teacher"},
    {"ft", "beta_reduce", FEED_CFG_ENUM, OFF(ft.beta_reduce), "sum", NO_RANGE, beta_reduce,
     "combine the teachers' FT terms by sum, or mean (beta / N each)"},
    {"ft", "rate", FEED_CFG_FLOAT, OFF(ft.rate), "0.5", 0.01, 16, NULL,
     "paraphrase rate k: the factor has round(k * C_t) channels"},
    {"ft", "paraphraser_epochs", FEED_CFG_INT, OFF(ft.paraphraser_epochs), "5", 1, 100000, NULL,
     "epochs of paraphraser training (L1 reconstruction of the frozen teacher's final map)"},
    {"ft", "paraphraser_lr", FEED_CFG_FLOAT, OFF(ft.paraphraser_lr), "0.1", 0, 100, NULL,
     "learning rate of paraphraser training (SGD, momentum 0.9, train.weight_decay)"},
    {"ft", "paraphrasers", FEED_CFG_PATH_LIST, OFF(ft.paraphrasers), "", NO_RANGE, NULL,
     "trained paraphrasers to reuse, one per teacher; empty = run.dir/paraphraser_<n>.h5, "
     "trained when missing"},

    /* [sfeed] sequential FEED / born-again networks (run.mode = sfeed) */
    {"sfeed", "teacher", FEED_CFG_PATH, OFF(sfeed.teacher), "", NO_RANGE, NULL,
     "generation 0's checkpoint; empty = trained with cross-entropy in the job by rank 0"},
    {"sfeed", "generations", FEED_CFG_INT, OFF(sfeed.generations), "4", 1, 1000, NULL,
     "K: generations 1..K, each a fresh network ([model], seed run.seed + g)"},
    {"sfeed", "lag_epochs", FEED_CFG_INT, OFF(sfeed.lag_epochs), "0", 0, 100000, NULL,
     "0 = strict: a generation starts when the one before has finished; L > 0 = pipelined: it "
     "starts after L epochs of the one before, and its epoch e learns from that one's weights "
     "after its epoch min(L + e, train.epochs)"},
    {"sfeed", "terms", FEED_CFG_ENUM_LIST, OFF(sfeed.terms), "feed", NO_RANGE, feed_cfg_term_names,
     "what each generation learns from the one before: feed (sFEED, one NTL), kd (BAN with "
     "kd.T = 1, kd.alpha = 1), at, l1 (ft needs a fixed teacher: not here)"},
};

const int feed_cfg_num_keys = (int)(sizeof feed_cfg_keys / sizeof feed_cfg_keys[0]);
_Static_assert(sizeof feed_cfg_keys / sizeof feed_cfg_keys[0] <= FEED_CFG_MAX_KEYS,
               "raise FEED_CFG_MAX_KEYS");
