/* transport_setup.c - what sender and receiver share at setup: the private communicator,
 * wire buffers, and the HELLO handshake that compares the teacher's configuration with the
 * student's before any step runs. */
#include <limits.h>
#include <string.h>

#include "feed/check.h"
#include "transport_internal.h"

MPI_Comm feed_transport_dup_comm(MPI_Comm comm, double timeout_s, const char *role) {
    /* MPI_Comm_idup + polling instead of MPI_Comm_dup: a rank that never reaches the setup
     * (it failed while loading its checkpoint, or hangs) turns into a message, not a hang. */
    MPI_Comm dup = MPI_COMM_NULL;
    MPI_Request req;
    CHECK_MPI(MPI_Comm_idup(comm, &dup, &req));
    feed_poll poll;
    feed_poll_begin(&poll, timeout_s);
    for (;;) {
        int done = 0;
        CHECK_MPI(MPI_Test(&req, &done, MPI_STATUS_IGNORE));
        if (done) break;
        if (feed_poll_expired(&poll))
            FEED_FAIL("every rank must create the feature transport (the student a receiver, each "
                      "teacher a sender); a rank that failed earlier printed its error above",
                      "%s: not every rank reached the feature-transport setup within %.0f s",
                      role, timeout_s);
        feed_poll_pause(&poll);
    }
    CHECK_MPI(MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN));
    return dup;
}

size_t feed_transport_max_elems(feed_wire_dtype dtype) {
    return ((size_t)INT_MAX - FEED_WIRE_HEADER_BYTES) / feed_wire_dtype_size(dtype);
}

int feed_transport_wire_bytes(size_t elems, feed_wire_dtype dtype) {
    return (int)(FEED_WIRE_HEADER_BYTES + elems * feed_wire_dtype_size(dtype));
}

unsigned char *feed_transport_wire_alloc(size_t elems, feed_wire_dtype dtype, const char *what) {
    size_t bytes = (size_t)feed_transport_wire_bytes(elems, dtype);
    unsigned char *buf = feed_xaligned(bytes, what);
    memset(buf, 0, bytes); /* defined bytes even if a map is shorter than announced */
    return buf;
}
