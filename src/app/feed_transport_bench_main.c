/* feed_transport_bench - throughput of the teacher -> student feature transport.
 *
 *   mpirun -np N+1 feed_transport_bench [--elems E] [--dtype fp32|bf16|fp16] [--credits K]
 *          [--steps S] [--student-ms Ts] [--teacher-ms Tt] [--compute busy|sleep]
 *          [--progress-ms P]
 *
 * Rank 0 plays the student, ranks 1..N the teachers. Compute is simulated: each step spins
 * (or sleeps) Ts ms on the student and Tt ms on every teacher, calling the transport's
 * progress function every P ms (P = 0: never, to show what the missing progress thread
 * costs). With the transport overlapping perfectly, the student runs 1000/max(Ts,Tt) steps/s,
 * not 1000/(Ts+Tt). Prints one line:
 *
 *   transport teachers=N elems=E dtype=D credits=K compute=busy student_ms=Ts teacher_ms=Tt
 *     progress_ms=P steps=S steps_per_s=X ideal_steps_per_s=Y efficiency=X/Y
 *     student_wait_ms_per_step=W wire_MB_per_s=B
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "feed/check.h"
#include "feed/feature_transport.h"

typedef struct {
    size_t elems;
    feed_wire_dtype dtype;
    int credits, steps, busy;
    double student_ms, teacher_ms, progress_ms;
} bench_options;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void usage_error(const char *what) {
    FEED_INPUT_ERROR("usage: mpirun -np N+1 feed_transport_bench [--elems E] [--dtype fp32|bf16|fp16] "
                     "[--credits K] [--steps S] [--student-ms T] [--teacher-ms T] "
                     "[--compute busy|sleep] [--progress-ms P]", "%s", what);
}

static bench_options parse(int argc, char **argv) {
    bench_options o = {.elems = 128 * 64 * 8 * 8, .dtype = FEED_WIRE_FP32, .credits = 2,
                       .steps = 200, .busy = 1, .student_ms = 10, .teacher_ms = 10, .progress_ms = 1};
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage_error(feed_fmt("%s needs a value", k));
        i++;
        if (!strcmp(k, "--elems")) o.elems = (size_t)atoll(v);
        else if (!strcmp(k, "--dtype")) { if (feed_wire_dtype_parse(v, &o.dtype)) usage_error(feed_fmt("bad --dtype %s", v)); }
        else if (!strcmp(k, "--credits")) o.credits = atoi(v);
        else if (!strcmp(k, "--steps")) o.steps = atoi(v);
        else if (!strcmp(k, "--student-ms")) o.student_ms = atof(v);
        else if (!strcmp(k, "--teacher-ms")) o.teacher_ms = atof(v);
        else if (!strcmp(k, "--progress-ms")) o.progress_ms = atof(v);
        else if (!strcmp(k, "--compute")) {
            if (strcmp(v, "busy") && strcmp(v, "sleep")) usage_error(feed_fmt("bad --compute %s", v));
            o.busy = !strcmp(v, "busy");
        } else usage_error(feed_fmt("unknown option %s", k));
    }
    if (o.elems == 0 || o.steps < 10 || o.credits < 1) usage_error("need --elems > 0, --steps >= 10, --credits >= 1");
    return o;
}

/* Simulated compute until `end`, with a progress call every progress_ms ("layer boundary"). */
static void compute_until(const bench_options *o, double end, void (*progress)(void *), void *ctx) {
    double next_progress = now() + o->progress_ms * 1e-3;
    for (;;) {
        double t = now();
        if (t >= end) return;
        if (o->progress_ms > 0 && t >= next_progress) {
            progress(ctx);
            next_progress = t + o->progress_ms * 1e-3;
        }
        if (!o->busy) {
            double slice = end - t;
            if (o->progress_ms > 0 && next_progress - t < slice) slice = next_progress - t;
            struct timespec ts = {(time_t)slice, (long)((slice - (time_t)slice) * 1e9)};
            nanosleep(&ts, NULL);
        }
    }
}
static void sender_progress(void *tx) { feed_feature_sender_progress(tx); }
static void receiver_progress(void *rx) { feed_feature_receiver_progress(rx); }

static void run_teacher(const bench_options *o, int rank) {
    feed_feature_sender_config cfg = {.comm = MPI_COMM_WORLD, .student_rank = 0, .teacher_index = rank,
                                      .elems_per_step = o->elems, .dtype = o->dtype,
                                      .credits = o->credits, .first_step = 0, .timeout_s = 300};
    feed_feature_sender *tx = feed_feature_sender_create(&cfg);
    for (int64_t t = 0; t < o->steps; t++) {
        double end = now() + o->teacher_ms * 1e-3;
        float *map = feed_feature_sender_acquire(tx, t);
        if (!map) break;
        for (size_t i = 0; i < o->elems; i++) map[i] = (float)(i % 977) * 0.25f + (float)t;
        compute_until(o, end, sender_progress, tx);
        if (!feed_feature_sender_post(tx, t, (uint64_t)t)) break;
    }
    feed_feature_sender_finish(tx);
    feed_feature_sender_destroy(tx);
}

static void run_student(const bench_options *o, int num_teachers) {
    int *ranks = feed_xmalloc(sizeof(int) * (size_t)num_teachers, "teacher ranks");
    size_t *elems = feed_xmalloc(sizeof(size_t) * (size_t)num_teachers, "teacher sizes");
    for (int n = 0; n < num_teachers; n++) ranks[n] = n + 1, elems[n] = o->elems;
    feed_feature_receiver_config cfg = {.comm = MPI_COMM_WORLD, .num_teachers = num_teachers,
                                        .teacher_ranks = ranks, .elems_per_step = elems,
                                        .dtype = o->dtype, .credits = o->credits,
                                        .first_step = 0, .timeout_s = 300};
    feed_feature_receiver *rx = feed_feature_receiver_create(&cfg);
    const int warmup = 5;
    double t_start = 0, waited = 0, checksum = 0;
    for (int64_t t = 0; t < o->steps; t++) {
        if (t == warmup) t_start = now(), waited = 0;
        double end_wait = 0;
        for (int n = 1; n <= num_teachers; n++) {
            double w;
            const float *map = feed_feature_receiver_wait(rx, n, t, (uint64_t)t, &w);
            checksum += map[o->elems - 1]; /* touch the map, as a loss would */
            waited += w;
        }
        end_wait = now();
        compute_until(o, end_wait + o->student_ms * 1e-3, receiver_progress, rx);
        feed_feature_receiver_release(rx, t);
    }
    double secs = now() - t_start;
    feed_feature_receiver_finish(rx);
    feed_feature_receiver_destroy(rx);
    int measured = o->steps - warmup;
    double rate = measured / secs;
    double bound_ms = o->student_ms > o->teacher_ms ? o->student_ms : o->teacher_ms;
    double ideal = bound_ms > 0 ? 1000.0 / bound_ms : 0;
    double wire_mb = (double)measured * num_teachers * (double)o->elems *
                     (double)feed_wire_dtype_size(o->dtype) / 1e6;
    printf("transport teachers=%d elems=%zu dtype=%s credits=%d compute=%s student_ms=%g "
           "teacher_ms=%g progress_ms=%g steps=%d steps_per_s=%.1f ideal_steps_per_s=%.1f "
           "efficiency=%.3f student_wait_ms_per_step=%.3f wire_MB_per_s=%.0f\n",
           num_teachers, o->elems, feed_wire_dtype_name(o->dtype), o->credits,
           o->busy ? "busy" : "sleep", o->student_ms, o->teacher_ms, o->progress_ms, o->steps,
           rate, ideal, ideal > 0 ? rate / ideal : 0.0, 1e3 * waited / measured, wire_mb / secs);
    if (checksum == -1.0) printf("(checksum)\n"); /* keeps the reads */
    free(ranks);
    free(elems);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    feed_set_program_name("feed_transport_bench");
    feed_set_error_rank(rank, size);
    bench_options o = parse(argc, argv);
    if (size < 2) usage_error("run with mpirun -np N+1 (a student and N >= 1 teachers)");
    if (rank == 0) run_student(&o, size - 1);
    else run_teacher(&o, rank);
    MPI_Finalize();
    return 0;
}
