/* transport_check.c - the feature transport end to end, run under mpirun: rank 0 is the
 * student, ranks 1..N teachers. Teachers send maps that are a known function of (teacher,
 * step, element): every fp32 bit pattern is possible, NaNs and Infs included. The student
 * checks every element of every step: bit-exact for fp32, exactly the documented rounding
 * for bf16/fp16.
 *
 * Credits are checked independently of the transport's own bookkeeping: the student
 * publishes the step it releases in node-shared memory (MPI-3 shared window) before calling
 * release(), and each teacher checks after every post(t) that t <= that step + K.
 *
 * Options (key=value): dtype=fp32|bf16|fp16 steps=N credits=K first=S elems=E1,E2,..
 *   stop=S (student ends the stream after step S) student_ms= teacher_ms= (simulated compute,
 *   sleeping in 1 ms slices with progress calls) timeout= teacher_timeout=
 *   expect_full_ahead=1 (teachers must reach K steps ahead: use with a slower student)
 *   overlap_check=1 (elapsed < 0.8 * steps * (student_ms + teacher_ms))
 *   fault=sleep|crash|batch|first|elems|short fault_rank=R fault_step=T (failure tests) */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "feed/check.h"
#include "feed/feature_transport.h"
#include "feed_test.h"

enum { MAX_TEACHERS = 8 };

typedef struct {
    feed_wire_dtype dtype;
    int64_t steps, first, stop;
    int credits, expect_full_ahead, overlap_check;
    size_t elems[MAX_TEACHERS]; /* teacher n at [n-1] */
    int num_elems;
    double student_ms, teacher_ms, timeout, teacher_timeout;
    char fault[16];
    int fault_rank;
    int64_t fault_step;
} options;

static void parse(int argc, char **argv, options *o) {
    memset(o, 0, sizeof *o);
    o->dtype = FEED_WIRE_FP32;
    o->steps = 200;
    o->credits = 2;
    o->stop = -1;
    o->timeout = o->teacher_timeout = 30;
    o->fault_rank = -1;
    o->fault_step = -1;
    for (int i = 1; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) FEED_INPUT_ERROR("options are key=value", "bad option '%s'", argv[i]);
        *eq = 0;
        const char *k = argv[i], *v = eq + 1;
        if (!strcmp(k, "dtype")) {
            if (feed_wire_dtype_parse(v, &o->dtype)) FEED_INPUT_ERROR("fp32|bf16|fp16", "dtype=%s", v);
        } else if (!strcmp(k, "steps")) o->steps = atoll(v);
        else if (!strcmp(k, "credits")) o->credits = atoi(v);
        else if (!strcmp(k, "first")) o->first = atoll(v);
        else if (!strcmp(k, "stop")) o->stop = atoll(v);
        else if (!strcmp(k, "student_ms")) o->student_ms = atof(v);
        else if (!strcmp(k, "teacher_ms")) o->teacher_ms = atof(v);
        else if (!strcmp(k, "timeout")) o->timeout = atof(v);
        else if (!strcmp(k, "teacher_timeout")) o->teacher_timeout = atof(v);
        else if (!strcmp(k, "expect_full_ahead")) o->expect_full_ahead = atoi(v);
        else if (!strcmp(k, "overlap_check")) o->overlap_check = atoi(v);
        else if (!strcmp(k, "fault")) snprintf(o->fault, sizeof o->fault, "%s", v);
        else if (!strcmp(k, "fault_rank")) o->fault_rank = atoi(v);
        else if (!strcmp(k, "fault_step")) o->fault_step = atoll(v);
        else if (!strcmp(k, "elems")) {
            for (char *tok = strtok((char *)v, ","); tok && o->num_elems < MAX_TEACHERS; tok = strtok(NULL, ","))
                o->elems[o->num_elems++] = (size_t)atoll(tok);
        } else FEED_INPUT_ERROR("see the comment at the top of transport_check.c", "unknown option '%s'", k);
    }
}

/* The map teacher n sends at step t: element i is a hash of (n, t, i) as a bit pattern. */
static uint32_t map_bits(int n, int64_t t, size_t i) {
    uint64_t x = ((uint64_t)n << 56) ^ ((uint64_t)t << 28) ^ (uint64_t)i;
    x ^= x >> 33, x *= 0xff51afd7ed558ccdull, x ^= x >> 33, x *= 0xc4ceb9fe1a85ec53ull, x ^= x >> 33;
    return (uint32_t)x;
}

static uint64_t batch_id_of(int64_t step) { return 0x5eed0000ull * 2654435761ull ^ (uint64_t)step * 0x9e3779b97f4a7c15ull; }

static float expected_value(feed_wire_dtype dtype, uint32_t bits) {
    float x;
    memcpy(&x, &bits, 4);
    switch (dtype) {
    case FEED_WIRE_BF16: return feed_bf16_to_fp32(feed_fp32_to_bf16(x));
    case FEED_WIRE_FP16: return feed_fp16_to_fp32(feed_fp32_to_fp16(x));
    default: return x;
    }
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* Simulated compute: sleep in 1 ms slices ("layers"), driving MPI progress in between. */
static void compute(double ms, void (*progress)(void *), void *ctx) {
    double end = now() + ms * 1e-3;
    for (;;) {
        double left = end - now();
        if (left <= 0) break;
        double slice = left < 1e-3 ? left : 1e-3;
        struct timespec ts = {0, (long)(slice * 1e9)};
        nanosleep(&ts, NULL);
        progress(ctx);
    }
}
static void sender_progress(void *tx) { feed_feature_sender_progress(tx); }
static void receiver_progress(void *rx) { feed_feature_receiver_progress(rx); }

static int is_fault(const options *o, const char *name, int rank) {
    return !strcmp(o->fault, name) && rank == o->fault_rank;
}

static void run_teacher(const options *o, int rank, volatile int64_t *student_released) {
    int n = rank;
    feed_feature_sender_config cfg = {
        .comm = MPI_COMM_WORLD, .student_rank = 0, .teacher_index = n,
        .elems_per_step = o->elems[n - 1] + (is_fault(o, "elems", rank) ? 1 : 0),
        .dtype = o->dtype, .credits = o->credits,
        .first_step = o->first + (is_fault(o, "first", rank) ? 1 : 0),
        .timeout_s = o->teacher_timeout};
    feed_feature_sender *tx = feed_feature_sender_create(&cfg);
    int64_t t = cfg.first_step, last_posted = cfg.first_step - 1;
    int max_ahead_seen = 0, ahead_violations = 0;
    int64_t end = o->first + o->steps;
    if (is_fault(o, "short", rank)) end = o->fault_step; /* a schedule shorter than the student's */
    for (; t < end; t++) {
        float *map = feed_feature_sender_acquire(tx, t);
        if (!map) break;
        for (size_t i = 0; i < cfg.elems_per_step; i++) {
            uint32_t b = map_bits(n, t, i);
            memcpy(&map[i], &b, 4);
        }
        compute(o->teacher_ms, sender_progress, tx);
        if (t == o->fault_step && is_fault(o, "sleep", rank)) sleep(3600);
        if (t == o->fault_step && is_fault(o, "crash", rank)) raise(SIGKILL);
        uint64_t id = batch_id_of(t) ^ (t == o->fault_step && is_fault(o, "batch", rank) ? 1 : 0);
        if (!feed_feature_sender_post(tx, t, id)) break;
        last_posted = t;
        int64_t released = __atomic_load_n(student_released, __ATOMIC_SEQ_CST);
        int ahead = (int)(t - released);
        if (ahead > max_ahead_seen) max_ahead_seen = ahead;
        if (ahead > o->credits && ++ahead_violations <= 5)
            feed_test_fail(__FILE__, __LINE__, "teacher %d posted step %lld with the student at "
                           "release %lld: more than %d steps ahead", n, (long long)t,
                           (long long)released, o->credits);
    }
    feed_feature_sender_finish(tx);
    feed_feature_sender_stats st;
    feed_feature_sender_get_stats(tx, &st);
    feed_feature_sender_destroy(tx);
    printf("teacher %d: sent %lld steps (last %lld), max ahead %d (transport) %d (observed), "
           "credit wait %.3f s, buffer wait %.3f s\n", n, (long long)st.steps_sent,
           (long long)last_posted, st.max_ahead, max_ahead_seen, st.credit_wait_s, st.buffer_wait_s);
    EXPECT_INT_EQ(ahead_violations, 0);
    EXPECT(st.max_ahead <= o->credits);
    if (o->expect_full_ahead) EXPECT_INT_EQ(max_ahead_seen, o->credits);
    if (o->stop >= 0) {
        EXPECT(last_posted <= o->stop + o->credits); /* stopped within the credit window */
        EXPECT(last_posted >= o->stop);
    } else {
        EXPECT_INT_EQ(last_posted, end - 1);
    }
}

static void run_student(const options *o, int num_teachers, volatile int64_t *released_shared) {
    int ranks[MAX_TEACHERS];
    for (int n = 1; n <= num_teachers; n++) ranks[n - 1] = n;
    feed_feature_receiver_config cfg = {
        .comm = MPI_COMM_WORLD, .num_teachers = num_teachers, .teacher_ranks = ranks,
        .elems_per_step = o->elems, .dtype = o->dtype, .credits = o->credits,
        .first_step = o->first, .timeout_s = o->timeout};
    feed_feature_receiver *rx = feed_feature_receiver_create(&cfg);
    double t0 = now();
    int64_t last = o->first + o->steps - 1, done_steps = 0;
    if (o->stop >= 0 && o->stop < last) last = o->stop;
    long long bad_elems = 0;
    for (int64_t t = o->first; t <= last; t++) {
        for (int n = 1; n <= num_teachers; n++) {
            double waited;
            const float *map = feed_feature_receiver_wait(rx, n, t, batch_id_of(t), &waited);
            long long bad = 0;
            for (size_t i = 0; i < o->elems[n - 1]; i++) {
                float want = expected_value(o->dtype, map_bits(n, t, i));
                if (memcmp(&map[i], &want, 4) != 0 && ++bad <= 3)
                    feed_test_fail(__FILE__, __LINE__, "teacher %d step %lld element %zu: got "
                                   "%a, expected %a", n, (long long)t, i, (double)map[i], (double)want);
            }
            bad_elems += bad;
        }
        compute(o->student_ms, receiver_progress, rx);
        if (t == o->fault_step && is_fault(o, "sleep", 0)) sleep(3600);
        __atomic_store_n(released_shared, t, __ATOMIC_SEQ_CST);
        feed_feature_receiver_release(rx, t);
        done_steps++;
    }
    feed_feature_receiver_finish(rx);
    double secs = now() - t0;
    EXPECT_INT_EQ(bad_elems, 0);
    EXPECT_INT_EQ(done_steps, last - o->first + 1);
    for (int n = 1; n <= num_teachers; n++) {
        feed_feature_receiver_stats st;
        feed_feature_receiver_get_stats(rx, n, &st);
        EXPECT_INT_EQ(st.steps_received, done_steps);
        printf("student: teacher %d: %lld steps, waited %.3f s (max %.3f s)\n", n,
               (long long)st.steps_received, st.wait_s, st.max_wait_s);
    }
    feed_feature_receiver_destroy(rx);
    double serial = (double)done_steps * (o->student_ms + o->teacher_ms) * 1e-3;
    printf("student: %lld steps (%s, K=%d) in %.3f s; serial compute would take %.3f s\n",
           (long long)done_steps, feed_wire_dtype_name(o->dtype), o->credits, secs, serial);
    if (o->overlap_check) EXPECT(secs < 0.8 * serial);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    feed_set_error_rank(rank, size);
    options o;
    parse(argc, argv, &o);
    if (size < 2 || o.num_elems != size - 1)
        FEED_INPUT_ERROR("run with mpirun -np N+1 and elems=E1,..,EN", "%d ranks, %d teacher sizes",
                         size, o.num_elems);

    /* The student's released step, readable by every rank on the node. */
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    int node_size;
    MPI_Comm_size(node, &node_size);
    if (node_size != size) FEED_INPUT_ERROR("this test runs on one node", "ranks span several nodes");
    int64_t *released = NULL;
    MPI_Win win;
    MPI_Win_allocate_shared(rank == 0 ? (MPI_Aint)sizeof(int64_t) : 0, sizeof(int64_t), MPI_INFO_NULL,
                            node, &released, &win);
    MPI_Aint seg;
    int disp;
    MPI_Win_shared_query(win, 0, &seg, &disp, &released);
    if (rank == 0) *released = o.first - 1;
    MPI_Barrier(MPI_COMM_WORLD);

    if (rank == 0) run_student(&o, size - 1, released);
    else run_teacher(&o, rank, released);

    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Win_free(&win);
    MPI_Comm_free(&node);
    char name[64];
    snprintf(name, sizeof name, "transport_check rank %d", rank);
    int code = feed_test_finish(name);
    MPI_Finalize();
    return code;
}
