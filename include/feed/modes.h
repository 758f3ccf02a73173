/* modes.h - the table of run.mode values (generated from mode_list.h) and their entries,
 * one file each: src/app/mode_<name>.c. */
#ifndef FEED_MODES_H
#define FEED_MODES_H

#include <stddef.h>

#include "feed/app.h"
#include "feed/dataset.h"
#include "feed/models.h"

typedef struct {
    const char *name;   /* run.mode value */
    const char *doc;    /* one line for --help */
    const char *layout; /* what each rank does, for --check and errors */
    feed_mode_fn run;   /* runs on every rank; returns the process exit code */
    /* The number of MPI ranks the config needs (0: any) and, in `why`, what they are for. */
    int (*ranks)(const feed_config *cfg, char *why, size_t cap);
    /* `feed_mpi --check`: what the mode adds to the data set and the model (the student's
     * spec, planned for one image); NULL: nothing. Problems exit with code 2. */
    void (*check)(const feed_config *cfg, const feed_dataset *ds, const feed_model_spec *model);
} feed_mode_info;

/* Indexed by enum feed_mode. */
extern const feed_mode_info feed_modes[FEED_NUM_MODES];

/* Checks the job's rank count against the mode (a wrong count is reported once, every rank
 * exits 2), then runs ctx->cfg->run.mode on this rank; returns the process exit code. */
int feed_run_mode(const feed_run_ctx *ctx);

/* Entries and rank counts named in mode_list.h. */
int feed_mode_scratch(const feed_run_ctx *ctx);
int feed_mode_distill(const feed_run_ctx *ctx);
int feed_mode_sfeed(const feed_run_ctx *ctx);
int feed_mode_cache(const feed_run_ctx *ctx);
int feed_ranks_any(const feed_config *cfg, char *why, size_t cap);
int feed_ranks_scratch(const feed_config *cfg, char *why, size_t cap);
int feed_ranks_distill(const feed_config *cfg, char *why, size_t cap);
int feed_ranks_sfeed(const feed_config *cfg, char *why, size_t cap);

#endif
