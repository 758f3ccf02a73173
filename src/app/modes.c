/* modes.c - the table of modes (from mode_list.h), the rank-count check and the dispatch. */
#include <mpi.h>
#include <stdbool.h>
#include <stdio.h>

#include "feed/check.h"
#include "feed/run_lock.h"
#include "feed/distill.h"
#include "feed/sfeed.h"
#include "feed/modes.h"

#define MODE_ROW(id, name_, entry, ranks_, check_, layout_, doc_) \
    [FEED_MODE_##id] = {.name = #name_, .doc = doc_, .layout = layout_, .run = entry, .ranks = ranks_, .check = check_},
const feed_mode_info feed_modes[FEED_NUM_MODES] = {FEED_MODE_LIST(MODE_ROW)};
#undef MODE_ROW

int feed_ranks_any(const feed_config *cfg, char *why, size_t cap) {
    (void)cfg;
    snprintf(why, cap, "any number");
    return 0;
}

int feed_ranks_scratch(const feed_config *cfg, char *why, size_t cap) {
    int P = cfg->train.replicas;
    if (P > 1) {
        snprintf(why, cap, "a multiple of train.replicas = %d: %d ranks per network", P, P);
        return -P;
    }
    return feed_ranks_any(cfg, why, cap);
}

int feed_ranks_distill(const feed_config *cfg, char *why, size_t cap) {
    int n = cfg->distill.teachers.n;
    int P = cfg->distill.student_ranks;
    if (cfg->distill.source == FEED_SOURCE_LOCAL) {
        snprintf(why, cap, "distill.source = local: student and teachers in one process");
        return 1;
    }
    if (cfg->distill.source == FEED_SOURCE_CACHE) {
        if (P > 1) snprintf(why, cap, "distill.student_ranks = %d student replicas reading cache.dir", P);
        else snprintf(why, cap, "distill.source = cache: the teachers' outputs are read from cache.dir");
        return P;
    }
    if (P > 1) snprintf(why, cap, "distill.student_ranks = %d student replicas + one per teacher", P);
    else snprintf(why, cap, "one student + one per teacher of distill.teachers");
    return n + P;
}

int feed_ranks_sfeed(const feed_config *cfg, char *why, size_t cap) {
    int k = cfg->sfeed.generations, P = cfg->distill.student_ranks;
    const char *per = P > 1 ? feed_fmt("%d (distill.student_ranks)", P) : "one";
    if (cfg->sfeed.teacher) {
        snprintf(why, cap, "%s per generation 1..%d; generation 0 is %s", per, k, cfg->sfeed.teacher);
        return k * P;
    }
    snprintf(why, cap, "%s per generation 0..%d; generation 0 is trained in the job", per, k);
    return (k + 1) * P;
}

/* World rank 0 holds the lock of the folder the job writes (include/feed/run_lock.h) for the
 * whole job: run.dir, or cache.dir for a cache job; when another job holds it, every rank
 * ends with one message and nothing in the folder touched. */
static void lock_job_folder(const feed_run_ctx *ctx) {
    const feed_config *cfg = ctx->cfg;
    bool cache = cfg->run.mode == FEED_MODE_CACHE;
    const char *dir = feed_cfg_job_folder(cfg);
    char why[1200] = "", previous[512] = "";
    int ok = 1;
    if (ctx->rank == 0) {
        ok = feed_run_lock(dir, why, sizeof why, previous, sizeof previous) == 0;
        if (!ok) {
            fprintf(stderr, "feed_mpi: error: %s\n  hint: wait for it to end, or give this %s\n", why,
                    cache ? "job another cache.dir" : "run another run.dir");
            fflush(stderr);
        } else if (*previous) {
            printf("note: %s/.feed_mpi.lock names an earlier run that did not end normally (%s): taken over\n", dir,
                   previous);
            fflush(stdout);
        }
    }
    CHECK_MPI(MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD));
    if (!ok) feed_exit_collective(FEED_EXIT_USAGE);
}

int feed_run_mode(const feed_run_ctx *ctx) {
    int m = ctx->cfg->run.mode;
    FEED_CHECK(m >= 0 && m < FEED_NUM_MODES, "this is a bug", "no entry for mode %d", m);
    const feed_mode_info *mode = &feed_modes[m];
    char why[256];
    int need = mode->ranks(ctx->cfg, why, sizeof why);
    if (need < 0 && ctx->size % -need != 0) { /* a multiple of -need */
        if (ctx->rank == 0) {
            fprintf(stderr, "feed_mpi: error: run.mode = %s needs a number of MPI ranks that is %s; this job has %d\n"
                            "  hint: mpirun -np %d feed_mpi %s\n",
                    mode->name, why, ctx->size, -need * (ctx->size / -need + 1), ctx->cfg->file);
            fflush(stderr);
        }
        feed_exit_collective(FEED_EXIT_USAGE);
    }
    if (need > 0 && ctx->size != need) {
        if (ctx->rank == 0) {
            if (need == 1)
                fprintf(stderr, "feed_mpi: error: run.mode = %s needs 1 MPI rank (%s); this job has %d\n"
                                "  hint: run it without mpirun, or with -np 1\n",
                        mode->name, why, ctx->size);
            else
                fprintf(stderr, "feed_mpi: error: run.mode = %s needs %d MPI ranks (%s); this job has %d\n"
                                "  hint: mpirun -np %d feed_mpi %s\n",
                        mode->name, need, why, ctx->size, need, ctx->cfg->file);
            fflush(stderr);
        }
        feed_exit_collective(FEED_EXIT_USAGE);
    }
    lock_job_folder(ctx);
    return mode->run(ctx);
}
