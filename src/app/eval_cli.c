/* eval_cli.c - `feed_mpi eval --data D.h5 [--batch B] [--precision fp32|bf16] [--json] A.h5 [B.h5 ...]
 * [--also S.h5]`:
 * test-set error and loss of each checkpoint and of their ensemble (mean of the softmax
 * outputs), as a table or as JSON. Models given with --also are evaluated and listed after
 * the ensemble but are not part of it (e.g. a student next to its teachers).
 * Needs no INI file and no MPI launcher. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdnoreturn.h>
#include <string.h>

#include "feed/app.h"
#include "feed/check.h"
#include "feed/engine.h"
#include "feed/json.h"
#include "feed/loss_ce.h"
#include "feed/train.h"

#define EVAL_USAGE                                                                                                   \
    "usage: feed_mpi eval --data D.h5 [--batch B] [--precision fp32|bf16] [--json] CHECKPOINT.h5 [...] [--also S.h5 ...]"

static noreturn void usage_error(const char *what) {
    fprintf(stderr, "feed_mpi: error: %s\n  " EVAL_USAGE "\n", what);
    exit(FEED_EXIT_USAGE);
}

static void usage(void) {
    printf(EVAL_USAGE "\n\n"
           "Test error and loss of each checkpoint on the test split of D.h5, and of their ensemble (the mean\n"
           "of their softmax outputs). Each checkpoint is checked against the data set first (classes,\n"
           "channels, image size); --also lists a model without putting it in the ensemble; --json prints\n"
           "one JSON object (non-finite values as null, with \"finite\": false). --precision bf16 runs the\n"
           "networks in bf16 (weights and activations; fp32 accumulation) where the CPU has bf16 kernels.\n");
    exit(0);
}

/* Ensemble error of the mean of n models' softmax outputs (samples x classes each). */
static double ensemble_error(float *const *probs, int n, const int32_t *labels, int64_t samples,
                             int classes, double *loss) {
    int64_t errors = 0;
    double nll = 0;
    for (int64_t i = 0; i < samples; i++) {
        int best = 0;
        double best_p = -1, p_true = 0;
        for (int k = 0; k < classes; k++) {
            double p = 0;
            for (int m = 0; m < n; m++) p += probs[m][i * classes + k];
            p /= n;
            if (p > best_p) best_p = p, best = k;
            if (k == labels[i]) p_true = p;
        }
        errors += best != labels[i];
        nll -= log(p_true > 1e-30 ? p_true : 1e-30);
    }
    *loss = nll / (double)samples;
    return (double)errors / (double)samples;
}

int feed_eval_main(int argc, char **argv) {
    const char *data = NULL;
    int batch = 100, json = 0, n = 0, n_ens = 0, n_also = 0;
    char **paths = feed_xcalloc((size_t)argc + 1, sizeof(char *), "paths");
    char **also = feed_xcalloc((size_t)argc + 1, sizeof(char *), "paths");
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage();
        } else if (!strcmp(argv[i], "--data")) {
            if (++i >= argc) usage_error("--data needs a file");
            data = argv[i];
        } else if (!strcmp(argv[i], "--batch")) {
            if (++i >= argc || (batch = atoi(argv[i])) < 1) usage_error("--batch needs a positive number");
        } else if (!strcmp(argv[i], "--also")) {
            if (++i >= argc) usage_error("--also needs a checkpoint");
            also[n_also++] = argv[i];
        } else if (!strcmp(argv[i], "--precision")) {
            int p;
            if (++i >= argc || feed_precision_parse(argv[i], &p) != 0) usage_error("--precision takes fp32 or bf16");
            feed_engine_set_precision(p, feed_engine_precision(0));
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (argv[i][0] == '-') {
            usage_error(feed_fmt("unknown eval option '%s'", argv[i]));
        } else {
            paths[n++] = argv[i];
        }
    }
    if (!data) usage_error("eval needs --data");
    if (n == 0) usage_error("eval needs at least one checkpoint");
    n_ens = n; /* the ensemble: the models before --also */
    for (int i = 0; i < n_also; i++) paths[n++] = also[i];
    free(also);

    feed_dataset *ds = feed_dataset_open(data);
    feed_loader_config lc = feed_loader_config_eval(batch);
    feed_loader *ld = feed_loader_create(ds, &lc);
    int64_t samples = feed_loader_samples_per_epoch(ld);
    int classes = ds->num_classes;
    float **probs = feed_xcalloc((size_t)n, sizeof(float *), "probabilities");
    feed_eval_result *res = feed_xcalloc((size_t)n, sizeof *res, "results");
    char **archs = feed_xcalloc((size_t)n, sizeof(char *), "archs");
    for (int m = 0; m < n; m++) {
        char arch[64];
        feed_net *net = feed_model_load(paths[m], "model", ds, data, batch, arch, sizeof arch);
        archs[m] = feed_xstrdup(arch);
        probs[m] = feed_xmalloc(sizeof(float) * (size_t)samples * classes, "probabilities");
        res[m] = feed_evaluate(net, ld, classes, probs[m]);
        feed_net_free(net);
    }
    int32_t *labels = feed_xmalloc(sizeof(int32_t) * (size_t)samples, "labels");
    int64_t *idx = feed_xmalloc(sizeof(int64_t) * (size_t)batch, "indices");
    for (int64_t s = 0, k = 0; s < feed_loader_steps_per_epoch(ld); s++) {
        int got = feed_loader_batch_indices(ld, 0, s, idx);
        for (int i = 0; i < got; i++) labels[k++] = ds->split[FEED_SPLIT_TEST].labels[idx[i]];
    }
    double ens_loss = 0, ens_err = n_ens > 1 ? ensemble_error(probs, n_ens, labels, samples, classes, &ens_loss) : NAN;

    if (json) { /* non-finite figures are null, with "finite": false (JSON has no nan) */
        printf("{\"data\":");
        feed_json_str(stdout, data);
        printf(",\"samples\":%lld,\"models\":[", (long long)samples);
        for (int m = 0; m < n; m++) {
            printf("%s{\"path\":", m ? "," : "");
            feed_json_str(stdout, paths[m]);
            printf(",\"arch\":");
            feed_json_str(stdout, archs[m]);
            printf(",\"error\":");
            feed_json_num(stdout, res[m].error);
            printf(",\"loss\":");
            feed_json_num(stdout, res[m].loss);
            printf(",\"errors\":%lld,\"finite\":%s}", (long long)res[m].errors,
                   isfinite(res[m].loss) && isfinite(res[m].error) ? "true" : "false");
        }
        printf("]");
        if (n_ens > 1) {
            printf(",\"ensemble\":{\"models\":%d,\"error\":", n_ens);
            feed_json_num(stdout, ens_err);
            printf(",\"loss\":");
            feed_json_num(stdout, ens_loss);
            printf(",\"finite\":%s}", isfinite(ens_loss) && isfinite(ens_err) ? "true" : "false");
        }
        printf("}\n");
    } else {
        printf("%-40s %-10s %9s %9s\n", "model", "arch", "error %", "loss");
        for (int m = 0; m < n_ens; m++)
            printf("%-40s %-10s %9.2f %9.4f\n", paths[m], archs[m], 100 * res[m].error, res[m].loss);
        if (n_ens > 1)
            printf("%-40s %-10s %9.2f %9.4f\n", feed_fmt("ensemble of the %d above (mean softmax)", n_ens), "",
                   100 * ens_err, ens_loss);
        for (int m = n_ens; m < n; m++)
            printf("%-40s %-10s %9.2f %9.4f\n", paths[m], archs[m], 100 * res[m].error, res[m].loss);
        printf("(%lld test images of %s)\n", (long long)samples, data);
    }
    for (int m = 0; m < n; m++) free(probs[m]), free(archs[m]);
    free(probs), free(archs), free(res), free(labels), free(idx), free(paths);
    feed_loader_destroy(ld);
    feed_dataset_close(ds);
    return 0;
}
