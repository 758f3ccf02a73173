/* feature_transport.h - teacher -> student feature-map transport over MPI (the mpi teacher
 * source of a distill job, src/distill/source_mpi.c).
 *
 * Rank 0 trains the student, rank n (1..N) hosts frozen teacher n. For every step t each
 * teacher sends its payload (teacher_outputs.h: its final feature map B x C_n x H x W, and
 * whatever else the job's terms need, as one flat float32 array; "map" below) to the
 * student; the student needs all N maps of step t before its loss. Every rank computes the
 * same minibatch itself: only teacher outputs and small control messages travel.
 *
 *   teacher n:  acquire(t) -> forward, write map -> post(t)        (runs ahead of the student)
 *   student:    wait(n, t) for every n -> loss ... -> release(t)   (returns one credit)
 *
 * Flow control: a teacher sends step t only when t <= released + K, where `released` is the
 * last step the student released and K the credits; it may compute one more step into a
 * spare buffer meanwhile. So teacher n holds K+1 send buffers, the student K receive
 * buffers per teacher, and no buffer grows with the run. All buffers and MPI requests
 * (persistent) are created at setup; the per-step path allocates nothing.
 *
 * Progress: Open MPI 4.1 has no asynchronous progress thread. A large map (rendezvous
 * protocol) only moves while either side is inside an MPI call, so call
 * feed_feature_sender_progress() / feed_feature_receiver_progress() at layer boundaries of
 * the forward/backward passes (each is a few MPI_Test calls, well under a microsecond when
 * nothing is pending). Without them the transfer of step t+1 happens only when the student
 * starts waiting for it.
 *
 * Failures: every wait polls with a timeout; a peer that sends nothing for `timeout_s`
 * seconds ends the job (FEED_FAIL -> MPI_Abort, non-zero exit) with a message naming its
 * rank and the step. Wrong use (steps out of order, mismatched configuration between
 * teacher and student, another minibatch on the teacher) is a fatal error too, never
 * silent. The protocol is described in docs/transport.md.
 *
 * Setup and teardown are collective over `comm`: every rank of it calls exactly one of
 * feed_feature_sender_create / feed_feature_receiver_create, and later the matching
 * finish and destroy. The transport works on its own duplicate of `comm`, so its tags
 * never meet the caller's messages.
 */
#ifndef FEED_FEATURE_TRANSPORT_H
#define FEED_FEATURE_TRANSPORT_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------------------------
 * Wire format (`transfer = fp32 | bf16 | fp16`)
 * fp32 is sent bit for bit. bf16 and fp16 round to nearest, ties to even; +-Inf stay Inf;
 * a NaN stays a NaN with its sign (made quiet, top payload bits kept); fp16 keeps
 * subnormals and overflows to +-Inf for |x| >= 65520; bf16 keeps the fp32 range
 * (|x| >= 0x1.fffffp127 rounds to Inf). Decoding (bf16/fp16 -> fp32) is exact.
 * ---------------------------------------------------------------------------------------- */
typedef enum { FEED_WIRE_FP32 = 0, FEED_WIRE_BF16 = 1, FEED_WIRE_FP16 = 2 } feed_wire_dtype;

/* "fp32" | "bf16" | "fp16"; returns 0 on success, -1 for another name. */
int feed_wire_dtype_parse(const char *name, feed_wire_dtype *out);
const char *feed_wire_dtype_name(feed_wire_dtype dtype);
size_t feed_wire_dtype_size(feed_wire_dtype dtype); /* bytes per element: 4 or 2 */

uint16_t feed_fp32_to_bf16(float x);
float feed_bf16_to_fp32(uint16_t h);
uint16_t feed_fp32_to_fp16(float x);
float feed_fp16_to_fp32(uint16_t h);
/* n elements; `wire` holds n * feed_wire_dtype_size(dtype) bytes. fp32 is a copy. */
void feed_wire_encode(feed_wire_dtype dtype, const float *src, void *wire, size_t n);
void feed_wire_decode(feed_wire_dtype dtype, const void *wire, float *dst, size_t n);

/* ------------------------------------------------------------------------------------------
 * Teacher side
 * ---------------------------------------------------------------------------------------- */
typedef struct feed_feature_sender feed_feature_sender;

typedef struct {
    MPI_Comm comm;          /* the communicator shared with the student (duplicated inside) */
    int student_rank;       /* rank of the student in comm */
    int teacher_index;      /* 1..N; the student checks it against the rank's place */
    size_t elems_per_step;  /* B*C*H*W of this teacher's map */
    feed_wire_dtype dtype;  /* wire format; must equal the student's */
    int credits;            /* K >= 1: steps the teacher may send ahead of the releases */
    int64_t first_step;     /* first step of the stream (> 0 when resuming) */
    double timeout_s;       /* fail after this long without credit; <= 0: wait forever */
} feed_feature_sender_config;

typedef struct {
    int64_t steps_sent;
    double credit_wait_s;   /* time blocked in post() waiting for a credit (student-bound) */
    double buffer_wait_s;   /* time blocked in acquire() waiting for an old send to finish */
    int max_ahead;          /* largest (posted step - released step) seen; <= credits */
} feed_feature_sender_stats;

/* Collective over cfg->comm (see the top of this file). */
feed_feature_sender *feed_feature_sender_create(const feed_feature_sender_config *cfg);

/* The fp32 buffer (elems_per_step floats, 64-byte aligned, plain NCHW) to write step t's map
 * into. Steps go in order: t is first_step, then the previously posted step + 1. Waits
 * (polling) until the send that last used this buffer has completed. Returns NULL when the
 * student has ended the stream before step t: leave the loop and call finish. */
float *feed_feature_sender_acquire(feed_feature_sender *tx, int64_t step);

/* The same, but the buffer is step t's wire payload itself: elems_per_step elements of the
 * wire format (2 bytes each for bf16/fp16), written by the caller already encoded (e.g. a bf16
 * network's map, which needs no rounding); post sends it as it is. */
void *feed_feature_sender_acquire_wire(feed_feature_sender *tx, int64_t step);

/* Send step t's map (non-blocking MPI send of the wire buffer). Waits for a credit first
 * if t > released + K. batch_id is any 64-bit value both sides derive from the minibatch
 * (e.g. a hash of its sample indices); the student checks it, so a teacher on another data
 * order fails loudly. Returns 1 when posted, 0 when the student ended the stream before
 * step t (the step is not sent: leave the loop and call finish). */
int feed_feature_sender_post(feed_feature_sender *tx, int64_t step, uint64_t batch_id);

/* Drive MPI progress and take in credits; cheap, call it at layer boundaries. */
void feed_feature_sender_progress(feed_feature_sender *tx);

/* End of the stream (the schedule ended, or acquire/post returned the student's stop):
 * completes every send, consumes the student's final control message and reports the
 * last step sent. After it nothing of the transport is in flight. */
void feed_feature_sender_finish(feed_feature_sender *tx);

void feed_feature_sender_get_stats(const feed_feature_sender *tx, feed_feature_sender_stats *out);

/* The last step the student released, as far as this teacher knows (first_step-1 at start). */
int64_t feed_feature_sender_released(const feed_feature_sender *tx);

/* Collective over the comm given at create (frees the transport's duplicate); after finish. */
void feed_feature_sender_destroy(feed_feature_sender *tx);

/* ------------------------------------------------------------------------------------------
 * Student side
 * ---------------------------------------------------------------------------------------- */
typedef struct feed_feature_receiver feed_feature_receiver;

typedef struct {
    MPI_Comm comm;                 /* duplicated inside */
    int num_teachers;              /* N >= 1 */
    const int *teacher_ranks;      /* [N] rank in comm of teacher n = index+1 */
    const size_t *elems_per_step;  /* [N] B*C_n*H*W per teacher (C_n may differ) */
    feed_wire_dtype dtype;
    int credits;                   /* K >= 1, the same on every teacher */
    int64_t first_step;
    double timeout_s;              /* a teacher silent this long ends the job; <= 0: never */
} feed_feature_receiver_config;

typedef struct {
    int64_t steps_received;
    double wait_s;       /* total time the student was blocked waiting for this teacher */
    double max_wait_s;   /* longest single wait */
} feed_feature_receiver_stats;

/* Collective over cfg->comm; pre-posts the receives for steps first_step .. first_step+K-1. */
feed_feature_receiver *feed_feature_receiver_create(const feed_feature_receiver_config *cfg);

/* Teacher n's map of step t as plain NCHW fp32 (elems_per_step[n-1] floats), converted from
 * the wire format, valid until release(t). n is 1..N. t must lie in the window of posted
 * but unreleased steps (released+1 .. released+K). *waited_s (may be NULL) gets the time
 * this call blocked: > 0 means the student waited for this teacher (teacher-bound). */
const float *feed_feature_receiver_wait(feed_feature_receiver *rx, int teacher, int64_t step,
                                        uint64_t batch_id, double *waited_s);

/* The student is done with the maps of step t (the next unreleased step; every teacher's map
 * of t must have been waited for): re-posts those receive buffers for step t+K and returns
 * one credit to every teacher. */
void feed_feature_receiver_release(feed_feature_receiver *rx, int64_t step);

void feed_feature_receiver_progress(feed_feature_receiver *rx);

/* End the stream after the last released step (end of training, or a stop signal): tells
 * every teacher to stop, receives and discards what they had already sent, cancels the
 * other receives. After it nothing of the transport is in flight. Call it before writing the
 * final checkpoint, so teachers are not left waiting. */
void feed_feature_receiver_finish(feed_feature_receiver *rx);

/* Statistics of teacher n (1..N). */
void feed_feature_receiver_get_stats(const feed_feature_receiver *rx, int teacher,
                                     feed_feature_receiver_stats *out);

void feed_feature_receiver_destroy(feed_feature_receiver *rx);

#endif
