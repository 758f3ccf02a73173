/* config.h - typed INI configuration.
 *
 * Every key lives in one table (src/config/schema.c) with its type, default, allowed range
 * or values and a one-line doc; parsing, validation, `feed_mpi --help` and
 * `feed_mpi --print-config` are all generated from it, so the docs cannot drift.
 *
 * Files are parsed by libinih underneath; values are then checked against the schema and
 * stored in `feed_config`. Every problem is reported with FILE:LINE (or the command-line
 * argument) and a hint; all problems of a file are reported at once.
 */
#ifndef FEED_CONFIG_H
#define FEED_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum {
    FEED_CFG_INT,
    FEED_CFG_FLOAT,
    FEED_CFG_BOOL,
    FEED_CFG_STRING,
    FEED_CFG_PATH,     /* an input file that must exist and be readable */
    FEED_CFG_DIR,      /* an output folder, created when the run starts */
    FEED_CFG_ENUM,     /* one of `choices`, stored as its index */
    FEED_CFG_INT_LIST, /* comma-separated integers */
    FEED_CFG_PATH_LIST, /* comma-separated input files */
    FEED_CFG_ENUM_LIST  /* comma-separated `choices`, each at most once, stored as indices */
} feed_cfg_type;

typedef struct {
    int n;
    int *v;
} feed_int_list;

typedef struct {
    int n;
    char **v;
} feed_str_list;

#define FEED_CFG_MAX_KEYS 128

#include "feed/mode_list.h"

/* Modes of feed_mpi (run.mode), in the order of FEED_MODE_LIST. */
#define FEED_MODE_ENUM(id, name, entry, ranks, check, layout, doc) FEED_MODE_##id,
enum feed_mode { FEED_MODE_LIST(FEED_MODE_ENUM) FEED_NUM_MODES };
#undef FEED_MODE_ENUM
/* Distillation terms (distill.terms); their implementations: src/distill/terms.c. */
enum feed_term_id { FEED_TERM_FEED, FEED_TERM_KD, FEED_TERM_AT, FEED_TERM_L1, FEED_TERM_FT, FEED_NUM_TERMS };
/* Where a distillation job's teachers run (distill.source). */
enum feed_source_kind { FEED_SOURCE_MPI = 0, FEED_SOURCE_LOCAL = 1, FEED_SOURCE_CACHE = 2 };
enum feed_beta_reduce { FEED_BETA_SUM = 0, FEED_BETA_MEAN = 1 };
enum feed_schedule { FEED_SCHED_MULTISTEP = 0, FEED_SCHED_COSINE = 1 };
enum feed_on_corrupt { FEED_CORRUPT_FALLBACK = 0, FEED_CORRUPT_REFUSE = 1 };
/* What a training step with a non-finite loss, gradient or BN statistic does (train.on_nonfinite). */
enum feed_on_nonfinite { FEED_NONFINITE_STOP = 0, FEED_NONFINITE_SKIP = 1 };

/* The effective configuration. Section structs mirror the INI sections. */
typedef struct feed_config {
    struct {
        int mode;      /* enum feed_mode */
        char *name;    /* run name: output files are <dir>/... */
        char *dir;     /* run folder */
        int seed;
        int threads;   /* OpenMP threads per rank; 0 = OMP_NUM_THREADS or all cores */
        bool winograd; /* Winograd convolutions where faster (feed_engine_set_winograd) */
        int precision; /* inference networks: enum feed_precision (feed_engine_set_precision) */
        double progress_s; /* seconds between in-epoch progress lines in a log; 0 = none */
    } run;
    struct {
        char *path;    /* HDF5 data set (feed_convert) */
        int pad;
        int pad_mode;  /* 0 zero, 1 reflect: the values of feed_pad_mode (loader.h) */
        bool crop;
        bool flip;
        int subset_per_class;
        double subset_fraction;
        int prefetch;
    } data;
    struct {
        int arch;      /* index into feed_cfg_arch_names */
        int shortcut;  /* 0 = option A, 1 = option B */
        int wrn_depth;
        int wrn_width;
        double dropout;
        int resnext_cardinality;
        int resnext_width;
    } model;
    struct {
        int epochs;
        int batch;
        double lr;
        double momentum;
        bool nesterov;
        double weight_decay;
        int schedule;  /* enum feed_schedule */
        feed_int_list milestones;
        double gamma;
        int warmup_epochs;
        double label_smoothing;
        int eval_every;
        int on_nonfinite;     /* enum feed_on_nonfinite */
        int max_skipped_steps; /* skip_step: the run stops after this many skipped steps in a row */
        int replicas;         /* scratch: data-parallel replicas per network (include/feed/replicas.h) */
        bool sync_bn;         /* scratch replicas: BN statistics over the global batch */
        int replica_check;    /* replicas: compare their checksums every N steps (0 = never) */
        int precision;        /* students: enum feed_precision (feed_engine_set_precision) */
    } train;
    struct {
        int every;
        int keep_last;
        bool keep_best;
        char *resume;  /* "auto", "none" or a checkpoint path */
        int on_corrupt; /* enum feed_on_corrupt */
    } checkpoint;
    struct {
        feed_str_list teachers;
        feed_int_list terms; /* enum feed_term_id, in the order given */
        int source;          /* enum feed_source_kind */
        char *ce_weight;     /* "auto" or a number: feed_cfg_ce_weight() */
        int student_ranks;   /* data-parallel replicas of the student */
        bool sync_bn;        /* student replicas: BN statistics over the global batch */
    } distill;
    struct {
        int dtype;       /* 0 fp32, 1 bf16, 2 fp16: the order of feed_wire_dtype */
        int credits;
        double timeout;  /* seconds the student waits for a teacher rank (0 = forever) */
    } transport;
    struct {
        char *dir;       /* folder of teacher_<n>.h5 (feature_cache.h) */
        int views;       /* V augmented views of every training sample */
        int dtype;       /* 0 fp32, 1 bf16, 2 fp16: the order of feed_wire_dtype */
        bool compress;   /* HDF5 shuffle + deflate */
        int seed;        /* augmentation seed of the views; 0 = run.seed */
    } cache;
    struct {
        double beta;
        int beta_reduce; /* enum feed_beta_reduce */
        bool ntl_bn;
    } feed;
    struct {
        double T;
        double alpha;
    } kd;
    struct {
        double beta;
        int beta_reduce;
    } at;
    struct {
        double beta;
        int beta_reduce;
    } l1;
    struct {
        double beta;
        int beta_reduce;
        double rate;
        int paraphraser_epochs;
        double paraphraser_lr;
        feed_str_list paraphrasers;
    } ft;
    struct {
        char *teacher;       /* generation 0's checkpoint; NULL: trained in the job */
        int generations;     /* K */
        int lag_epochs;      /* 0: strict (a generation starts when the one before ended) */
        feed_int_list terms; /* enum feed_term_id */
    } sfeed;

    /* Where each key's value came from (index = key id): 0 = default, >0 = line in `file`,
     * <0 = -(argument index) of a command-line override. */
    int origin[FEED_CFG_MAX_KEYS];
    char *file;        /* the INI path as given */
    char *ini_text;    /* the verbatim INI text (stored in checkpoints) */
    char *overrides;   /* the overrides as given, one per line (stored too) */
} feed_config;

typedef struct {
    const char *section;
    const char *key;
    feed_cfg_type type;
    size_t offset;              /* of the value in feed_config */
    const char *def;            /* default as text; NULL = required */
    double min, max;            /* inclusive range for ints/floats/list items */
    const char *const *choices; /* NULL-terminated, for enums */
    const char *doc;
} feed_cfg_key;

extern const feed_cfg_key feed_cfg_keys[];
extern const int feed_cfg_num_keys;
extern const char *const feed_cfg_mode_names[];
extern const char *const feed_cfg_term_names[];
extern const char *const feed_cfg_arch_names[];

/* Errors collected while loading; printed together. */
typedef struct {
    int count;
    size_t len, cap;
    char *text;  /* "FILE:LINE: message\n  hint: ...\n" entries */
} feed_cfg_errors;

/* Options for loading. */
typedef struct {
    bool check_paths; /* check that PATH keys exist and are readable (rank 0 only) */
} feed_cfg_load_opts;

/* Parse INI text (as read from `file`) plus overrides "section.key=value" into cfg
 * (defaults first). Returns the number of errors; messages accumulate in errs. */
int feed_config_load_text(feed_config *cfg, const char *file, const char *text, size_t len,
                          int n_overrides, char *const overrides[], feed_cfg_load_opts opts,
                          feed_cfg_errors *errs);
/* Read the file and load it. An unreadable file is an error like any other. */
int feed_config_load_file(feed_config *cfg, const char *file, int n_overrides,
                          char *const overrides[], feed_cfg_load_opts opts, feed_cfg_errors *errs);
void feed_config_free(feed_config *cfg);
void feed_cfg_errors_free(feed_cfg_errors *errs);
void feed_cfg_error(feed_cfg_errors *errs, const char *where, int line, const char *hint,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Key lookup ("section", "key") -> id or -1; and the nearest key name for suggestions. */
int feed_cfg_find(const char *section, const char *key);
const char *feed_cfg_suggest_key(const char *section, const char *key);
/* Where a key of an earlier version lives now (e.g. "[distill] teachers"), or NULL. */
const char *feed_cfg_moved_key(const char *section, const char *key);
const char *feed_cfg_suggest_section(const char *section);
const char *feed_cfg_suggest_choice(const char *const *choices, const char *value);
int feed_edit_distance(const char *a, const char *b);

/* The cross-entropy weight of a distillation job: distill.ce_weight, where "auto" is
 * 1 - kd.alpha when the terms include kd (Hinton's (1-a) CE + a T^2 KL) and 1 otherwise. */
double feed_cfg_ce_weight(const feed_config *cfg);
/* The terms the student learns with: sfeed.terms in run.mode = sfeed, else distill.terms. */
const feed_int_list *feed_cfg_terms(const feed_config *cfg);
/* The folder a job writes and locks: cache.dir for run.mode = cache, run.dir otherwise. */
const char *feed_cfg_job_folder(const feed_config *cfg);
/* 1 if those terms hold term `id` (enum feed_term_id). */
bool feed_cfg_has_term(const feed_config *cfg, int id);

/* Value of key `id` formatted as INI text (buf). */
const char *feed_cfg_format_value(const feed_config *cfg, int id, char *buf, size_t cap);
/* `feed_mpi --print-config`: the whole effective config as INI that loads back the same. */
void feed_config_print(const feed_config *cfg, FILE *out);
/* `feed_mpi --help` key reference. */
void feed_config_print_reference(FILE *out);

#endif
