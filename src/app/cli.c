/* cli.c - the feed_mpi command line:
 *
 *   feed_mpi CONFIG.ini [section.key=value ...]      run the mode the config names
 *   feed_mpi --check CONFIG.ini [overrides]          validate without running
 *   feed_mpi --print-config CONFIG.ini [overrides]   print the effective configuration
 *   feed_mpi --help | --version
 *
 * A run under MPI: rank 0 reads and validates the config (including that input files
 * exist) and broadcasts the verbatim text; the other ranks parse that same text. So every
 * rank has the same configuration, a bad config is reported once (by rank 0) and every
 * rank exits with code 2 before any work starts.
 */
#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/app.h"
#include "feed/check.h"
#include "feed/engine.h"
#include "feed/modes.h"
#include "feed/signals.h"

static void print_usage(FILE *out) {
    fprintf(out,
            "usage: feed_mpi CONFIG.ini [section.key=value ...]\n"
            "       feed_mpi --check CONFIG.ini [section.key=value ...]   (validate everything, no training)\n"
            "       feed_mpi --print-config CONFIG.ini [section.key=value ...]\n"
            "       feed_mpi eval --data D.h5 [--batch B] [--json] CHECKPOINT.h5 [...]\n"
            "       feed_mpi analyze --data D.h5 [--epochs E] [--json] NETWORK.h5 [...]   (--help: options)\n"
            "       feed_mpi --help | --version\n");
}

/* text as lines of at most `width` columns, the first continuing the current line (which is
 * at column `indent`), the others indented by `indent`. */
static void print_wrapped(FILE *out, const char *text, int indent, int width) {
    int col = indent;
    while (*text) {
        int word = (int)strcspn(text, " ");
        if (col > indent && col + 1 + word > width) {
            fprintf(out, "\n%*s", indent, "");
            col = indent;
        } else if (col > indent) {
            fputc(' ', out);
            col++;
        }
        fprintf(out, "%.*s", word, text);
        col += word;
        text += word;
        while (*text == ' ') text++;
    }
    fputc('\n', out);
}

static void print_help(FILE *out) {
    fprintf(out, "feed_mpi - feature-level ensemble knowledge distillation (FEED) on MPI\n\n");
    print_usage(out);
    fprintf(out,
            "\nRun under MPI, e.g.  mpirun -np 3 feed_mpi jobs/fashion_scratch.ini train.epochs=5\n"
            "Overrides after the file name change single keys and are validated like the file.\n"
            "\nMODES (run.mode)\n");
    for (int i = 0; i < FEED_NUM_MODES; i++) {
        fprintf(out, "  %-10s ", feed_modes[i].name);
        print_wrapped(out, feed_modes[i].doc, 13, 92);
        fprintf(out, "             ranks: %s\n", feed_modes[i].layout);
    }
    fprintf(out, "\nKEYS (section, key, type, default, allowed values, meaning)\n");
    feed_config_print_reference(out);
    fprintf(out,
            "\nEXIT CODES\n  0 success   1 run-time failure (library call, I/O)   "
            "2 bad command line, config, data or checkpoint\n");
}

static const char *const options[] = {"--help", "--version", "--check", "--print-config", NULL};

static void unknown_option(const char *arg) {
    const char *sug = feed_cfg_suggest_choice(options, arg);
    fprintf(stderr, "feed_mpi: error: unknown option '%s'\n", arg);
    if (sug) fprintf(stderr, "  hint: did you mean '%s'?\n", sug);
    else fprintf(stderr, "  hint: feed_mpi --help lists the options\n");
}

/* Load and validate on this process; prints the errors and returns non-zero on failure. */
static int load_and_report(feed_config *cfg, const char *file, int n_ov, char **ov) {
    feed_cfg_errors errs = {0};
    feed_cfg_load_opts opts = {.check_paths = true};
    int n = feed_config_load_file(cfg, file, n_ov, ov, opts, &errs);
    if (n) {
        fprintf(stderr, "feed_mpi: error: %d problem%s in the configuration:\n%s", n, n > 1 ? "s" : "",
                errs.text);
        fflush(stderr);
    }
    feed_cfg_errors_free(&errs);
    return n;
}

/* Rank 0 validates; everyone gets the same text and parses it. */
static int load_collective(feed_config *cfg, const char *file, int n_ov, char **ov, int rank) {
    long long status[2] = {0, 0}; /* errors, text length */
    if (rank == 0) {
        status[0] = load_and_report(cfg, file, n_ov, ov);
        status[1] = cfg->ini_text ? (long long)strlen(cfg->ini_text) : 0;
    }
    CHECK_MPI(MPI_Bcast(status, 2, MPI_LONG_LONG, 0, MPI_COMM_WORLD));
    if (status[0]) return 1;
    if (rank == 0) {
        CHECK_MPI(MPI_Bcast(cfg->ini_text, (int)status[1], MPI_CHAR, 0, MPI_COMM_WORLD));
        return 0;
    }
    char *text = feed_xmalloc((size_t)status[1] + 1, "config text");
    CHECK_MPI(MPI_Bcast(text, (int)status[1], MPI_CHAR, 0, MPI_COMM_WORLD));
    feed_cfg_errors errs = {0};
    feed_cfg_load_opts opts = {.check_paths = false};
    int n = feed_config_load_text(cfg, file, text, (size_t)status[1], n_ov, ov, opts, &errs);
    free(text);
    FEED_CHECK(n == 0, "this is a bug: report it with the config file",
               "rank %d parsed the config differently from rank 0:\n%s", rank, errs.text);
    feed_cfg_errors_free(&errs);
    return 0;
}

static int run(const char *file, int n_ov, char **ov) {
    int provided = 0;
    CHECK_MPI(MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided));
    int rank = 0, size = 1;
    CHECK_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    CHECK_MPI(MPI_Comm_size(MPI_COMM_WORLD, &size));
    feed_set_error_rank(rank, size);
    /* From here on SIGUSR1/SIGTERM set a flag instead of ending the rank: a signal during
     * start-up is acted on at the first step (checkpoint-and-exit). */
    feed_signals_install();

    feed_config cfg;
    if (load_collective(&cfg, file, n_ov, ov, rank)) feed_exit_collective(FEED_EXIT_USAGE);
    if (cfg.run.threads > 0) omp_set_num_threads(cfg.run.threads);
    feed_engine_set_winograd(cfg.run.winograd);
    feed_engine_set_precision(cfg.run.precision, cfg.train.precision);
    feed_run_ctx ctx = {.cfg = &cfg, .rank = rank, .size = size, .threads = omp_get_max_threads()};
    int rc = feed_run_mode(&ctx);
    feed_config_free(&cfg);
    CHECK_MPI(MPI_Finalize());
    return rc;
}

int feed_cli_main(int argc, char **argv) {
    if (argc < 2) {
        print_usage(stderr);
        fprintf(stderr, "feed_mpi: error: no config file given\n  hint: feed_mpi --help\n");
        return FEED_EXIT_USAGE;
    }
    const char *a = argv[1];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
        print_help(stdout);
        return 0;
    }
    if (!strcmp(a, "--version")) {
        feed_print_version(stdout);
        return 0;
    }
    if (!strcmp(a, "--print-config") || !strcmp(a, "--check")) {
        if (argc < 3) {
            fprintf(stderr, "feed_mpi: error: %s needs a config file\n  hint: feed_mpi %s CONFIG.ini\n", a, a);
            return FEED_EXIT_USAGE;
        }
        feed_config cfg;
        if (load_and_report(&cfg, argv[2], argc - 3, argv + 3)) {
            feed_config_free(&cfg);
            return FEED_EXIT_USAGE;
        }
        if (!strcmp(a, "--print-config")) {
            feed_config_print(&cfg, stdout);
        } else {
            printf("%s: configuration OK (mode %s)\n", argv[2], feed_cfg_mode_names[cfg.run.mode]);
            feed_check_run(&cfg, argc - 3, argv + 3);
            printf("%s: ready to run\n", argv[2]);
        }
        feed_config_free(&cfg);
        return 0;
    }
    if (!strcmp(a, "eval")) return feed_eval_main(argc - 2, argv + 2);
    if (!strcmp(a, "analyze")) return feed_analyze_main(argc - 2, argv + 2);
    if (a[0] == '-') {
        unknown_option(a);
        return FEED_EXIT_USAGE;
    }
    return run(a, argc - 2, argv + 2);
}
