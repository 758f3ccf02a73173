/* feature_sender.c - teacher side of the feature transport (see feature_transport.h).
 *
 * K+1 wire buffers rotate: up to K steps sent and not yet released by the student, plus the
 * one the teacher is computing into. Each buffer has a persistent send request and one
 * persistent receive takes in the student's control messages (credits, FINISH), so the
 * per-step path only calls MPI_Start / MPI_Test. */
#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
#include "transport_internal.h"

struct feed_feature_sender {
    MPI_Comm comm;  /* the transport's duplicate */
    int student_rank, my_rank, teacher_index, credits, num_slots;
    size_t elems;
    feed_wire_dtype dtype;
    int64_t first_step;
    double timeout_s;

    unsigned char **wire;   /* [num_slots] header + map in wire format */
    MPI_Request *send_req;  /* [num_slots] persistent sends */
    int *send_active;       /* [num_slots] started and not yet seen complete */
    int64_t *slot_step;     /* [num_slots] step last sent from the slot */
    float *staging;         /* fp32 map for bf16/fp16 (encoded at post); NULL for fp32 */

    feed_control_msg control_in;
    MPI_Request control_req; /* persistent receive of the student's control messages */
    int control_active;

    int64_t next_step;       /* the step acquire() expects */
    int acquired;            /* acquire(next_step) handed out a buffer, post() pending */
    int wire_filled;         /* acquire_wire: the caller wrote the wire format itself */
    int64_t granted_up_to;   /* may send steps <= this */
    int64_t stop_after;      /* the student's last step (FEED_NO_STOP until FINISH) */
    int stream_finished;     /* FINISH received: no control message follows */
    int finish_called;
    int64_t last_sent;
    feed_control_msg done_out;
    MPI_Request done_req;
    feed_feature_sender_stats stats;
};

static int slot_of(const feed_feature_sender *tx, int64_t step) {
    return (int)((step - tx->first_step) % tx->num_slots);
}

static void validate_config(const feed_feature_sender_config *cfg, int my_rank, int comm_size) {
    const char *hint = "check the pfeed configuration (credits, transfer, feature-map shape)";
    if (cfg->student_rank < 0 || cfg->student_rank >= comm_size || cfg->student_rank == my_rank)
        FEED_FAIL(hint, "feature sender: student rank %d is not another rank of the %d-rank "
                  "communicator", cfg->student_rank, comm_size);
    if (cfg->teacher_index < 1) FEED_FAIL(hint, "feature sender: teacher index %d < 1", cfg->teacher_index);
    if (cfg->credits < 1) FEED_FAIL(hint, "feature sender: credits = %d, need >= 1", cfg->credits);
    if ((unsigned)cfg->dtype > FEED_WIRE_FP16) FEED_FAIL(hint, "feature sender: invalid wire dtype %d", (int)cfg->dtype);
    if (cfg->elems_per_step == 0 || cfg->elems_per_step > feed_transport_max_elems(cfg->dtype))
        FEED_FAIL("a map must fit one MPI message (< 2 GiB); reduce the batch size",
                  "feature sender: %zu elements per step", cfg->elems_per_step);
    if (cfg->first_step < 0) FEED_FAIL(hint, "feature sender: first step %lld < 0", (long long)cfg->first_step);
}

feed_feature_sender *feed_feature_sender_create(const feed_feature_sender_config *cfg) {
    int my_rank, comm_size;
    CHECK_MPI(MPI_Comm_rank(cfg->comm, &my_rank));
    CHECK_MPI(MPI_Comm_size(cfg->comm, &comm_size));
    validate_config(cfg, my_rank, comm_size);

    feed_feature_sender *tx = feed_xcalloc(1, sizeof *tx, "feature sender");
    tx->comm = feed_transport_dup_comm(cfg->comm, cfg->timeout_s, "feature sender");
    tx->student_rank = cfg->student_rank;
    tx->my_rank = my_rank;
    tx->teacher_index = cfg->teacher_index;
    tx->credits = cfg->credits;
    tx->num_slots = cfg->credits + 1;
    tx->elems = cfg->elems_per_step;
    tx->dtype = cfg->dtype;
    tx->first_step = cfg->first_step;
    tx->timeout_s = cfg->timeout_s;
    tx->next_step = cfg->first_step;
    tx->granted_up_to = cfg->first_step - 1 + cfg->credits; /* K steps before any release */
    tx->stop_after = FEED_NO_STOP;
    tx->last_sent = cfg->first_step - 1;

    int bytes = feed_transport_wire_bytes(tx->elems, tx->dtype);
    tx->wire = feed_xcalloc((size_t)tx->num_slots, sizeof *tx->wire, "sender wire buffers");
    tx->send_req = feed_xcalloc((size_t)tx->num_slots, sizeof *tx->send_req, "sender requests");
    tx->send_active = feed_xcalloc((size_t)tx->num_slots, sizeof *tx->send_active, "sender state");
    tx->slot_step = feed_xcalloc((size_t)tx->num_slots, sizeof *tx->slot_step, "sender state");
    for (int s = 0; s < tx->num_slots; s++) {
        tx->wire[s] = feed_transport_wire_alloc(tx->elems, tx->dtype, "teacher feature-map wire buffer");
        CHECK_MPI(MPI_Send_init(tx->wire[s], bytes, MPI_BYTE, tx->student_rank, FEED_TAG_DATA,
                                tx->comm, &tx->send_req[s]));
    }
    if (tx->dtype != FEED_WIRE_FP32) {
        tx->staging = feed_xaligned(tx->elems * sizeof(float), "teacher feature-map staging buffer");
        memset(tx->staging, 0, tx->elems * sizeof(float));
    }
    CHECK_MPI(MPI_Recv_init(&tx->control_in, (int)sizeof tx->control_in, MPI_BYTE,
                            tx->student_rank, FEED_TAG_CONTROL, tx->comm, &tx->control_req));
    CHECK_MPI(MPI_Start(&tx->control_req));
    tx->control_active = 1;

    /* Tell the student who we are and how we were configured; it compares (see receiver). */
    feed_control_msg hello = feed_control_make(FEED_MSG_HELLO);
    hello.teacher_index = tx->teacher_index;
    hello.credits = tx->credits;
    hello.dtype = (int32_t)tx->dtype;
    hello.elems = tx->elems;
    hello.first_step = tx->first_step;
    CHECK_MPI(MPI_Send(&hello, (int)sizeof hello, MPI_BYTE, tx->student_rank, FEED_TAG_HELLO, tx->comm));
    return tx;
}

static void take_control_message(feed_feature_sender *tx) {
    feed_control_msg m = tx->control_in;
    feed_control_expect(&m, FEED_MSG_CREDIT, tx->student_rank, "feature sender");
    if (m.granted_up_to < tx->granted_up_to)
        FEED_FAIL("this is a protocol bug; please report it with the messages above",
                  "teacher %d: the student (rank %d) lowered its credit from step %lld to %lld",
                  tx->teacher_index, tx->student_rank, (long long)tx->granted_up_to,
                  (long long)m.granted_up_to);
    tx->granted_up_to = m.granted_up_to;
    tx->stop_after = m.stop_after;
    if (m.kind == FEED_MSG_FINISH) {
        tx->stream_finished = 1; /* the last control message: do not re-post the receive */
    } else {
        CHECK_MPI(MPI_Start(&tx->control_req));
        tx->control_active = 1;
    }
}

void feed_feature_sender_progress(feed_feature_sender *tx) {
    for (int s = 0; s < tx->num_slots; s++) {
        if (!tx->send_active[s]) continue;
        int done = 0;
        CHECK_MPI(MPI_Test(&tx->send_req[s], &done, MPI_STATUS_IGNORE));
        if (done) tx->send_active[s] = 0;
    }
    /* Several credits may be queued: take them all. */
    while (tx->control_active) {
        int done = 0;
        CHECK_MPI(MPI_Test(&tx->control_req, &done, MPI_STATUS_IGNORE));
        if (!done) break;
        tx->control_active = 0;
        take_control_message(tx);
    }
}

int64_t feed_feature_sender_released(const feed_feature_sender *tx) {
    return tx->granted_up_to - tx->credits;
}

static int student_ended_before(const feed_feature_sender *tx, int64_t step) {
    return tx->stream_finished || step > tx->stop_after;
}

/* The wire slot of step t, once it is free (see acquire), or -1 when the student has ended
 * the stream before t. */
static int acquire_slot(feed_feature_sender *tx, int64_t step) {
    if (tx->finish_called || tx->acquired || step != tx->next_step)
        FEED_FAIL("the teacher loop must acquire, fill and post steps in order, before finish",
                  "teacher %d: acquire(step %lld) out of order: expected step %lld%s%s",
                  tx->teacher_index, (long long)step, (long long)tx->next_step,
                  tx->acquired ? " (the previous acquire was not posted)" : "",
                  tx->finish_called ? " (after finish)" : "");
    feed_feature_sender_progress(tx);
    if (student_ended_before(tx, step)) return -1;

    int s = slot_of(tx, step);
    if (tx->send_active[s]) {
        /* This buffer last carried step - (K+1), which the student has released (we sent
         * step-1 <= released+K), so its receive is matched: only progress is missing. */
        feed_poll poll;
        feed_poll_begin(&poll, tx->timeout_s);
        while (tx->send_active[s]) {
            feed_feature_sender_progress(tx);
            if (!tx->send_active[s]) break;
            if (feed_poll_expired(&poll))
                FEED_FAIL("the student rank may have died or hung; see its messages above",
                          "teacher %d (rank %d): the student (rank %d) has not taken step %lld "
                          "within %.0f s", tx->teacher_index, tx->my_rank, tx->student_rank,
                          (long long)tx->slot_step[s], tx->timeout_s);
            feed_poll_pause(&poll);
        }
        tx->stats.buffer_wait_s += feed_poll_elapsed(&poll);
    }
    tx->acquired = 1;
    return s;
}

float *feed_feature_sender_acquire(feed_feature_sender *tx, int64_t step) {
    int s = acquire_slot(tx, step);
    if (s < 0) return NULL;
    tx->wire_filled = 0;
    return tx->dtype == FEED_WIRE_FP32 ? (float *)(tx->wire[s] + FEED_WIRE_HEADER_BYTES) : tx->staging;
}

void *feed_feature_sender_acquire_wire(feed_feature_sender *tx, int64_t step) {
    int s = acquire_slot(tx, step);
    if (s < 0) return NULL;
    tx->wire_filled = 1;
    return tx->wire[s] + FEED_WIRE_HEADER_BYTES;
}

int feed_feature_sender_post(feed_feature_sender *tx, int64_t step, uint64_t batch_id) {
    if (!tx->acquired || step != tx->next_step)
        FEED_FAIL("call acquire(step) before post(step), one step at a time",
                  "teacher %d: post(step %lld) without acquire (expected step %lld)",
                  tx->teacher_index, (long long)step, (long long)tx->next_step);
    int s = slot_of(tx, step);
    feed_wire_header *h = (feed_wire_header *)tx->wire[s];
    memset(h, 0, sizeof *h);
    h->magic = FEED_TRANSPORT_MAGIC;
    h->version = FEED_TRANSPORT_VERSION;
    h->dtype = (uint16_t)tx->dtype;
    h->teacher_index = tx->teacher_index;
    h->step = step;
    h->batch_id = batch_id;
    h->elems = tx->elems;
    if (tx->dtype != FEED_WIRE_FP32 && !tx->wire_filled)
        feed_wire_encode(tx->dtype, tx->staging, tx->wire[s] + FEED_WIRE_HEADER_BYTES, tx->elems);

    /* Credit: the student has released step - K or later. */
    feed_feature_sender_progress(tx);
    if (step > tx->granted_up_to && !tx->stream_finished) {
        feed_poll poll;
        feed_poll_begin(&poll, tx->timeout_s);
        while (step > tx->granted_up_to && !tx->stream_finished) {
            if (feed_poll_expired(&poll))
                FEED_FAIL("the student rank may have died or hung; see its messages above",
                          "teacher %d (rank %d): the student (rank %d) returned no credit for "
                          "%.0f s while this teacher waited to send step %lld (the student "
                          "released step %lld)", tx->teacher_index, tx->my_rank,
                          tx->student_rank, tx->timeout_s, (long long)step,
                          (long long)feed_feature_sender_released(tx));
            feed_poll_pause(&poll);
            feed_feature_sender_progress(tx);
        }
        tx->stats.credit_wait_s += feed_poll_elapsed(&poll);
    }
    tx->acquired = 0;
    if (student_ended_before(tx, step)) return 0;

    int ahead = (int)(step - feed_feature_sender_released(tx));
    if (ahead > tx->stats.max_ahead) tx->stats.max_ahead = ahead;
    tx->slot_step[s] = step;
    CHECK_MPI(MPI_Start(&tx->send_req[s]));
    tx->send_active[s] = 1;
    tx->last_sent = step;
    tx->next_step = step + 1;
    tx->stats.steps_sent++;
    return 1;
}

void feed_feature_sender_finish(feed_feature_sender *tx) {
    if (tx->finish_called) return;
    tx->finish_called = 1;
    tx->acquired = 0;
    /* DONE goes out first: nothing follows it, and a student still waiting for a later step
     * learns at once that this teacher's schedule ended earlier than its own. */
    tx->done_out = feed_control_make(FEED_MSG_DONE);
    tx->done_out.teacher_index = tx->teacher_index;
    tx->done_out.last_sent = tx->last_sent;
    CHECK_MPI(MPI_Isend(&tx->done_out, (int)sizeof tx->done_out, MPI_BYTE, tx->student_rank,
                        FEED_TAG_DONE, tx->comm, &tx->done_req));
    /* Then wait until every send completed and the student's FINISH arrived: after FINISH no
     * control message follows, so none is left unmatched. */
    int done_sent = 0;
    feed_poll poll;
    feed_poll_begin(&poll, tx->timeout_s);
    for (;;) {
        feed_feature_sender_progress(tx);
        if (!done_sent) CHECK_MPI(MPI_Test(&tx->done_req, &done_sent, MPI_STATUS_IGNORE));
        int busy = !tx->stream_finished || !done_sent;
        for (int s = 0; s < tx->num_slots; s++) busy |= tx->send_active[s];
        if (!busy) break;
        if (feed_poll_expired(&poll))
            FEED_FAIL("the student rank may have died or hung; see its messages above",
                      "teacher %d (rank %d): the student (rank %d) did not end the stream "
                      "within %.0f s after this teacher's last step %lld%s", tx->teacher_index,
                      tx->my_rank, tx->student_rank, tx->timeout_s, (long long)tx->last_sent,
                      tx->stream_finished ? " (sends still incomplete)" : "");
        feed_poll_pause(&poll);
    }
}

void feed_feature_sender_get_stats(const feed_feature_sender *tx, feed_feature_sender_stats *out) {
    *out = tx->stats;
}

void feed_feature_sender_destroy(feed_feature_sender *tx) {
    if (!tx) return;
    if (!tx->finish_called)
        FEED_FAIL("call feed_feature_sender_finish before destroy",
                  "teacher %d: feature sender destroyed with the stream still open", tx->teacher_index);
    for (int s = 0; s < tx->num_slots; s++) {
        CHECK_MPI(MPI_Request_free(&tx->send_req[s]));
        free(tx->wire[s]);
    }
    CHECK_MPI(MPI_Request_free(&tx->control_req));
    CHECK_MPI(MPI_Comm_free(&tx->comm));
    free(tx->wire);
    free(tx->send_req);
    free(tx->send_active);
    free(tx->slot_step);
    free(tx->staging);
    free(tx);
}
