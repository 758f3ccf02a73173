/* test_sync_bn.c - synchronised BN (feed_net_set_replicas with a sum hook), run under mpirun:
 * every rank is one replica. Each rank builds a reference net for the global batch count*B
 * and a replica net for B (same seed: same weights); replica r takes rows [r*B, (r+1)*B) of
 * the same global input. In training mode the replicas together must compute exactly what
 * the reference computes:
 *   - outputs: the reference's rows of this replica;
 *   - running_mean/running_var/num_batches_tracked: the reference's (every replica);
 *   - backward with the replica's rows of one global dout: input gradient rows; parameter
 *     gradients summed over the replicas (MPI) = the reference's gradients;
 *   - two steps (running statistics accumulate), then an eval forward.
 * Tolerance 1e-5 of each tensor's largest magnitude: the replicas and the reference do the
 * same arithmetic in another order (statistics and parameter gradients summed per replica
 * and then across replicas instead of over the whole batch, convolutions planned for another
 * batch), so only fp32 rounding differs. Measured: up to ~1e-6 for outputs and statistics,
 * ~3e-6 for input gradients, ~7.5e-6 for ResNet-20's parameter gradients - the reference
 * itself moves by 5e-6 there between 1 and 2 OpenMP threads (another summation order).
 * The hook must be called 2 times per BN layer in a training forward and once in backward.
 * Without the hook (rep.sum = NULL) each replica normalises with its own statistics, which
 * must give visibly different outputs: the comparison can fail.
 * Cases: a small graph with 16 channels (nChw16c), the same with 3/5 channels (oneDNN picks
 * nChw16c padded to 16 and nhwc there), both with BN on the plain net input and a BN whose
 * input gradient is accumulated (its input has two consumers); ResNet-20 (shortcut B: BN in
 * the shortcut too) at 16x16.
 * SYNC_BN_VERBOSE=1 prints the replica's layers and every error above 1e-6.
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
#include "feed/models.h"
#include "feed/net.h"
#include "feed/rng.h"
#include "feed_test.h"

#define TOL 1e-5

static int g_rank, g_size;

/* the largest error seen per kind, over every case */
enum { E_OUT, E_RUN, E_INGRAD, E_PGRAD, E_EVAL, E_KINDS };
static const char *const kind_name[E_KINDS] = {"output", "running stats", "input grad", "param grads",
                                               "eval output"};
static double g_max_err[E_KINDS];

static void mpi_sum(void *ctx, float *buf, int n) {
    (*(long *)ctx)++;
    CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
}

/* ------------------------------------------------------------------ graphs */

typedef struct small_spec {
    int cin, c, hw;
} small_spec;

/* bn0 (on the plain input) -> conv1 -> bn1+relu -> conv2 -> bn2 -> add(conv1, bn2)+relu ->
 * avgpool -> fc. conv1's output feeds bn1 and the add; the add's backward (run first) copies
 * its gradient there, so bn1's input gradient goes through the accumulation scratch. */
static feed_nb *small_graph(int batch, const void *arg) {
    const small_spec *s = arg;
    feed_nb *nb = feed_nb_create(batch, s->cin, s->hw, s->hw);
    int x = feed_nb_bn(nb, "bn0", 0, 0);
    int c1 = feed_nb_conv(nb, "conv1", x, s->c, 3, 1, 1, 1, 0);
    int b1 = feed_nb_bn(nb, "bn1", c1, 1);
    int c2 = feed_nb_conv(nb, "conv2", b1, s->c, 3, 1, 1, 1, 0);
    int b2 = feed_nb_bn(nb, "bn2", c2, 0);
    int y = feed_nb_add(nb, c1, b2, 1);
    y = feed_nb_avgpool_global(nb, y);
    feed_nb_output(nb, feed_nb_linear(nb, "fc", y, 10));
    return nb;
}

static feed_nb *model_graph(int batch, const void *arg) {
    feed_model_spec s;
    memset(&s, 0, sizeof s);
    FEED_CHECK(feed_model_parse((const char *)arg, &s) == 0, "a model name of models.h", "%s", (const char *)arg);
    s.in_channels = 3;
    s.height = s.width = 16;
    s.num_classes = 10;
    s.batch = batch;
    return feed_model_graph(&s);
}

typedef feed_nb *(*graph_fn)(int batch, const void *arg);

/* ------------------------------------------------------------------ comparisons */

static void expect_close(const char *what, const char *name, int kind, const float *got, const float *ref,
                         size_t n) {
    double e = feed_test_max_rel_diff(got, ref, n);
    if (e > g_max_err[kind]) g_max_err[kind] = e;
    if (getenv("SYNC_BN_VERBOSE") && e > 1e-6) printf("  rank %d %s: %s rel err %.3g\n", g_rank, what, name, e);
    feed_test_checks++;
    if (!(e <= TOL)) feed_test_fail(__FILE__, __LINE__, "rank %d %s: %s rel err %.3g", g_rank, what, name, e);
}

static size_t product(const int *dims, int nd) {
    size_t n = 1;
    for (int i = 0; i < nd; i++) n *= (size_t)dims[i];
    return n;
}

/* Every BN buffer of the replica equals the reference's. */
static void compare_buffers(const char *what, const feed_net *rep, const feed_net *ref) {
    for (int k = 0; k < feed_net_num_entries(ref); k++) {
        const feed_param_info *pi = feed_net_entry(ref, k);
        if (pi->kind != FEED_BUFFER) continue;
        if (pi->dtype == FEED_I64) {
            int64_t a, b;
            feed_net_get(rep, k, &a);
            feed_net_get(ref, k, &b);
            EXPECT_INT_EQ(a, b);
            continue;
        }
        float *a = malloc(pi->numel * sizeof(float)), *b = malloc(pi->numel * sizeof(float));
        feed_net_get(rep, k, a);
        feed_net_get(ref, k, b);
        expect_close(what, pi->name, E_RUN, a, b, pi->numel);
        free(a);
        free(b);
    }
}

/* sum over the replicas of each parameter gradient = the reference's gradient */
static void compare_param_grads(const char *what, const feed_net *rep, const feed_net *ref) {
    for (int k = 0; k < feed_net_num_entries(ref); k++) {
        const feed_param_info *pi = feed_net_entry(ref, k);
        if (pi->kind != FEED_PARAM) continue;
        float *a = malloc(pi->numel * sizeof(float)), *b = malloc(pi->numel * sizeof(float));
        feed_net_get_grad(rep, k, a);
        CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, a, (int)pi->numel, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
        feed_net_get_grad(ref, k, b);
        expect_close(what, pi->name, E_PGRAD, a, b, pi->numel);
        free(a);
        free(b);
    }
}

static int count_bn(const feed_net *net) {
    int n = 0;
    for (int k = 0; k < feed_net_num_entries(net); k++) {
        const char *s = feed_net_entry(net, k)->name;
        size_t l = strlen(s);
        n += l >= 13 && strcmp(s + l - 13, ".running_mean") == 0;
    }
    return n;
}

static void fill_normal(float *x, size_t n, uint64_t seed, float scale, float shift) {
    for (size_t i = 0; i < n; i++) x[i] = scale * (float)feed_rng_normal(seed, FEED_RNG_TEST, i) + shift;
}

/* ------------------------------------------------------------------ one case */

static void run_case(const char *what, graph_fn graph, const void *arg, int B) {
    int count = g_size;
    feed_net_options opt = {.seed = 3, .input_grad = 1};
    feed_net *ref = feed_nb_build(graph(count * B, arg), &opt);
    feed_nb *nb = graph(B, arg);
    int dims[4];
    feed_nb_shape(nb, 0, dims);
    size_t nx = product(dims, 4); /* one replica's input (B,C,H,W) */
    feed_net *rep = feed_nb_build(nb, &opt);
    size_t nout = product(dims, feed_net_output_shape(rep, dims));
    if (g_rank == 0 && getenv("SYNC_BN_VERBOSE")) feed_net_print(rep, stdout);
    long calls = 0;
    feed_net_set_replicas(rep, &(feed_net_replicas){.sum = mpi_sum, .count = count, .ctx = &calls});
    int nbn = count_bn(ref);

    float *xg = malloc(count * nx * sizeof(float)), *dg = malloc(count * nout * sizeof(float));

    for (int step = 0; step < 2; step++) {
        /* inputs with a non-zero mean, so the statistics' centring matters */
        fill_normal(xg, count * nx, 100 + (uint64_t)step, 1.5f, 0.7f);
        fill_normal(dg, count * nout, 200 + (uint64_t)step, 1.0f, 0.0f);
        long before = calls;
        feed_net_forward(ref, xg, 1);
        feed_net_forward(rep, xg + g_rank * nx, 1);
        EXPECT_INT_EQ(calls - before, 2 * nbn);
        expect_close(what, "output", E_OUT, feed_net_output(rep), feed_net_output(ref) + g_rank * nout, nout);
        compare_buffers(what, rep, ref);

        before = calls;
        feed_net_backward(ref, dg);
        feed_net_backward(rep, dg + g_rank * nout);
        EXPECT_INT_EQ(calls - before, nbn);
        expect_close(what, "input grad", E_INGRAD, feed_net_input_grad(rep), feed_net_input_grad(ref) + g_rank * nx,
                     nx);
        compare_param_grads(what, rep, ref);
    }

    /* eval: running statistics, no hook calls */
    long before = calls;
    feed_net_forward(ref, xg, 0);
    feed_net_forward(rep, xg + g_rank * nx, 0);
    EXPECT_INT_EQ(calls, before);
    expect_close(what, "eval output", E_EVAL, feed_net_output(rep), feed_net_output(ref) + g_rank * nout, nout);

    /* without the hook: per-replica statistics, other outputs */
    feed_net_set_replicas(rep, NULL);
    feed_net_forward(ref, xg, 1);
    feed_net_forward(rep, xg + g_rank * nx, 1);
    EXPECT_INT_EQ(calls, before);
    double e = feed_test_max_rel_diff(feed_net_output(rep), feed_net_output(ref) + g_rank * nout, nout);
    feed_test_checks++;
    if (!(e > 1e-3))
        feed_test_fail(__FILE__, __LINE__, "rank %d %s: unsynchronised BN matches the global batch (%.3g)", g_rank,
                       what, e);
    if (g_rank == 0) printf("  %-22s ok (unsynchronised output differs by %.3g)\n", what, e);

    free(xg);
    free(dg);
    feed_net_free(rep);
    feed_net_free(ref);
}

int main(int argc, char **argv) {
    CHECK_MPI(MPI_Init(&argc, &argv));
    CHECK_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &g_rank));
    CHECK_MPI(MPI_Comm_size(MPI_COMM_WORLD, &g_size));
    feed_set_error_rank(g_rank, g_size);

    small_spec blocked = {.cin = 16, .c = 16, .hw = 6}, odd = {.cin = 3, .c = 5, .hw = 5};
    run_case("small 16 channels", small_graph, &blocked, 3);
    run_case("small 3/5 channels", small_graph, &odd, 2);
    run_case("resnet20 16x16", model_graph, "resnet20", 2);

    double all[E_KINDS];
    CHECK_MPI(MPI_Allreduce(g_max_err, all, E_KINDS, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
    if (g_rank == 0)
        for (int k = 0; k < E_KINDS; k++) printf("max rel err %-14s %.3g\n", kind_name[k], all[k]);
    int failed = feed_test_failures, any = 0;
    CHECK_MPI(MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    char name[32];
    snprintf(name, sizeof name, "test_sync_bn rank %d", g_rank);
    int code = feed_test_finish(name);
    CHECK_MPI(MPI_Finalize());
    return code ? code : any != 0;
}
