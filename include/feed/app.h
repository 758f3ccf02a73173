/* app.h - the feed_mpi program: command line, run context and modes. */
#ifndef FEED_APP_H
#define FEED_APP_H

#include <stdio.h>

#include "feed/config.h"

/* What every mode gets: the validated config and this process's place in the job. */
typedef struct {
    const feed_config *cfg;
    int rank, size;
    int threads; /* OpenMP threads of this rank */
} feed_run_ctx;

typedef int (*feed_mode_fn)(const feed_run_ctx *ctx);

/* Entry point of the feed_mpi executable. */
int feed_cli_main(int argc, char **argv);

/* `feed_mpi eval ...` (argv after "eval"). */
int feed_eval_main(int argc, char **argv);
/* `feed_mpi analyze ...` (argv after "analyze"): the reconstruction probe and map similarity. */
int feed_analyze_main(int argc, char **argv);

/* `feed_mpi --check`, after the config itself is valid: data set, model, teachers, launch line. */
void feed_check_run(const feed_config *cfg, int n_overrides, char **overrides);

/* `feed_mpi --version`: feed_mpi and library versions. */
void feed_print_version(FILE *out);

#endif
