/* poll.c - the clock and back-off of the transport's waiting loops.
 *
 * The transport never blocks inside MPI_Wait: it polls MPI_Test so it can give up after a
 * timeout with a message naming the silent peer (MPI_Wait on a request whose peer hung
 * would wait forever). */
#define _POSIX_C_SOURCE 200809L
#include <time.h>

#include "transport_internal.h"

double feed_transport_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void feed_poll_begin(feed_poll *p, double timeout_s) {
    p->start = feed_transport_now();
    p->timeout_s = timeout_s;
    p->spins = 0;
}

void feed_poll_pause(feed_poll *p) {
    /* ~50 back-to-back tests cost a few microseconds and catch a message already on its way;
     * after that, sleep 20 us between tests: negligible against millisecond steps, and on a
     * node with more ranks than cores it leaves the CPU to the rank that is computing. */
    if (++p->spins < 50) return;
    struct timespec pause = {0, 20000};
    nanosleep(&pause, NULL);
}

int feed_poll_expired(const feed_poll *p) {
    return p->timeout_s > 0 && feed_transport_now() - p->start > p->timeout_s;
}

double feed_poll_elapsed(const feed_poll *p) { return feed_transport_now() - p->start; }
