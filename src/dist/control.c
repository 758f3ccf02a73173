/* control.c - the small fixed-size messages of the transport (HELLO, CREDIT, FINISH, DONE):
 * construction and the checks that turn a foreign or mismatched message into a clear error. */
#include <string.h>

#include "feed/check.h"
#include "transport_internal.h"

feed_control_msg feed_control_make(feed_msg_kind kind) {
    feed_control_msg m;
    memset(&m, 0, sizeof m);
    m.magic = FEED_TRANSPORT_MAGIC;
    m.version = FEED_TRANSPORT_VERSION;
    m.kind = (uint16_t)kind;
    m.stop_after = FEED_NO_STOP;
    return m;
}

const char *feed_msg_kind_name(int kind) {
    switch (kind) {
    case FEED_MSG_HELLO: return "HELLO";
    case FEED_MSG_CREDIT: return "CREDIT";
    case FEED_MSG_FINISH: return "FINISH";
    case FEED_MSG_DONE: return "DONE";
    }
    return "unknown";
}

void feed_control_expect(const feed_control_msg *m, feed_msg_kind kind, int peer, const char *role) {
    if (m->magic != FEED_TRANSPORT_MAGIC)
        FEED_FAIL("every rank of the communicator must run the same feed_mpi build; another "
                  "program shares the transport's tags",
                  "%s: rank %d sent a message that is not a feature-transport message "
                  "(magic 0x%08x)", role, peer, (unsigned)m->magic);
    if (m->version != FEED_TRANSPORT_VERSION)
        FEED_FAIL("run the same feed_mpi build on every rank",
                  "%s: rank %d speaks transport protocol version %u, this rank version %d", role,
                  peer, (unsigned)m->version, FEED_TRANSPORT_VERSION);
    /* FINISH is a CREDIT that also ends the stream: accepted wherever a CREDIT is. */
    int ok = m->kind == kind || (kind == FEED_MSG_CREDIT && m->kind == FEED_MSG_FINISH);
    if (!ok)
        FEED_FAIL("this is a protocol bug; please report it with the messages above",
                  "%s: rank %d sent a %s message where a %s message was expected", role, peer,
                  feed_msg_kind_name(m->kind), feed_msg_kind_name(kind));
}
