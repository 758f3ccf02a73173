/* analyze_cli.c - `feed_mpi analyze`: the reconstruction probe of every network given and the
 * similarity of their final maps (analyze.h, docs/analyze.md).
 *
 *   feed_mpi analyze --data D.h5 [options] A.h5 [B.h5 ...]
 *   mpirun -np P feed_mpi analyze ...       network i is probed on rank i mod P
 *
 * Every rank probes its networks into --out (one checkpointed probe per network); then rank 0
 * computes CKA and ridge reconstruction for every pair and writes --out/analyze_metrics.jsonl
 * (atomically) and a table, or one JSON object with --json. */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../io/atomic_file.h"
#include "feed/analyze.h"
#include "feed/app.h"
#include "feed/check.h"
#include "feed/json.h"
#include "feed/run_lock.h"
#include "feed/signals.h"
#include "feed/train.h"

#define ANALYZE_USAGE                                                                                              \
    "usage: feed_mpi analyze --data D.h5 [--epochs E] [--batch B] [--rate R] [--lr LR] [--seed S]\n"              \
    "                        [--subset-per-class K] [--samples N] [--out DIR] [--labels A,B,...] [--json]\n"     \
    "                        NETWORK.h5 [...]"

typedef struct {
    const char *data, *out;
    feed_probe_config probe;
    int64_t samples;
    bool json;
    int n;
    char **paths, **labels;
} analyze_args;

static int g_rank;

static noreturn void usage_error(const char *what) {
    if (g_rank == 0) fprintf(stderr, "feed_mpi: error: %s\n  " ANALYZE_USAGE "\n", what);
    feed_exit_collective(FEED_EXIT_USAGE);
}

static void usage(void) {
    if (g_rank == 0)
        printf(ANALYZE_USAGE "\n\n"
               "What each network's final feature map holds. The probe: an FT paraphraser (encoder to\n"
               "round(R x C) channels, decoder back) trained E epochs to reconstruct the frozen network's\n"
               "final map of the training images (no augmentation, order shuffled by S) with an L1 loss;\n"
               "the record is each epoch's mean L1 per map element (maps that carry more information\n"
               "reconstruct worse). Then, on the first N test images, for every pair of networks: linear\n"
               "CKA of their final maps and the ridge reconstruction error of one map from the other\n"
               "(fit on the first N/2 images, measured on the rest: unexplained fraction of variance).\n\n"
               "  --epochs E            probe epochs (default 10)\n"
               "  --batch B             probe batch (default 128)\n"
               "  --rate R              factor channels / map channels (default 0.5, FT's)\n"
               "  --lr LR               SGD rate, momentum 0.9, weight decay 5e-4 (default 0.1)\n"
               "  --seed S              probe initialisation and sample order (default 0)\n"
               "  --subset-per-class K  probe on the first K training images of each class\n"
               "  --samples N           test images for CKA and ridge (default 2000)\n"
               "  --out DIR             probe checkpoints and analyze_metrics.jsonl (default: analyze)\n"
               "  --labels A,B,...      names of the networks (default: each file's folder, or its name)\n"
               "  --json                one JSON object on stdout instead of the table\n"
               "Under mpirun, network i is probed on rank i mod P. A stopped run (signal, kill) resumes\n"
               "from the probes' checkpoints when given the same command.\n");
    feed_exit_collective(0);
}

static double number(const char *opt, const char *v, double lo, double hi) {
    char *end;
    double x = v ? strtod(v, &end) : NAN;
    if (!v || !*v || *end || !(x >= lo && x <= hi))
        usage_error(feed_fmt("%s needs a number in [%g, %g]", opt, lo, hi));
    return x;
}

/* The default label: the file's folder name ("runs/x/pfeed4_s100/student.h5" -> "pfeed4_s100"),
 * or the file's name without .h5 when it is not in a folder. */
static char *default_label(const char *path) {
    char *copy = feed_xstrdup(path);
    char *slash = strrchr(copy, '/');
    char *label;
    if (slash && slash != copy) {
        *slash = 0;
        char *parent = strrchr(copy, '/');
        label = feed_xstrdup(parent ? parent + 1 : copy);
    } else {
        label = feed_xstrdup(slash ? slash + 1 : copy);
        char *dot = strrchr(label, '.');
        if (dot && strcmp(dot, ".h5") == 0) *dot = 0;
    }
    free(copy);
    return label;
}

static void parse(int argc, char **argv, analyze_args *a) {
    *a = (analyze_args){.out = "analyze", .samples = 2000,
                        .probe = {.epochs = 10, .batch = 128, .rate = 0.5, .lr = 0.1, .weight_decay = 5e-4}};
    a->paths = feed_xcalloc((size_t)argc + 1, sizeof(char *), "paths");
    const char *labels = NULL;
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) usage();
        else if (!strcmp(o, "--json")) a->json = true;
        else if (!strcmp(o, "--data")) a->data = v, i++;
        else if (!strcmp(o, "--out")) a->out = v, i++;
        else if (!strcmp(o, "--labels")) labels = v, i++;
        else if (!strcmp(o, "--epochs")) a->probe.epochs = (int)number(o, v, 1, 100000), i++;
        else if (!strcmp(o, "--batch")) a->probe.batch = (int)number(o, v, 1, 65536), i++;
        else if (!strcmp(o, "--rate")) a->probe.rate = number(o, v, 0.01, 16), i++;
        else if (!strcmp(o, "--lr")) a->probe.lr = number(o, v, 0, 100), i++;
        else if (!strcmp(o, "--seed")) a->probe.seed = (uint64_t)number(o, v, 0, 2147483647.0), i++;
        else if (!strcmp(o, "--subset-per-class")) a->probe.subset_per_class = (int64_t)number(o, v, 1, 1e12), i++;
        else if (!strcmp(o, "--samples")) a->samples = (int64_t)number(o, v, 4, 1e9), i++;
        else if (o[0] == '-') usage_error(feed_fmt("unknown analyze option '%s'", o));
        else a->paths[a->n++] = argv[i];
        if (i >= argc) usage_error(feed_fmt("%s needs a value", o));
    }
    if (!a->data) usage_error("analyze needs --data");
    if (!a->out || !*a->out) usage_error("--out needs a folder");
    if (a->n == 0) usage_error("analyze needs at least one network checkpoint");
    a->labels = feed_xcalloc((size_t)a->n, sizeof(char *), "labels");
    char *list = labels ? feed_xstrdup(labels) : NULL, *save = NULL;
    char *tok = list ? strtok_r(list, ",", &save) : NULL;
    for (int m = 0; m < a->n; m++, tok = tok ? strtok_r(NULL, ",", &save) : NULL) {
        if (list && !tok) usage_error(feed_fmt("--labels names %d networks, %d are given", m, a->n));
        a->labels[m] = tok ? feed_xstrdup(tok) : default_label(a->paths[m]);
    }
    if (tok) usage_error(feed_fmt("--labels names more networks than the %d given", a->n));
    free(list);
    for (int m = 0; m < a->n; m++) {
        for (const char *c = a->labels[m]; *c; c++)
            if (*c == '/' || *c == '"' || *c == '\\' || (unsigned char)*c < 32)
                usage_error(feed_fmt("label '%s' has a character a file name or JSON cannot keep; name it with --labels",
                                     a->labels[m]));
        for (int k = 0; k < m; k++)
            if (!strcmp(a->labels[k], a->labels[m]))
                usage_error(feed_fmt("two networks are labelled '%s' (%s, %s): name them with --labels", a->labels[m],
                                     a->paths[k], a->paths[m]));
    }
}

/* Per network: what rank 0 prints and writes. */
typedef struct {
    char arch[64];
    int map[3];
    int epochs_done;
} network_info;

/* analyze_metrics.jsonl: a probe_epoch line per network and epoch, then a pair line per pair. */
static void write_metrics(const analyze_args *a, const network_info *info, const double *recon, const double *cka,
                          const double *ridge, int64_t samples) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    FEED_CHECK(f, "out of memory?", "open_memstream");
    for (int m = 0; m < a->n; m++)
        for (int e = 0; e < info[m].epochs_done; e++) {
            fprintf(f, "{\"event\":\"probe_epoch\",\"network\":");
            feed_json_str(f, a->labels[m]);
            fprintf(f, ",\"checkpoint\":");
            feed_json_str(f, a->paths[m]);
            fprintf(f, ",\"arch\":");
            feed_json_str(f, info[m].arch);
            fprintf(f, ",\"epoch\":%d,\"epochs\":%d,\"recon_loss\":", e + 1, a->probe.epochs);
            feed_json_num(f, recon[(size_t)m * a->probe.epochs + e]);
            fprintf(f, ",\"map\":[%d,%d,%d]}\n", info[m].map[0], info[m].map[1], info[m].map[2]);
        }
    for (int i = 0; cka && i < a->n; i++)
        for (int j = i + 1; j < a->n; j++) {
            fprintf(f, "{\"event\":\"pair\",\"a\":");
            feed_json_str(f, a->labels[i]);
            fprintf(f, ",\"b\":");
            feed_json_str(f, a->labels[j]);
            fprintf(f, ",\"samples\":%lld,\"cka\":", (long long)samples);
            feed_json_num(f, cka[i * a->n + j]);
            fprintf(f, ",\"ridge_error\":");
            feed_json_num(f, ridge[i * a->n + j]);
            fprintf(f, ",\"ridge_error_ba\":");
            feed_json_num(f, ridge[j * a->n + i]);
            fprintf(f, "}\n");
        }
    fclose(f);
    char *path = feed_xstrdup(feed_fmt("%s/analyze_metrics.jsonl", a->out)), *tmp = feed_xstrdup(feed_fmt("%s.tmp", path));
    const char *failed = NULL;
    int fd = feed_io_create_file(tmp, &failed);
    if (fd < 0 || feed_io_write_sync_close(fd, text, len, tmp, &failed) != 0 ||
        feed_io_rename_durable(tmp, path, &failed) != 0) {
        unlink(tmp);
        FEED_FAIL("is the disk full or the folder read-only?", "writing %s: %s: %s", path, failed, feed_errno_str());
    }
    free(text), free(path), free(tmp);
}

/* CKA and ridge error of every pair (rank 0): cka[i*n+j] (i < j), ridge[i*n+j] = j's map from i's. */
static int64_t similarities(const analyze_args *a, const feed_dataset *ds, double *cka, double *ridge) {
    int64_t n = a->samples < ds->split[FEED_SPLIT_TEST].n ? a->samples : ds->split[FEED_SPLIT_TEST].n;
    feed_gram **g = feed_xcalloc((size_t)a->n, sizeof *g, "Gram matrices");
    for (int m = 0; m < a->n; m++) {
        feed_net *net = feed_model_load(a->paths[m], "network", ds, a->data, a->probe.batch, NULL, 0);
        int64_t p;
        int dims[3];
        float *maps = feed_final_maps(net, ds, a->probe.batch, n, &p, dims);
        feed_net_free(net);
        g[m] = feed_gram_create(maps, n, p);
        free(maps);
    }
    for (int i = 0; i < a->n; i++)
        for (int j = 0; j < a->n; j++) {
            if (i < j) cka[i * a->n + j] = cka[j * a->n + i] = feed_linear_cka(g[i], g[j]);
            if (i != j) ridge[i * a->n + j] = feed_ridge_error(g[i], g[j]);
        }
    for (int m = 0; m < a->n; m++) feed_gram_free(g[m]);
    free(g);
    return n;
}

static void print_table(const analyze_args *a, const network_info *info, const double *recon, const double *cka,
                        const double *ridge, int64_t samples) {
    const int E = a->probe.epochs;
    printf("%-24s %-12s %-10s %8s %12s %12s\n", "network", "arch", "map", "epochs", "recon L1 e1", "recon L1 last");
    for (int m = 0; m < a->n; m++) {
        const double *r = recon + (size_t)m * E;
        int d = info[m].epochs_done;
        printf("%-24s %-12s %-10s %8d %12.6g %12.6g\n", a->labels[m], info[m].arch,
               feed_fmt("%dx%dx%d", info[m].map[0], info[m].map[1], info[m].map[2]), d, d ? r[0] : NAN,
               d ? r[d - 1] : NAN);
    }
    if (!cka) return;
    printf("\nlinear CKA of the final maps (%lld test images), and ridge error of the column's map from the row's:\n",
           (long long)samples);
    printf("%-24s", "");
    for (int j = 0; j < a->n; j++) printf(" %16.16s", a->labels[j]);
    printf("\n");
    for (int i = 0; i < a->n; i++) {
        printf("%-24s", a->labels[i]);
        for (int j = 0; j < a->n; j++) {
            if (i == j) printf(" %16s", "-");
            else printf(" %7.4f / %6.4f", cka[i * a->n + j], ridge[i * a->n + j]);
        }
        printf("\n");
    }
}

static void print_json(const analyze_args *a, const network_info *info, const double *recon, const double *cka,
                       const double *ridge, int64_t samples) {
    printf("{\"data\":");
    feed_json_str(stdout, a->data);
    printf(",\"networks\":[");
    for (int m = 0; m < a->n; m++) {
        printf("%s{\"network\":", m ? "," : "");
        feed_json_str(stdout, a->labels[m]);
        printf(",\"checkpoint\":");
        feed_json_str(stdout, a->paths[m]);
        printf(",\"arch\":");
        feed_json_str(stdout, info[m].arch);
        printf(",\"map\":[%d,%d,%d],\"recon_loss\":[", info[m].map[0], info[m].map[1], info[m].map[2]);
        for (int e = 0; e < info[m].epochs_done; e++) {
            if (e) printf(",");
            feed_json_num(stdout, recon[(size_t)m * a->probe.epochs + e]);
        }
        printf("]}");
    }
    printf("],\"pairs\":[");
    for (int i = 0, first = 1; cka && i < a->n; i++)
        for (int j = i + 1; j < a->n; j++, first = 0) {
            printf("%s{\"a\":", first ? "" : ",");
            feed_json_str(stdout, a->labels[i]);
            printf(",\"b\":");
            feed_json_str(stdout, a->labels[j]);
            printf(",\"cka\":");
            feed_json_num(stdout, cka[i * a->n + j]);
            printf(",\"ridge_error\":");
            feed_json_num(stdout, ridge[i * a->n + j]);
            printf(",\"ridge_error_ba\":");
            feed_json_num(stdout, ridge[j * a->n + i]);
            printf("}");
        }
    printf("],\"samples\":%lld}\n", (long long)samples);
}

int feed_analyze_main(int argc, char **argv) {
    int provided = 0, size = 1;
    CHECK_MPI(MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided));
    CHECK_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &g_rank));
    CHECK_MPI(MPI_Comm_size(MPI_COMM_WORLD, &size));
    feed_set_error_rank(g_rank, size);
    feed_signals_install();
    analyze_args a;
    parse(argc, argv, &a);
    if (g_rank == 0) {
        char why[1024], previous[512];
        if (feed_run_lock(a.out, why, sizeof why, previous, sizeof previous) != 0)
            FEED_INPUT_ERROR("wait for it to finish, or use another --out", "%s", why);
    }
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD)); /* the folder exists and is ours */
    feed_dataset *ds = feed_dataset_open(a.data);
    const int E = a.probe.epochs;
    network_info *info = feed_xcalloc((size_t)a.n, sizeof *info, "network info");
    double *recon = feed_xcalloc((size_t)a.n * E, sizeof(double), "reconstruction losses");
    for (int m = g_rank; m < a.n; m += size) {
        feed_net *net = feed_model_load(a.paths[m], "network", ds, a.data, a.probe.batch, info[m].arch,
                                        sizeof info[m].arch);
        int d[4];
        feed_net_tap(net, "final", d);
        info[m].map[0] = d[1], info[m].map[1] = d[2], info[m].map[2] = d[3];
        char *prefix = feed_xstrdup(feed_fmt("probe_%s", a.labels[m]));
        info[m].epochs_done = feed_probe_run(net, a.paths[m], ds, &a.probe, a.out, prefix, a.labels[m],
                                             recon + (size_t)m * E);
        free(prefix);
        feed_net_free(net);
        if (info[m].epochs_done < E) break; /* stopped by a signal */
    }
    /* rank 0 collects: each network's row comes from one rank, the others hold zeros */
    double *all = g_rank == 0 ? feed_xcalloc((size_t)a.n * E, sizeof(double), "reconstruction losses") : NULL;
    CHECK_MPI(MPI_Reduce(recon, all, a.n * E, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD));
    network_info *infos = g_rank == 0 ? feed_xcalloc((size_t)a.n, sizeof *infos, "network info") : NULL;
    for (int m = 0; m < a.n; m++) {
        int owner = m % size;
        if (owner == 0 && g_rank == 0) infos[m] = info[m];
        else if (g_rank == owner) CHECK_MPI(MPI_Send(&info[m], sizeof info[m], MPI_BYTE, 0, m, MPI_COMM_WORLD));
        else if (g_rank == 0)
            CHECK_MPI(MPI_Recv(&infos[m], sizeof infos[m], MPI_BYTE, owner, m, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
    }
    int stopped = 0, local_stop = feed_signals_pending() != 0;
    CHECK_MPI(MPI_Allreduce(&local_stop, &stopped, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    if (g_rank == 0) {
        double *cka = NULL, *ridge = NULL;
        int64_t samples = 0;
        if (!stopped) {
            cka = feed_xcalloc((size_t)a.n * a.n, sizeof(double), "CKA");
            ridge = feed_xcalloc((size_t)a.n * a.n, sizeof(double), "ridge errors");
            samples = similarities(&a, ds, cka, ridge);
        }
        write_metrics(&a, infos, all, cka, ridge, samples);
        if (a.json) print_json(&a, infos, all, cka, ridge, samples);
        else print_table(&a, infos, all, cka, ridge, samples);
        if (stopped) printf("stopped by a signal: run the same command to resume the probes\n");
        free(cka), free(ridge);
    }
    free(all), free(infos), free(info), free(recon);
    for (int m = 0; m < a.n; m++) free(a.labels[m]);
    free(a.labels), free(a.paths);
    feed_dataset_close(ds);
    CHECK_MPI(MPI_Finalize());
    return 0;
}
