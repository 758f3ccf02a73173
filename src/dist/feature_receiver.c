/* feature_receiver.c - student side of the feature transport (see feature_transport.h).
 *
 * Per teacher, K receive slots: step t lands in slot (t - first_step) % K. Receives for the
 * next K unreleased steps are always posted (persistent requests), so a map moves while the
 * student computes; release(t) re-posts the slot for step t+K and sends one credit. */
#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
#include "transport_internal.h"

/* Control sends in flight per teacher. Credits are tiny (eager) messages that complete at
 * once; the ring only avoids waiting on the previous one inside release(). */
#define CONTROL_RING 4

typedef enum { SLOT_POSTED, SLOT_ARRIVED, SLOT_DELIVERED, SLOT_IDLE } slot_state;

typedef struct {
    int rank; /* in the transport's communicator */
    size_t elems;
    unsigned char **wire;    /* [K] header + map in wire format */
    float **decoded;         /* [K] fp32 maps for bf16/fp16; NULL for fp32 (used in place) */
    MPI_Request *recv_req;   /* [K] persistent receives */
    slot_state *state;       /* [K] */
    int64_t *slot_step;      /* [K] step the slot is (or was) posted for */
    feed_control_msg control_out[CONTROL_RING];
    MPI_Request control_req[CONTROL_RING]; /* persistent sends */
    int control_active[CONTROL_RING];
    int control_next;
    feed_control_msg done_in;  /* the teacher's DONE: its last step; received any time */
    MPI_Request done_req;
    int done_arrived;
    feed_feature_receiver_stats stats;
} teacher_link;

struct feed_feature_receiver {
    MPI_Comm comm;
    int num_teachers, credits;
    feed_wire_dtype dtype;
    int64_t first_step;
    double timeout_s;
    int64_t released; /* last step released (first_step - 1 at start) */
    int finished;
    teacher_link *teachers; /* [N]; teacher n is teachers[n-1] */
};

static int slot_of(const feed_feature_receiver *rx, int64_t step) {
    return (int)((step - rx->first_step) % rx->credits);
}

static void validate_config(const feed_feature_receiver_config *cfg, int my_rank, int comm_size) {
    const char *hint = "check the pfeed configuration and the rank count (N teachers + 1 student)";
    if (cfg->num_teachers < 1) FEED_FAIL(hint, "feature receiver: %d teachers", cfg->num_teachers);
    if (cfg->credits < 1) FEED_FAIL(hint, "feature receiver: credits = %d, need >= 1", cfg->credits);
    if ((unsigned)cfg->dtype > FEED_WIRE_FP16) FEED_FAIL(hint, "feature receiver: invalid wire dtype %d", (int)cfg->dtype);
    if (cfg->first_step < 0) FEED_FAIL(hint, "feature receiver: first step %lld < 0", (long long)cfg->first_step);
    for (int i = 0; i < cfg->num_teachers; i++) {
        int r = cfg->teacher_ranks[i];
        if (r < 0 || r >= comm_size || r == my_rank)
            FEED_FAIL(hint, "feature receiver: teacher %d is on rank %d, not another rank of the "
                      "%d-rank communicator", i + 1, r, comm_size);
        for (int j = 0; j < i; j++)
            if (cfg->teacher_ranks[j] == r)
                FEED_FAIL(hint, "feature receiver: teachers %d and %d both on rank %d", j + 1, i + 1, r);
        size_t e = cfg->elems_per_step[i];
        if (e == 0 || e > feed_transport_max_elems(cfg->dtype))
            FEED_FAIL("a map must fit one MPI message (< 2 GiB); reduce the batch size",
                      "feature receiver: teacher %d: %zu elements per step", i + 1, e);
    }
}

/* The teacher's HELLO must describe the same stream the student expects. */
static void check_hello(const feed_feature_receiver *rx, const feed_control_msg *h, int n) {
    const teacher_link *t = &rx->teachers[n - 1];
    feed_control_expect(h, FEED_MSG_HELLO, t->rank, "feature receiver");
    const char *hint = "teacher and student ranks must be started with the same configuration "
                       "(teacher list, transfer, credits, resume step, feature-map shapes)";
    if (h->teacher_index != n)
        FEED_FAIL(hint, "teacher rank %d calls itself teacher %d; the student expects teacher %d "
                  "there", t->rank, (int)h->teacher_index, n);
    if (h->elems != t->elems)
        FEED_FAIL(hint, "teacher rank %d (teacher %d) sends maps of %llu elements per step; the "
                  "student expects %zu", t->rank, n, (unsigned long long)h->elems, t->elems);
    if (h->dtype != (int32_t)rx->dtype)
        FEED_FAIL(hint, "teacher rank %d (teacher %d) sends %s; the student expects %s", t->rank,
                  n, feed_wire_dtype_name((feed_wire_dtype)h->dtype), feed_wire_dtype_name(rx->dtype));
    if (h->credits != rx->credits)
        FEED_FAIL(hint, "teacher rank %d (teacher %d) uses %d credits; the student %d", t->rank,
                  n, (int)h->credits, rx->credits);
    if (h->first_step != rx->first_step)
        FEED_FAIL(hint, "teacher rank %d (teacher %d) starts at step %lld; the student at step "
                  "%lld (resumed from different checkpoints?)", t->rank, n,
                  (long long)h->first_step, (long long)rx->first_step);
}

static void receive_hellos(feed_feature_receiver *rx) {
    int n_t = rx->num_teachers;
    feed_control_msg *hello = feed_xcalloc((size_t)n_t, sizeof *hello, "HELLO messages");
    MPI_Request *req = feed_xcalloc((size_t)n_t, sizeof *req, "HELLO requests");
    for (int i = 0; i < n_t; i++)
        CHECK_MPI(MPI_Irecv(&hello[i], (int)sizeof hello[i], MPI_BYTE, rx->teachers[i].rank,
                            FEED_TAG_HELLO, rx->comm, &req[i]));
    feed_poll poll;
    feed_poll_begin(&poll, rx->timeout_s);
    for (int i = 0; i < n_t; i++) {
        for (;;) {
            int done = 0;
            CHECK_MPI(MPI_Test(&req[i], &done, MPI_STATUS_IGNORE));
            if (done) break;
            if (feed_poll_expired(&poll))
                FEED_FAIL("the teacher rank may have died or hung; see its messages above",
                          "teacher rank %d (teacher %d) did not introduce itself within %.0f s "
                          "of the transport setup", rx->teachers[i].rank, i + 1, rx->timeout_s);
            feed_poll_pause(&poll);
        }
        check_hello(rx, &hello[i], i + 1);
    }
    free(hello);
    free(req);
}

feed_feature_receiver *feed_feature_receiver_create(const feed_feature_receiver_config *cfg) {
    int my_rank, comm_size;
    CHECK_MPI(MPI_Comm_rank(cfg->comm, &my_rank));
    CHECK_MPI(MPI_Comm_size(cfg->comm, &comm_size));
    validate_config(cfg, my_rank, comm_size);

    feed_feature_receiver *rx = feed_xcalloc(1, sizeof *rx, "feature receiver");
    rx->comm = feed_transport_dup_comm(cfg->comm, cfg->timeout_s, "feature receiver");
    rx->num_teachers = cfg->num_teachers;
    rx->credits = cfg->credits;
    rx->dtype = cfg->dtype;
    rx->first_step = cfg->first_step;
    rx->timeout_s = cfg->timeout_s;
    rx->released = cfg->first_step - 1;
    rx->teachers = feed_xcalloc((size_t)rx->num_teachers, sizeof *rx->teachers, "teacher links");

    int K = rx->credits;
    for (int i = 0; i < rx->num_teachers; i++) {
        teacher_link *t = &rx->teachers[i];
        t->rank = cfg->teacher_ranks[i];
        t->elems = cfg->elems_per_step[i];
        t->wire = feed_xcalloc((size_t)K, sizeof *t->wire, "receiver wire buffers");
        t->decoded = feed_xcalloc((size_t)K, sizeof *t->decoded, "receiver fp32 buffers");
        t->recv_req = feed_xcalloc((size_t)K, sizeof *t->recv_req, "receiver requests");
        t->state = feed_xcalloc((size_t)K, sizeof *t->state, "receiver state");
        t->slot_step = feed_xcalloc((size_t)K, sizeof *t->slot_step, "receiver state");
        int bytes = feed_transport_wire_bytes(t->elems, rx->dtype);
        for (int s = 0; s < K; s++) {
            t->wire[s] = feed_transport_wire_alloc(t->elems, rx->dtype, "student feature-map wire buffer");
            if (rx->dtype != FEED_WIRE_FP32)
                t->decoded[s] = feed_xaligned(t->elems * sizeof(float), "student feature-map buffer");
            CHECK_MPI(MPI_Recv_init(t->wire[s], bytes, MPI_BYTE, t->rank, FEED_TAG_DATA, rx->comm,
                                    &t->recv_req[s]));
        }
        for (int c = 0; c < CONTROL_RING; c++)
            CHECK_MPI(MPI_Send_init(&t->control_out[c], (int)sizeof t->control_out[c], MPI_BYTE,
                                    t->rank, FEED_TAG_CONTROL, rx->comm, &t->control_req[c]));
    }
    receive_hellos(rx);
    for (int i = 0; i < rx->num_teachers; i++) {
        teacher_link *t = &rx->teachers[i];
        CHECK_MPI(MPI_Irecv(&t->done_in, (int)sizeof t->done_in, MPI_BYTE, t->rank, FEED_TAG_DONE,
                            rx->comm, &t->done_req));
    }
    /* Post the first window in step order: messages from one teacher match our receives in
     * the order both were started (MPI's non-overtaking rule), and the header confirms it. */
    for (int s = 0; s < K; s++)
        for (int i = 0; i < rx->num_teachers; i++) {
            teacher_link *t = &rx->teachers[i];
            t->slot_step[s] = rx->first_step + s;
            t->state[s] = SLOT_POSTED;
            CHECK_MPI(MPI_Start(&t->recv_req[s]));
        }
    return rx;
}

/* A receive completed (rc is MPI_Test's return code): check size and header. */
static void on_arrival(feed_feature_receiver *rx, int n, int s, int rc, const MPI_Status *st) {
    teacher_link *t = &rx->teachers[n - 1];
    int64_t step = t->slot_step[s];
    const char *hint = "teacher and student must use the same configuration (feature-map shapes, "
                       "transfer, teacher list)";
    int err_class = MPI_SUCCESS;
    if (rc != MPI_SUCCESS) MPI_Error_class(rc, &err_class);
    if (err_class == MPI_ERR_TRUNCATE)
        FEED_FAIL(hint, "teacher rank %d (teacher %d) sent a larger map than the %zu elements "
                  "expected for step %lld", t->rank, n, t->elems, (long long)step);
    CHECK_MPI(rc);
    int bytes = 0;
    CHECK_MPI(MPI_Get_count(st, MPI_BYTE, &bytes));
    const feed_wire_header *h = (const feed_wire_header *)t->wire[s];
    if (bytes != feed_transport_wire_bytes(t->elems, rx->dtype) || h->magic != FEED_TRANSPORT_MAGIC ||
        h->version != FEED_TRANSPORT_VERSION || h->teacher_index != n || h->dtype != rx->dtype ||
        h->elems != t->elems)
        FEED_FAIL(hint, "teacher rank %d (teacher %d): malformed map message for step %lld (%d "
                  "bytes, teacher index %d, %llu elements, dtype %d; expected %d bytes)", t->rank,
                  n, (long long)step, bytes, (int)h->teacher_index, (unsigned long long)h->elems,
                  (int)h->dtype, feed_transport_wire_bytes(t->elems, rx->dtype));
    if (h->step != step)
        FEED_FAIL("teachers and student must follow the same step schedule (epochs, steps per "
                  "epoch, resume step)",
                  "teacher rank %d (teacher %d) sent step %lld where the student expected step %lld",
                  t->rank, n, (long long)h->step, (long long)step);
    t->state[s] = SLOT_ARRIVED;
}

static int test_slot(feed_feature_receiver *rx, int n, int s) {
    teacher_link *t = &rx->teachers[n - 1];
    if (t->state[s] != SLOT_POSTED) return 1;
    int done = 0;
    MPI_Status st;
    int rc = MPI_Test(&t->recv_req[s], &done, &st);
    if (rc == MPI_SUCCESS && !done) return 0;
    on_arrival(rx, n, s, rc, &st);
    return 1;
}

/* Has teacher n sent DONE (its last step)? Checked while waiting, so a teacher whose schedule
 * ended before the student's is reported at once instead of after the timeout. */
static int test_done(feed_feature_receiver *rx, int n) {
    teacher_link *t = &rx->teachers[n - 1];
    if (!t->done_arrived) {
        CHECK_MPI(MPI_Test(&t->done_req, &t->done_arrived, MPI_STATUS_IGNORE));
        if (t->done_arrived) feed_control_expect(&t->done_in, FEED_MSG_DONE, t->rank, "feature receiver");
    }
    return t->done_arrived;
}

static void test_control_sends(teacher_link *t) {
    for (int c = 0; c < CONTROL_RING; c++) {
        if (!t->control_active[c]) continue;
        int done = 0;
        CHECK_MPI(MPI_Test(&t->control_req[c], &done, MPI_STATUS_IGNORE));
        if (done) t->control_active[c] = 0;
    }
}

void feed_feature_receiver_progress(feed_feature_receiver *rx) {
    for (int n = 1; n <= rx->num_teachers; n++) {
        for (int s = 0; s < rx->credits; s++) test_slot(rx, n, s);
        test_control_sends(&rx->teachers[n - 1]);
    }
}

const float *feed_feature_receiver_wait(feed_feature_receiver *rx, int n, int64_t step,
                                        uint64_t batch_id, double *waited_s) {
    if (n < 1 || n > rx->num_teachers)
        FEED_FAIL("teachers are numbered 1..N", "feature receiver: wait for teacher %d of %d", n,
                  rx->num_teachers);
    if (rx->finished || step <= rx->released || step > rx->released + rx->credits)
        FEED_FAIL("the student waits for steps after the last released one, at most `credits` ahead",
                  "feature receiver: wait(teacher %d, step %lld) outside the window of steps "
                  "%lld..%lld%s", n, (long long)step, (long long)rx->released + 1,
                  (long long)(rx->released + rx->credits), rx->finished ? " (after finish)" : "");
    teacher_link *t = &rx->teachers[n - 1];
    int s = slot_of(rx, step);
    double waited = 0;
    if (!test_slot(rx, n, s)) {
        feed_poll poll;
        feed_poll_begin(&poll, rx->timeout_s);
        while (!test_slot(rx, n, s)) {
            if (test_done(rx, n) && t->done_in.last_sent < step)
                FEED_FAIL("teachers and student must follow the same step schedule (epochs, steps "
                          "per epoch, data set size)",
                          "teacher rank %d (teacher %d) ended its stream after step %lld while the "
                          "student waits for step %lld", t->rank, n,
                          (long long)t->done_in.last_sent, (long long)step);
            if (feed_poll_expired(&poll))
                FEED_FAIL("the teacher rank may have died or hung; see its messages above",
                          "teacher rank %d sent nothing for %.0f s while the student waited for "
                          "step %lld (teacher %d)", t->rank, rx->timeout_s, (long long)step, n);
            feed_poll_pause(&poll);
        }
        waited = feed_poll_elapsed(&poll);
    }
    const feed_wire_header *h = (const feed_wire_header *)t->wire[s];
    if (h->batch_id != batch_id)
        FEED_FAIL("teachers must read the same data set with the same seed, order and "
                  "augmentation as the student",
                  "teacher rank %d (teacher %d) computed another minibatch for step %lld: batch "
                  "id %016llx, the student's is %016llx", t->rank, n, (long long)step,
                  (unsigned long long)h->batch_id, (unsigned long long)batch_id);
    const unsigned char *payload = t->wire[s] + FEED_WIRE_HEADER_BYTES;
    if (t->state[s] == SLOT_ARRIVED) {
        if (rx->dtype != FEED_WIRE_FP32) feed_wire_decode(rx->dtype, payload, t->decoded[s], t->elems);
        t->state[s] = SLOT_DELIVERED;
        t->stats.steps_received++;
        t->stats.wait_s += waited;
        if (waited > t->stats.max_wait_s) t->stats.max_wait_s = waited;
    }
    if (waited_s) *waited_s = waited;
    return rx->dtype == FEED_WIRE_FP32 ? (const float *)payload : t->decoded[s];
}

/* Start one control message to teacher t (waiting for a free slot of the ring). */
static void send_control(feed_feature_receiver *rx, teacher_link *t, feed_msg_kind kind,
                         int64_t stop_after) {
    int c = t->control_next;
    t->control_next = (c + 1) % CONTROL_RING;
    if (t->control_active[c]) {
        feed_poll poll;
        feed_poll_begin(&poll, rx->timeout_s);
        for (;;) {
            test_control_sends(t);
            if (!t->control_active[c]) break;
            if (feed_poll_expired(&poll))
                FEED_FAIL("the teacher rank may have died or hung; see its messages above",
                          "teacher rank %d took no control message for %.0f s (student at step %lld)",
                          t->rank, rx->timeout_s, (long long)rx->released);
            feed_poll_pause(&poll);
        }
    }
    feed_control_msg *m = &t->control_out[c];
    *m = feed_control_make(kind);
    m->granted_up_to = rx->released + rx->credits;
    m->stop_after = stop_after;
    CHECK_MPI(MPI_Start(&t->control_req[c]));
    t->control_active[c] = 1;
}

void feed_feature_receiver_release(feed_feature_receiver *rx, int64_t step) {
    if (rx->finished || step != rx->released + 1)
        FEED_FAIL("release each step once, in order, after waiting for it",
                  "feature receiver: release(step %lld), expected step %lld%s", (long long)step,
                  (long long)rx->released + 1, rx->finished ? " (after finish)" : "");
    int s = slot_of(rx, step);
    for (int n = 1; n <= rx->num_teachers; n++) {
        teacher_link *t = &rx->teachers[n - 1];
        if (t->state[s] != SLOT_DELIVERED)
            FEED_FAIL("wait for every teacher's map of a step before releasing it",
                      "feature receiver: release(step %lld) before wait(teacher %d, step %lld)",
                      (long long)step, n, (long long)step);
    }
    /* Re-post first, then grant: the teacher's message for step+K then finds its receive. */
    for (int n = 1; n <= rx->num_teachers; n++) {
        teacher_link *t = &rx->teachers[n - 1];
        t->slot_step[s] = step + rx->credits;
        t->state[s] = SLOT_POSTED;
        CHECK_MPI(MPI_Start(&t->recv_req[s]));
    }
    rx->released = step;
    for (int n = 1; n <= rx->num_teachers; n++)
        send_control(rx, &rx->teachers[n - 1], FEED_MSG_CREDIT, FEED_NO_STOP);
}

/* After FINISH: wait for teacher n's DONE (sent once it posts nothing more), then settle its
 * posted receives: take the maps it sent, cancel the receives for steps it never sent. */
static void settle_teacher(feed_feature_receiver *rx, int n) {
    teacher_link *t = &rx->teachers[n - 1];
    feed_poll poll;
    feed_poll_begin(&poll, rx->timeout_s);
    for (;;) {
        if (test_done(rx, n)) break;
        /* Keep our receives moving: the teacher's finish waits for its sends to complete. */
        feed_feature_receiver_progress(rx);
        if (feed_poll_expired(&poll))
            FEED_FAIL("the teacher rank may have died or hung; see its messages above",
                      "teacher rank %d (teacher %d) did not confirm the end of the stream within "
                      "%.0f s (student stopped after step %lld)", t->rank, n, rx->timeout_s,
                      (long long)rx->released);
        feed_poll_pause(&poll);
    }
    int64_t last = t->done_in.last_sent;
    if (last > rx->released + rx->credits || last < rx->first_step - 1)
        FEED_FAIL("this is a protocol bug; please report it with the messages above",
                  "teacher rank %d (teacher %d) reports step %lld as its last, outside the credit "
                  "window ending at step %lld", t->rank, n, (long long)last,
                  (long long)(rx->released + rx->credits));
    for (int s = 0; s < rx->credits; s++) {
        if (t->state[s] != SLOT_POSTED) continue;
        if (t->slot_step[s] <= last) {
            /* Sent before the teacher saw FINISH: it is complete on the teacher's side, so
             * it has arrived or is arriving; take it and drop it. */
            feed_poll_begin(&poll, rx->timeout_s);
            while (!test_slot(rx, n, s)) {
                if (feed_poll_expired(&poll))
                    FEED_FAIL("this is a protocol bug; please report it with the messages above",
                              "teacher rank %d: step %lld reported sent but not received",
                              t->rank, (long long)t->slot_step[s]);
                feed_poll_pause(&poll);
            }
        } else {
            CHECK_MPI(MPI_Cancel(&t->recv_req[s]));
            MPI_Status st;
            CHECK_MPI(MPI_Wait(&t->recv_req[s], &st));
            int cancelled = 0;
            CHECK_MPI(MPI_Test_cancelled(&st, &cancelled));
            if (!cancelled)
                FEED_FAIL("this is a protocol bug; please report it with the messages above",
                          "teacher rank %d sent step %lld after reporting step %lld as its last",
                          t->rank, (long long)t->slot_step[s], (long long)last);
        }
        t->state[s] = SLOT_IDLE;
    }
    for (int s = 0; s < rx->credits; s++) t->state[s] = SLOT_IDLE;
}

void feed_feature_receiver_finish(feed_feature_receiver *rx) {
    if (rx->finished) return;
    int n_t = rx->num_teachers;
    for (int n = 1; n <= n_t; n++) send_control(rx, &rx->teachers[n - 1], FEED_MSG_FINISH, rx->released);
    for (int n = 1; n <= n_t; n++) settle_teacher(rx, n);
    /* Our credits and FINISH complete once the teacher has taken them; its finish() takes
     * control messages until FINISH, so this ends unless the teacher died. */
    for (int n = 1; n <= n_t; n++) {
        teacher_link *t = &rx->teachers[n - 1];
        feed_poll poll;
        feed_poll_begin(&poll, rx->timeout_s);
        for (;;) {
            test_control_sends(t);
            int busy = 0;
            for (int c = 0; c < CONTROL_RING; c++) busy |= t->control_active[c];
            if (!busy) break;
            if (feed_poll_expired(&poll))
                FEED_FAIL("the teacher rank may have died or hung; see its messages above",
                          "teacher rank %d (teacher %d) did not take the end-of-stream message "
                          "within %.0f s", t->rank, n, rx->timeout_s);
            feed_poll_pause(&poll);
        }
    }
    rx->finished = 1;
}

void feed_feature_receiver_get_stats(const feed_feature_receiver *rx, int n,
                                     feed_feature_receiver_stats *out) {
    if (n < 1 || n > rx->num_teachers)
        FEED_FAIL("teachers are numbered 1..N", "feature receiver: stats of teacher %d of %d", n,
                  rx->num_teachers);
    *out = rx->teachers[n - 1].stats;
}

void feed_feature_receiver_destroy(feed_feature_receiver *rx) {
    if (!rx) return;
    if (!rx->finished)
        FEED_FAIL("call feed_feature_receiver_finish before destroy",
                  "feature receiver destroyed with the stream still open");
    for (int i = 0; i < rx->num_teachers; i++) {
        teacher_link *t = &rx->teachers[i];
        for (int s = 0; s < rx->credits; s++) {
            CHECK_MPI(MPI_Request_free(&t->recv_req[s]));
            free(t->wire[s]);
            free(t->decoded[s]);
        }
        for (int c = 0; c < CONTROL_RING; c++) CHECK_MPI(MPI_Request_free(&t->control_req[c]));
        free(t->wire);
        free(t->decoded);
        free(t->recv_req);
        free(t->state);
        free(t->slot_step);
    }
    free(rx->teachers);
    CHECK_MPI(MPI_Comm_free(&rx->comm));
    free(rx);
}
