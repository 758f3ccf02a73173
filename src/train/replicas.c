/* replicas.c - data-parallel replicas of one network (include/feed/replicas.h).
 *
 * Gradient buckets: the network's gradient arena (feed_net_grads, n floats) is cut from the
 * top into buckets of FEED_BUCKET_FLOATS: parameters are laid out in forward order, so the
 * backward finishes the top of the arena first and bucket k = [n - (k+1)S, n - kS) can start
 * its MPI_Iallreduce as soon as grads_final_from reaches its lower end. Each module (the
 * distillation terms' NTLs, translators) is one more bucket, started before the network's
 * backward. Open MPI 4.1 has no progress thread, so every grads_final_from call also tests
 * the requests in flight: the reductions move while the backward computes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
#include "feed/replicas.h"

/* 64 K floats (256 KB): a CIFAR ResNet's gradient (1-3.5 MB) makes 5-15 buckets, each large
 * enough that its latency (tens of microseconds on a cluster fabric) is small beside its
 * transfer, and the first ones start while most of the backward is still to come. */
#define FEED_BUCKET_FLOATS ((size_t)65536)

typedef struct {
    float *data;
    int n;
} bucket;

struct feed_replicas {
    feed_replicas_config cfg;
    MPI_Comm comm; /* our duplicate */
    int rank, count;
    feed_net *net;
    feed_net **modules;
    int n_modules;
    int n_net_params;      /* the first sgd entries are the network's */
    bucket *b;             /* [nb]: the network's buckets top down, then one per module */
    MPI_Request *req;      /* [nb] */
    int nb, n_net_buckets;
    int next;              /* the next network bucket to start */
    size_t started_from;   /* the network's arena is being reduced from this offset up */
    char *bn_stage;        /* BN buffers of one net (broadcast) */
    size_t bn_stage_bytes;
    uint64_t *sums;        /* [n_sums] drift checksums */
    uint64_t *sums0;       /* replica 0's */
    int n_sums;
    bool overlap;          /* start buckets during the backward (FEED_REPLICAS_OVERLAP=0: after it) */
};

static void sum_floats(void *ctx, float *buf, int n) {
    feed_replicas *R = ctx;
    CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, R->comm));
}

static void start_bucket(feed_replicas *R, int i) {
    CHECK_MPI(MPI_Iallreduce(MPI_IN_PLACE, R->b[i].data, R->b[i].n, MPI_FLOAT, MPI_SUM, R->comm, &R->req[i]));
}

/* The network's backward has finished every gradient at and above `offset`. */
static void grads_final_from(void *ctx, size_t offset) {
    feed_replicas *R = ctx;
    size_t n;
    float *g = feed_net_grads(R->net, &n);
    while (R->next < R->n_net_buckets && (size_t)(R->b[R->next].data - g) >= offset) start_bucket(R, R->next++);
    int done;
    CHECK_MPI(MPI_Testall(R->nb, R->req, &done, MPI_STATUSES_IGNORE)); /* progress */
}

static void hook(feed_replicas *R, feed_net *net) {
    feed_net_replicas h = {.sum = R->cfg.sync_bn ? sum_floats : NULL,
                           .count = R->count,
                           .grads_final_from = net == R->net && R->overlap ? grads_final_from : NULL,
                           .ctx = R};
    feed_net_set_replicas(net, &h);
}

static int params_of(feed_net *net) {
    int k = 0;
    for (int i = 0; i < feed_net_num_entries(net); i++) k += feed_net_entry(net, i)->kind == FEED_PARAM;
    return k;
}

feed_replicas *feed_replicas_create(const feed_replicas_config *cfg, feed_net *net, feed_net *const *modules,
                                    int n_modules, const feed_sgd *sgd) {
    feed_replicas *R = feed_xcalloc(1, sizeof *R, "replicas");
    R->cfg = *cfg;
    CHECK_MPI(MPI_Comm_dup(cfg->comm, &R->comm));
    CHECK_MPI(MPI_Comm_rank(R->comm, &R->rank));
    CHECK_MPI(MPI_Comm_size(R->comm, &R->count));
    R->net = net;
    R->n_modules = n_modules;
    const char *ov = getenv("FEED_REPLICAS_OVERLAP");
    R->overlap = !(ov && strcmp(ov, "0") == 0);
    R->modules = feed_xcalloc((size_t)(n_modules ? n_modules : 1), sizeof *R->modules, "replica modules");
    int expect = params_of(net);
    R->n_net_params = expect;
    for (int m = 0; m < n_modules; m++) {
        R->modules[m] = modules[m];
        expect += params_of(modules[m]);
    }
    FEED_CHECK(expect == sgd->count, "this is a bug",
               "%s: the optimizer holds %d parameters, the network and its %d modules %d: a parameter outside "
               "them would not be reduced", cfg->what, sgd->count, n_modules, expect);

    size_t n;
    float *g = feed_net_grads(net, &n);
    R->n_net_buckets = (int)((n + FEED_BUCKET_FLOATS - 1) / FEED_BUCKET_FLOATS);
    R->nb = R->n_net_buckets + n_modules;
    R->b = feed_xcalloc((size_t)(R->nb ? R->nb : 1), sizeof *R->b, "gradient buckets");
    R->req = feed_xcalloc((size_t)(R->nb ? R->nb : 1), sizeof *R->req, "gradient requests");
    for (int k = 0; k < R->n_net_buckets; k++) {
        size_t hi = n - (size_t)k * FEED_BUCKET_FLOATS;
        size_t lo = hi > FEED_BUCKET_FLOATS ? hi - FEED_BUCKET_FLOATS : 0;
        R->b[k] = (bucket){g + lo, (int)(hi - lo)};
    }
    for (int m = 0; m < n_modules; m++) {
        size_t mn;
        float *mg = feed_net_grads(modules[m], &mn);
        FEED_CHECK(mn <= (size_t)1 << 30, "this is a bug", "module %d has %zu gradient floats", m, mn);
        R->b[R->n_net_buckets + m] = (bucket){mg, (int)mn};
    }
    for (int i = 0; i < R->nb; i++) R->req[i] = MPI_REQUEST_NULL;

    R->bn_stage_bytes = feed_net_buffers_bytes(net);
    for (int m = 0; m < n_modules; m++)
        if (feed_net_buffers_bytes(modules[m]) > R->bn_stage_bytes) R->bn_stage_bytes = feed_net_buffers_bytes(modules[m]);
    R->bn_stage = feed_xmalloc(R->bn_stage_bytes + 1, "BN buffers");
    R->n_sums = sgd->count + 1 + n_modules;
    R->sums = feed_xcalloc((size_t)R->n_sums, sizeof *R->sums, "replica checksums");
    R->sums0 = feed_xcalloc((size_t)R->n_sums, sizeof *R->sums0, "replica checksums");

    hook(R, net);
    for (int m = 0; m < n_modules; m++) hook(R, modules[m]);
    return R;
}

void feed_replicas_free(feed_replicas *R) {
    if (!R) return;
    feed_net_set_replicas(R->net, NULL);
    for (int m = 0; m < R->n_modules; m++) feed_net_set_replicas(R->modules[m], NULL);
    CHECK_MPI(MPI_Comm_free(&R->comm));
    free(R->modules), free(R->b), free(R->req), free(R->bn_stage), free(R->sums), free(R->sums0), free(R);
}

static void broadcast_buffers(feed_replicas *R, feed_net *net) {
    size_t bytes = feed_net_buffers_bytes(net);
    if (!bytes) return;
    if (R->rank == 0) feed_net_buffers_save(net, R->bn_stage);
    CHECK_MPI(MPI_Bcast(R->bn_stage, (int)bytes, MPI_BYTE, 0, R->comm));
    if (R->rank != 0) feed_net_buffers_restore(net, R->bn_stage);
}

void feed_replicas_broadcast_state(feed_replicas *R, feed_sgd *sgd) {
    for (int i = 0; i < sgd->count; i++) {
        feed_sgd_param *p = &sgd->params[i];
        CHECK_MPI(MPI_Bcast(p->param, (int)p->n, MPI_FLOAT, 0, R->comm));
        if (p->momentum_buf) CHECK_MPI(MPI_Bcast(p->momentum_buf, (int)p->n, MPI_FLOAT, 0, R->comm));
    }
    long steps = sgd->steps_taken;
    CHECK_MPI(MPI_Bcast(&steps, 1, MPI_LONG, 0, R->comm));
    feed_sgd_set_steps_taken(sgd, steps);
    feed_net_params_changed(R->net);
    broadcast_buffers(R, R->net);
    for (int m = 0; m < R->n_modules; m++) {
        feed_net_params_changed(R->modules[m]);
        broadcast_buffers(R, R->modules[m]);
    }
}

void feed_replicas_backward_begin(feed_replicas *R) {
    R->next = 0;
    if (R->overlap)
        for (int m = 0; m < R->n_modules; m++) start_bucket(R, R->n_net_buckets + m);
}

double feed_replicas_backward_end(feed_replicas *R) {
    double t0 = MPI_Wtime();
    while (R->next < R->n_net_buckets) start_bucket(R, R->next++); /* without overlap: all of them now */
    if (!R->overlap)
        for (int m = 0; m < R->n_modules; m++) start_bucket(R, R->n_net_buckets + m);
    CHECK_MPI(MPI_Waitall(R->nb, R->req, MPI_STATUSES_IGNORE));
    double waited = MPI_Wtime() - t0;
    /* the mean over the global batch: every replica's loss is a mean over its shard */
    const float inv = 1.0f / (float)R->count;
    for (int i = 0; i < R->nb; i++) {
        float *d = R->b[i].data;
        for (int j = 0; j < R->b[i].n; j++) d[j] *= inv;
    }
    return waited;
}

bool feed_replicas_any(feed_replicas *R, bool mine) {
    int v = mine, any = 0;
    CHECK_MPI(MPI_Allreduce(&v, &any, 1, MPI_INT, MPI_LOR, R->comm));
    return any != 0;
}

void feed_replicas_sum(feed_replicas *R, double *v, int n) {
    CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, R->comm));
}

/* FNV-1a over 64-bit words (and the tail bytes). */
static uint64_t hash_bytes(uint64_t h, const void *data, size_t bytes) {
    const unsigned char *p = data;
    size_t words = bytes / 8;
    for (size_t i = 0; i < words; i++) {
        uint64_t w;
        memcpy(&w, p + 8 * i, 8);
        h = (h ^ w) * 0x100000001b3ULL;
    }
    for (size_t i = words * 8; i < bytes; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

/* What checksum i covers, for the message. */
static const char *sum_name(const feed_replicas *R, int i, char *buf, size_t cap) {
    if (i < R->n_net_params) {
        for (int e = 0, k = 0; e < feed_net_num_entries(R->net); e++)
            if (feed_net_entry(R->net, e)->kind == FEED_PARAM && k++ == i)
                return feed_net_entry(R->net, e)->name;
    }
    int n_params = R->n_sums - 1 - R->n_modules;
    if (i < n_params) snprintf(buf, cap, "a distillation module's parameter %d", i - R->n_net_params);
    else if (i == n_params) snprintf(buf, cap, "the network's BN statistics");
    else snprintf(buf, cap, "the BN statistics of distillation module %d", i - n_params);
    return buf;
}

void feed_replicas_check(feed_replicas *R, const feed_sgd *sgd, int64_t global_step) {
    if (R->cfg.check_every <= 0 || global_step % R->cfg.check_every != 0) return;
    const uint64_t seed = 0xcbf29ce484222325ULL;
    for (int i = 0; i < sgd->count; i++) {
        const feed_sgd_param *p = &sgd->params[i];
        uint64_t h = hash_bytes(seed, p->param, p->n * sizeof(float));
        R->sums[i] = p->momentum_buf ? hash_bytes(h, p->momentum_buf, p->n * sizeof(float)) : h;
    }
    /* BN statistics agree only when synchronised; per-replica ones differ by design */
    for (int m = -1; m < R->n_modules; m++) {
        feed_net *net = m < 0 ? R->net : R->modules[m];
        uint64_t h = seed;
        if (R->cfg.sync_bn) {
            feed_net_buffers_save(net, R->bn_stage);
            h = hash_bytes(seed, R->bn_stage, feed_net_buffers_bytes(net));
        }
        R->sums[sgd->count + 1 + m] = h;
    }
    memcpy(R->sums0, R->sums, sizeof(uint64_t) * (size_t)R->n_sums);
    CHECK_MPI(MPI_Bcast(R->sums0, R->n_sums, MPI_UINT64_T, 0, R->comm));
    int first = R->n_sums; /* the first checksum that differs from replica 0's */
    for (int i = 0; i < R->n_sums && first == R->n_sums; i++)
        if (R->sums[i] != R->sums0[i]) first = i;
    /* (checksum index, replica) of the lowest difference, reported once by replica 0 */
    int mine[2] = {first, R->rank}, low[2];
    CHECK_MPI(MPI_Allreduce(mine, low, 1, MPI_2INT, MPI_MINLOC, R->comm));
    if (low[0] == R->n_sums) return;
    if (R->rank == 0) {
        char buf[96];
        FEED_FAIL("the replicas must take identical steps: run every replica with the same feed_mpi build, thread "
                  "count (OMP_NUM_THREADS) and CPU type; report it if they did",
                  "%s: replica %d of %d drifted from replica 0 by step %lld: '%s' differs", R->cfg.what, low[1],
                  R->count, (long long)global_step, sum_name(R, low[0], buf, sizeof buf));
    }
    CHECK_MPI(MPI_Barrier(R->comm)); /* replica 0 ends the job */
}
