/* transport_internal.h - messages, tags and helpers shared by the feature sender (teacher)
 * and receiver (student). The protocol is described in docs/transport.md. */
#ifndef FEED_TRANSPORT_INTERNAL_H
#define FEED_TRANSPORT_INTERNAL_H

#include <stdint.h>

#include "feed/feature_transport.h"

/* Tags on the transport's own duplicate communicator. */
enum {
    FEED_TAG_HELLO = 7101,   /* teacher -> student, once at setup: the teacher's configuration */
    FEED_TAG_DATA = 7102,    /* teacher -> student, every step: header + map in wire format */
    FEED_TAG_CONTROL = 7103, /* student -> teacher: credits, and the final FINISH */
    FEED_TAG_DONE = 7104,    /* teacher -> student, once at the end: the last step it sent */
};

#define FEED_TRANSPORT_MAGIC 0xFEEDF00Du
#define FEED_TRANSPORT_VERSION 1
/* No stop announced yet. */
#define FEED_NO_STOP INT64_MAX

/* Every data message starts with this header; 64 bytes, so the map that follows is 64-byte
 * aligned inside the 64-byte aligned wire buffer (the fp32 wire is used in place). */
typedef struct {
    uint32_t magic;
    uint16_t version;
    uint16_t dtype;
    int32_t teacher_index;
    int32_t reserved;
    int64_t step;
    uint64_t batch_id;
    uint64_t elems;
    unsigned char pad[24];
} feed_wire_header;
#define FEED_WIRE_HEADER_BYTES 64

typedef enum {
    FEED_MSG_HELLO = 1,
    FEED_MSG_CREDIT = 2, /* the teacher may send steps <= granted_up_to */
    FEED_MSG_FINISH = 3, /* like CREDIT, and the last control message: stop after stop_after */
    FEED_MSG_DONE = 4,   /* the teacher sent nothing after last_sent; all its sends completed */
} feed_msg_kind;

/* The small messages (HELLO, CREDIT, FINISH, DONE): one fixed 64-byte layout. */
typedef struct {
    uint32_t magic;
    uint16_t version;
    uint16_t kind;
    int32_t teacher_index;
    int32_t credits;
    int32_t dtype;
    int32_t reserved;
    uint64_t elems;
    int64_t first_step;
    int64_t granted_up_to;
    int64_t stop_after;
    int64_t last_sent;
} feed_control_msg;

_Static_assert(sizeof(feed_wire_header) == FEED_WIRE_HEADER_BYTES, "wire header is 64 bytes");
_Static_assert(sizeof(feed_control_msg) == 64, "control message is 64 bytes");

/* ---- control.c ---- */
feed_control_msg feed_control_make(feed_msg_kind kind);
/* Fatal error unless m is a transport message of `kind` from comm rank `peer`. */
void feed_control_expect(const feed_control_msg *m, feed_msg_kind kind, int peer, const char *role);
const char *feed_msg_kind_name(int kind);

/* ---- poll.c: waiting loops that poll MPI_Test with a timeout ---- */
double feed_transport_now(void);
typedef struct {
    double start;
    double timeout_s; /* <= 0: never expires */
    unsigned spins;
} feed_poll;
void feed_poll_begin(feed_poll *p, double timeout_s);
/* Call after an unsuccessful test: spins briefly, then sleeps a little so an oversubscribed
 * node (more ranks than cores) keeps its CPU for the rank we are waiting for. */
void feed_poll_pause(feed_poll *p);
int feed_poll_expired(const feed_poll *p);
double feed_poll_elapsed(const feed_poll *p);

/* ---- transport_setup.c ---- */
/* Collective: duplicate comm (with a timeout naming the situation) and make MPI errors on
 * the duplicate return codes, so the transport reports them with its own messages. */
MPI_Comm feed_transport_dup_comm(MPI_Comm comm, double timeout_s, const char *role);
/* Largest map the transport carries in one message (MPI counts are int). */
size_t feed_transport_max_elems(feed_wire_dtype dtype);
/* Allocate one 64-byte aligned wire buffer: header + elems in the wire dtype. */
unsigned char *feed_transport_wire_alloc(size_t elems, feed_wire_dtype dtype, const char *what);
int feed_transport_wire_bytes(size_t elems, feed_wire_dtype dtype);

#endif
