/* report.c - rank 0's standard output: one line per epoch for all ranks, and a live
 * progress line on terminals. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "feed/check.h"
#include "feed/metrics.h"

double feed_now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

const char *feed_format_duration(double s, char *buf, size_t cap) {
    if (!isfinite(s) || s < 0) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
    else if (t >= 60) snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, cap, "%lds", t);
    return buf;
}

enum { F_TRAIN_LOSS, F_TRAIN_ERR, F_TEST_LOSS, F_TEST_ERR, F_IMG_S, F_COUNT };

/* "0.412" or "0.412 [0.401-0.430]" over the ranks */
static void stat_str(char *buf, size_t cap, const double *all, int size, int field, double scale,
                     const char *fmt) {
    double sum = 0, lo = INFINITY, hi = -INFINITY;
    for (int r = 0; r < size; r++) {
        double v = all[r * F_COUNT + field] * scale;
        sum += v;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    char a[32], b[32], c[32];
    snprintf(a, sizeof a, fmt, sum / size);
    if (size == 1) {
        snprintf(buf, cap, "%s", a);
        return;
    }
    snprintf(b, sizeof b, fmt, lo);
    snprintf(c, sizeof c, fmt, hi);
    snprintf(buf, cap, "%s [%s-%s]", a, b, c);
}

void feed_report_epoch(const feed_epoch_metrics *m, int64_t epochs_total, double eta_seconds, const char *label,
                       MPI_Comm comm) {
    int rank, size;
    CHECK_MPI(MPI_Comm_rank(comm, &rank));
    CHECK_MPI(MPI_Comm_size(comm, &size));
    double mine[F_COUNT] = {m->train_loss, m->train_error, m->test_loss, m->test_error, m->img_per_s};
    double all[F_COUNT * 64];
    double *buf = size <= 64 ? all : feed_xmalloc(sizeof(double) * F_COUNT * size, "report");
    CHECK_MPI(MPI_Gather(mine, F_COUNT, MPI_DOUBLE, buf, F_COUNT, MPI_DOUBLE, 0, comm));
    if (rank == 0) {
        char tl[128], te[128], vl[128], ve[128], eta[32], took[32];
        stat_str(tl, sizeof tl, buf, size, F_TRAIN_LOSS, 1, "%.4f");
        stat_str(te, sizeof te, buf, size, F_TRAIN_ERR, 100, "%.2f%%");
        double img = 0;
        for (int r = 0; r < size; r++) img += buf[r * F_COUNT + F_IMG_S];
        if (label) printf("%s: ", label);
        printf("epoch %*lld/%lld  lr %.4g  train loss %s err %s", epochs_total >= 100 ? 3 : 2,
               (long long)m->epoch, (long long)epochs_total, m->lr, tl, te);
        if (isfinite(m->test_error)) {
            stat_str(vl, sizeof vl, buf, size, F_TEST_LOSS, 1, "%.4f");
            stat_str(ve, sizeof ve, buf, size, F_TEST_ERR, 100, "%.2f%%");
            printf("  test loss %s err %s", vl, ve);
        }
        for (int i = 0; i < m->n_extra; i++) printf("  %s %.4g", m->extra_name[i], m->extra[i]);
        printf("  %.0f img/s  %s", img, feed_format_duration(m->seconds, took, sizeof took));
        if (m->epoch < epochs_total) printf("  ETA %s", feed_format_duration(eta_seconds, eta, sizeof eta));
        printf("\n");
        fflush(stdout);
    }
    if (buf != all) free(buf);
}

/* The parent process is an MPI or SLURM launcher (mpirun, orted, srun, ...). */
static bool parent_is_launcher(void) {
    char path[64], comm[64] = "";
    snprintf(path, sizeof path, "/proc/%ld/comm", (long)getppid());
    FILE *f = fopen(path, "r");
    if (!f) return false;
    if (!fgets(comm, sizeof comm, f)) comm[0] = 0;
    fclose(f);
    comm[strcspn(comm, "\n")] = 0;
    static const char *const launchers[] = {"mpirun", "mpiexec", "orterun", "orted", "prted", "prterun",
                                            "srun", "slurmstepd", "hydra_pmi_proxy"};
    for (size_t i = 0; i < sizeof launchers / sizeof launchers[0]; i++)
        if (strncmp(comm, launchers[i], strlen(launchers[i])) == 0) return true;
    return false;
}

/* Whether a live progress line would reach a person. isatty() alone is not enough: Open MPI
 * gives local ranks a pseudo-terminal even when mpirun's own output goes to a pipe or a batch
 * log, so under a launcher we look at where the launcher's stdout goes. */
static bool output_is_terminal(void) {
    if (!isatty(STDOUT_FILENO)) return false;
    if (!parent_is_launcher()) return true;
    char link[64], target[256];
    snprintf(link, sizeof link, "/proc/%ld/fd/1", (long)getppid());
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0) return false;
    target[n] = 0;
    return strncmp(target, "/dev/pts/", 9) == 0 || strncmp(target, "/dev/tty", 8) == 0;
}

void feed_progress_start(feed_progress *p, int rank, double log_every_s) {
    int world_rank = 0, up = 0;
    MPI_Initialized(&up);
    if (up) MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    const bool terminal = output_is_terminal();
    p->tty = rank == 0 && world_rank == 0 && terminal; /* one live line per job */
    p->log = rank == 0 && !terminal && log_every_s > 0;
    p->log_every_s = log_every_s;
    p->start = p->last_print = feed_now_seconds();
}

bool feed_progress_due(const feed_progress *p, int64_t step, int64_t steps) {
    if (!p->tty && !p->log) return false;
    double since = feed_now_seconds() - p->last_print;
    return p->log ? since >= p->log_every_s && step + 1 < steps : since >= 0.2 || step + 1 >= steps;
}

void feed_progress_update(feed_progress *p, int64_t epoch, int64_t epochs, int64_t step,
                          int64_t steps, double loss, double img_per_s, const char *extra) {
    double now = feed_now_seconds();
    p->last_print = now;
    double left = img_per_s > 0 && steps > step + 1 ? (now - p->start) / (step + 1) * (steps - step - 1) : 0;
    char eta[32];
    feed_format_duration(left, eta, sizeof eta);
    if (p->log) { /* the epoch line follows the last step: no progress line for it */
        printf("  epoch %lld/%lld  step %lld/%lld  loss %.4f  %.0f img/s%s  epoch ETA %s\n", (long long)epoch,
               (long long)epochs, (long long)(step + 1), (long long)steps, loss, img_per_s, extra, eta);
        fflush(stdout);
        return;
    }
    char bar[21];
    int fill = steps > 0 ? (int)(20 * (step + 1) / steps) : 20;
    for (int i = 0; i < 20; i++) bar[i] = i < fill ? '#' : '.';
    bar[20] = 0;
    /* \r, the line, then erase to its end (ESC [ K): a shorter line leaves no tail */
    printf("\r  epoch %lld/%lld [%s] %lld/%lld  loss %.4f  %.0f img/s%s  ETA %s\033[K", (long long)epoch,
           (long long)epochs, bar, (long long)(step + 1), (long long)steps, loss, img_per_s, extra, eta);
    fflush(stdout);
}

void feed_progress_clear(feed_progress *p) {
    if (!p->tty) return;
    printf("\r\033[K");
    fflush(stdout);
}
