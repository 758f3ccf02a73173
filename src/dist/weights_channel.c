/* weights_channel.c - generation -> generation weight snapshots (weights_channel.h). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "feed/check.h"
#include "feed/signals.h"
#include "feed/train.h"
#include "feed/weights_channel.h"
#include "transport_internal.h"

enum { TAG_REQUEST = 7301, TAG_NOTE = 7302, TAG_WEIGHTS = 7303 };
enum { MSG_WANT = 1, MSG_FINISH, MSG_WEIGHTS, MSG_PROGRESS, MSG_DONE };
#define WEIGHTS_MAGIC 0x57464545u /* "FEEW" */
#define PROGRESS_EVERY_S 2.0

typedef struct {
    uint32_t magic, kind;
    int64_t version, keep_from, completed, bytes;
    char pad[24];
} channel_msg; /* every control message and the header of WEIGHTS */
_Static_assert(sizeof(channel_msg) == 64, "channel messages are 64 bytes");

static channel_msg msg(uint32_t kind) { return (channel_msg){.magic = WEIGHTS_MAGIC, .kind = kind}; }

MPI_Comm feed_weights_comm(MPI_Comm comm) { return feed_transport_dup_comm(comm, 0, "sfeed weights"); }

static int test(MPI_Request *r) {
    int done = 0;
    if (*r == MPI_REQUEST_NULL) return 1;
    CHECK_MPI(MPI_Test(r, &done, MPI_STATUS_IGNORE));
    return done;
}

static void sleep_ms(int ms) {
    struct timespec t = {0, (long)ms * 1000000L};
    nanosleep(&t, NULL);
}

/* ================================================================================ producer */

struct feed_weights_producer {
    feed_weights_producer_config cfg;
    char *dir, *prefix;
    feed_ckpt_meta meta;
    size_t bytes;
    unsigned char *latest;  /* header + snapshot of version latest_version */
    unsigned char *spare;   /* header + a passed version read from its file */
    int64_t latest_version; /* -1: none */
    MPI_Request send;       /* WEIGHTS in flight (from latest or spare) */
    unsigned char *sending;
    channel_msg request;    /* posted receive for WANT / FINISH */
    MPI_Request request_rq;
    int64_t want;           /* version asked for and not sent, -1: none */
    int finished;           /* FINISH received */
    int done_sent;          /* DONE sent: nothing more goes to the consumer */
    double last_progress;
};

static char *snapshot_path(const feed_weights_producer *p, int64_t version) {
    return feed_xstrdup(feed_fmt("%s/%s_w%04lld.h5", p->dir, p->prefix, (long long)version));
}

/* latest <- the network now, as version `version`; written to its file. */
static void take_snapshot(feed_weights_producer *p, int64_t version) {
    while (!test(&p->send)) { /* the buffer may be on its way: the consumer's receive is posted */
        feed_weights_producer_poll(p);
        sleep_ms(1);
    }
    channel_msg h = msg(MSG_WEIGHTS);
    h.version = version;
    h.bytes = (int64_t)p->bytes;
    memcpy(p->latest, &h, sizeof h);
    feed_net_snapshot_get(p->cfg.net, p->latest + sizeof h);
    p->latest_version = version;
    char *path = snapshot_path(p, version);
    feed_ckpt_meta meta = p->meta;
    meta.epoch = version;
    meta.step = version * p->cfg.steps_per_epoch;
    feed_ckpt_writer *w = feed_ckpt_begin(path, &meta);
    feed_ckpt_put_attr_i64(w, NULL, "sfeed_generation", p->cfg.generation);
    feed_ckpt_put_attr_i64(w, NULL, "sfeed_version", version);
    feed_net_save(w, p->cfg.net, "model");
    feed_ckpt_commit(w);
    free(path);
}

static void start_send(feed_weights_producer *p, int64_t version) {
    unsigned char *buf = p->latest;
    if (version != p->latest_version) { /* a passed version: from its file */
        char *path = snapshot_path(p, version);
        feed_ckpt_error err;
        feed_ckpt *ck = feed_ckpt_try_open(path, &err);
        if (!ck)
            FEED_FAIL("the snapshot files of a generation stay in run.dir until the next generation's checkpoints "
                      "no longer need them; was the folder cleaned, or a checkpoint of generation g+1 lost?",
                      "generation %d cannot serve its weights after epoch %lld to generation %d: %s",
                      p->cfg.generation, (long long)version, p->cfg.generation + 1, err.message);
        channel_msg h = msg(MSG_WEIGHTS);
        h.version = version;
        h.bytes = (int64_t)p->bytes;
        memcpy(p->spare, &h, sizeof h);
        feed_net_snapshot_read(ck, p->cfg.net, "model", p->spare + sizeof h);
        feed_ckpt_close(ck);
        free(path);
        buf = p->spare;
    }
    CHECK_MPI(MPI_Isend(buf, (int)(sizeof(channel_msg) + p->bytes), MPI_BYTE, p->cfg.consumer_rank, TAG_WEIGHTS,
                        p->cfg.comm, &p->send));
    p->sending = buf;
    p->want = -1;
}

/* Files of versions below keep_from are no longer needed by the consumer. */
static void delete_older(feed_weights_producer *p, int64_t keep_from) {
    for (int64_t v = p->cfg.first_version; v < keep_from && v <= p->cfg.last_version; v++) {
        if (v == p->latest_version) continue;
        char *path = snapshot_path(p, v);
        if (unlink(path) != 0 && errno != ENOENT)
            fprintf(stderr, "feed_mpi: warning: cannot delete %s: %s\n", path, feed_errno_str());
        free(path);
    }
}

void feed_weights_producer_poll(feed_weights_producer *p) {
    if (p->request_rq != MPI_REQUEST_NULL && test(&p->request_rq)) {
        channel_msg m = p->request;
        FEED_CHECK(m.magic == WEIGHTS_MAGIC && (m.kind == MSG_WANT || m.kind == MSG_FINISH), "this is a bug",
                   "generation %d got a malformed request from rank %d", p->cfg.generation, p->cfg.consumer_rank);
        if (m.kind == MSG_FINISH) {
            p->finished = 1;
            p->want = -1; /* never sent: the consumer cancels its receive */
        } else {
            FEED_CHECK(p->want < 0 && m.version >= p->cfg.first_version && m.version <= p->cfg.last_version,
                       "this is a bug", "generation %d asked for weights after epoch %lld (wanted %lld)",
                       p->cfg.generation + 1, (long long)m.version, (long long)p->want);
            p->want = m.version;
            delete_older(p, m.keep_from);
            CHECK_MPI(MPI_Irecv(&p->request, sizeof p->request, MPI_BYTE, p->cfg.consumer_rank, TAG_REQUEST,
                                p->cfg.comm, &p->request_rq));
        }
    }
    if (!test(&p->send)) return;
    if (p->finished) {
        if (!p->done_sent) { /* what was in flight has completed: DONE is the last message */
            channel_msg done = msg(MSG_DONE);
            CHECK_MPI(MPI_Send(&done, sizeof done, MPI_BYTE, p->cfg.consumer_rank, TAG_NOTE, p->cfg.comm));
            p->done_sent = 1;
        }
        return;
    }
    if (p->want >= 0 && p->want <= p->cfg.completed) {
        start_send(p, p->want);
    } else if (p->want >= 0 && feed_transport_now() - p->last_progress > PROGRESS_EVERY_S) {
        channel_msg note = msg(MSG_PROGRESS);
        note.completed = p->cfg.completed;
        CHECK_MPI(MPI_Send(&note, sizeof note, MPI_BYTE, p->cfg.consumer_rank, TAG_NOTE, p->cfg.comm));
        p->last_progress = feed_transport_now();
    }
}

feed_weights_producer *feed_weights_producer_create(const feed_weights_producer_config *cfg) {
    feed_weights_producer *p = feed_xcalloc(1, sizeof *p, "weights producer");
    p->cfg = *cfg;
    p->dir = feed_xstrdup(cfg->dir);
    p->prefix = feed_xstrdup(cfg->prefix);
    p->meta = *cfg->meta;
    p->bytes = feed_net_snapshot_bytes(cfg->net);
    FEED_CHECK(p->bytes + sizeof(channel_msg) <= INT_MAX, "a network of less than 2 GB",
               "weights of %zu bytes do not fit one MPI message", p->bytes);
    p->latest = feed_xaligned(sizeof(channel_msg) + p->bytes, "weights snapshot");
    p->spare = feed_xaligned(sizeof(channel_msg) + p->bytes, "weights snapshot");
    p->latest_version = -1;
    p->send = MPI_REQUEST_NULL;
    p->want = -1;
    p->last_progress = feed_transport_now();
    CHECK_MPI(MPI_Irecv(&p->request, sizeof p->request, MPI_BYTE, cfg->consumer_rank, TAG_REQUEST, cfg->comm,
                        &p->request_rq));
    if (cfg->completed >= cfg->first_version && cfg->completed <= cfg->last_version)
        take_snapshot(p, cfg->completed); /* the resume point may not have its file yet */
    return p;
}

void feed_weights_producer_epoch_end(feed_weights_producer *p, int64_t epoch) {
    p->cfg.completed = epoch;
    if (epoch >= p->cfg.first_version && epoch <= p->cfg.last_version) take_snapshot(p, epoch);
    feed_weights_producer_poll(p);
}

void feed_weights_producer_serve_until_finish(feed_weights_producer *p) {
    while (!p->done_sent) {
        feed_weights_producer_poll(p);
        sleep_ms(1);
    }
}

void feed_weights_producer_free(feed_weights_producer *p) {
    if (!p) return;
    if (p->request_rq != MPI_REQUEST_NULL) { /* the consumer sends nothing more */
        CHECK_MPI(MPI_Cancel(&p->request_rq));
        CHECK_MPI(MPI_Wait(&p->request_rq, MPI_STATUS_IGNORE));
    }
    free(p->latest), free(p->spare), free(p->dir), free(p->prefix), free(p);
}

/* ================================================================================ consumer */

struct feed_weights_consumer {
    feed_weights_consumer_config cfg;
    unsigned char *buf;     /* header + snapshot */
    MPI_Request weights_rq; /* receive of the version wanted */
    int64_t wanted;         /* -1: none outstanding */
    channel_msg note;       /* posted receive for PROGRESS / DONE */
    MPI_Request note_rq;
    int64_t producer_completed;
    int done;               /* DONE received */
    double last_heard;
};

feed_weights_consumer *feed_weights_consumer_create(const feed_weights_consumer_config *cfg) {
    feed_weights_consumer *c = feed_xcalloc(1, sizeof *c, "weights consumer");
    c->cfg = *cfg;
    FEED_CHECK(cfg->bytes + sizeof(channel_msg) <= INT_MAX, "a network of less than 2 GB",
               "weights of %zu bytes do not fit one MPI message", cfg->bytes);
    c->buf = feed_xaligned(sizeof(channel_msg) + cfg->bytes, "weights snapshot");
    c->weights_rq = MPI_REQUEST_NULL;
    c->wanted = -1;
    c->producer_completed = -1;
    c->last_heard = feed_transport_now();
    CHECK_MPI(MPI_Irecv(&c->note, sizeof c->note, MPI_BYTE, cfg->producer_rank, TAG_NOTE, cfg->comm, &c->note_rq));
    return c;
}

void feed_weights_consumer_poll(feed_weights_consumer *c) {
    while (c->note_rq != MPI_REQUEST_NULL && test(&c->note_rq)) {
        FEED_CHECK(c->note.magic == WEIGHTS_MAGIC && (c->note.kind == MSG_PROGRESS || c->note.kind == MSG_DONE),
                   "this is a bug", "malformed note from rank %d", c->cfg.producer_rank);
        c->last_heard = feed_transport_now();
        if (c->note.kind == MSG_DONE) {
            c->done = 1;
            break;
        }
        c->producer_completed = c->note.completed;
        CHECK_MPI(MPI_Irecv(&c->note, sizeof c->note, MPI_BYTE, c->cfg.producer_rank, TAG_NOTE, c->cfg.comm,
                            &c->note_rq));
    }
}

void feed_weights_consumer_want(feed_weights_consumer *c, int version, int keep_from) {
    FEED_CHECK(c->wanted < 0, "this is a bug", "wanted weights after epoch %d before getting %lld", version,
               (long long)c->wanted);
    CHECK_MPI(MPI_Irecv(c->buf, (int)(sizeof(channel_msg) + c->cfg.bytes), MPI_BYTE, c->cfg.producer_rank,
                        TAG_WEIGHTS, c->cfg.comm, &c->weights_rq));
    channel_msg m = msg(MSG_WANT);
    m.version = version;
    m.keep_from = keep_from;
    CHECK_MPI(MPI_Send(&m, sizeof m, MPI_BYTE, c->cfg.producer_rank, TAG_REQUEST, c->cfg.comm));
    c->wanted = version;
}

int feed_weights_consumer_wanted(const feed_weights_consumer *c) { return (int)c->wanted; }

bool feed_weights_consumer_get(feed_weights_consumer *c, const void **bytes, void (*idle)(void *), void *ctx) {
    FEED_CHECK(c->wanted >= 0, "this is a bug", "getting weights that were not wanted");
    c->last_heard = feed_transport_now();
    while (!test(&c->weights_rq)) {
        feed_weights_consumer_poll(c);
        if (feed_signals_pending()) return false;
        double silent = feed_transport_now() - c->last_heard;
        if (c->cfg.timeout_s > 0 && silent > c->cfg.timeout_s)
            FEED_FAIL("the rank may have died or hung; its own messages (above) or the launcher's say more. "
                      "A longer transport.timeout helps when one epoch's evaluation takes longer",
                      "rank %d (generation %d) sent nothing for %.0f s while generation %d waited for its "
                      "weights after epoch %lld (it had completed %lld epochs)",
                      c->cfg.producer_rank, c->cfg.producer_generation, silent, c->cfg.producer_generation + 1,
                      (long long)c->wanted, (long long)c->producer_completed);
        if (idle) idle(ctx);
        sleep_ms(1);
    }
    channel_msg h;
    memcpy(&h, c->buf, sizeof h);
    FEED_CHECK(h.version == c->wanted && h.bytes == (int64_t)c->cfg.bytes, "this is a bug",
               "rank %d sent weights after epoch %lld (%lld bytes) for a request of epoch %lld (%zu bytes)",
               c->cfg.producer_rank, (long long)h.version, (long long)h.bytes, (long long)c->wanted, c->cfg.bytes);
    c->wanted = -1;
    c->last_heard = feed_transport_now();
    *bytes = c->buf + sizeof h;
    return true;
}

void feed_weights_consumer_finish(feed_weights_consumer *c, void (*idle)(void *), void *ctx) {
    channel_msg m = msg(MSG_FINISH);
    CHECK_MPI(MPI_Send(&m, sizeof m, MPI_BYTE, c->cfg.producer_rank, TAG_REQUEST, c->cfg.comm));
    while (!c->done) { /* the producer completes what it has in flight, then says DONE */
        feed_weights_consumer_poll(c);
        if (idle) idle(ctx);
        sleep_ms(1);
    }
    if (c->weights_rq != MPI_REQUEST_NULL) { /* asked for and never sent: cancel */
        int cancelled = 0;
        MPI_Status st;
        CHECK_MPI(MPI_Cancel(&c->weights_rq));
        CHECK_MPI(MPI_Wait(&c->weights_rq, &st));
        CHECK_MPI(MPI_Test_cancelled(&st, &cancelled));
    }
    c->wanted = -1;
}

void feed_weights_consumer_free(feed_weights_consumer *c) {
    if (!c) return;
    free(c->buf), free(c);
}
