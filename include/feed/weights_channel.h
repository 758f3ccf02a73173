/* weights_channel.h - one generation's weights to the next over MPI (run.mode = sfeed).
 *
 * The rank training generation g (the producer) hands the rank training generation g+1 (the
 * consumer) its weights after epoch j, "version j", for the versions the consumer's schedule
 * needs. The consumer asks for a version before it needs it (when it starts using the one
 * before), so the transfer overlaps its training; the producer answers as soon as it has it:
 *
 *   consumer                                    producer
 *   want(j): post the receive, send WANT j  ->  at its epoch boundary j, or at once (from
 *                                               memory, or its snapshot file) when j has passed
 *   get(j): wait for WEIGHTS j              <-  WEIGHTS j: 64-byte header + snapshot bytes
 *   finish(): FINISH                        ->  completes what is in flight, DONE
 *
 * A snapshot is feed_net_snapshot_get of the producer's network (train.h): the same bits as
 * its checkpoint's /model. Every version the consumer may still need is also written by the
 * producer to <dir>/<prefix>_w<j>.h5 (atomically) when it reaches epoch j, so after a crash
 * both sides resume from their own checkpoints and the producer serves passed versions from
 * those files; a WANT carries keep_from, the oldest version the consumer's newest checkpoint
 * can still need, and the producer deletes older files.
 *
 * Messages travel on a communicator private to the channels (feed_weights_comm). Waits poll
 * MPI_Test and never block inside MPI: they notice stop signals (the wait returns, so the run
 * can checkpoint) and a silent producer (the job ends after timeout_s without a message from
 * it, naming its rank and generation; while the consumer waits for a version the producer
 * has not reached, the producer sends a PROGRESS note every 2 s). Nothing is allocated after
 * creation.
 */
#ifndef FEED_WEIGHTS_CHANNEL_H
#define FEED_WEIGHTS_CHANNEL_H

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

#include "feed/checkpoint.h"
#include "feed/net.h"

/* A duplicate of comm for the channels (collective over comm; free with MPI_Comm_free). */
MPI_Comm feed_weights_comm(MPI_Comm comm);

/* ---------------------------------------------------------------------------- producer */

typedef struct feed_weights_producer feed_weights_producer;

typedef struct {
    MPI_Comm comm;            /* from feed_weights_comm */
    int consumer_rank;
    int generation;           /* the producer's generation, for messages */
    feed_net *net;            /* the producer's network (read at epoch boundaries) */
    const char *dir;          /* snapshot files <dir>/<prefix>_w<j>.h5 */
    const char *prefix;       /* e.g. "gen1" */
    const feed_ckpt_meta *meta; /* root attributes of the snapshot files (epoch, step set per file) */
    int first_version, last_version; /* the versions a consumer can need: j in [first, last] */
    int64_t completed;        /* epochs the producer has completed (its resume point) */
    int64_t steps_per_epoch;
} feed_weights_producer_config;

/* Starts listening for the consumer. When the resume point is a version the consumer may
 * need, its snapshot file is (re)written from the network now. */
feed_weights_producer *feed_weights_producer_create(const feed_weights_producer_config *cfg);
/* The producer's network has completed `epoch` epochs (its checkpoint, if due, is written):
 * keeps and files version `epoch` if a consumer may need it, answers a waiting consumer. */
void feed_weights_producer_epoch_end(feed_weights_producer *p, int64_t epoch);
/* Takes requests, drives sends, sends PROGRESS notes; cheap, call it every step. */
void feed_weights_producer_poll(feed_weights_producer *p);
/* After training: serves the consumer until it says FINISH, then DONE. */
void feed_weights_producer_serve_until_finish(feed_weights_producer *p);
void feed_weights_producer_free(feed_weights_producer *p);

/* ---------------------------------------------------------------------------- consumer */

typedef struct feed_weights_consumer feed_weights_consumer;

typedef struct {
    MPI_Comm comm;            /* from feed_weights_comm */
    int producer_rank;
    int producer_generation;  /* for messages */
    size_t bytes;             /* snapshot size (feed_net_snapshot_bytes of the same architecture) */
    double timeout_s;         /* end the job after this long without a message; <= 0: never */
} feed_weights_consumer_config;

feed_weights_consumer *feed_weights_consumer_create(const feed_weights_consumer_config *cfg);
/* Ask for version j (nothing else may be asked for until it is got); keep_from as above. */
void feed_weights_consumer_want(feed_weights_consumer *c, int version, int keep_from);
/* The version wanted last (-1: none outstanding). */
int feed_weights_consumer_wanted(const feed_weights_consumer *c);
/* Wait for the version wanted; *bytes points at its snapshot until the next want. Calls
 * idle(ctx) (may be NULL) between polls. Returns false, with nothing received, when a stop
 * signal is pending (feed_signals_pending). */
bool feed_weights_consumer_get(feed_weights_consumer *c, const void **bytes, void (*idle)(void *), void *ctx);
/* Drain the producer's notes; cheap, call it every step. */
void feed_weights_consumer_poll(feed_weights_consumer *c);
/* The end (training finished or stopped): FINISH, then take or cancel what is in flight;
 * idle(ctx) (may be NULL) between polls. */
void feed_weights_consumer_finish(feed_weights_consumer *c, void (*idle)(void *), void *ctx);
void feed_weights_consumer_free(feed_weights_consumer *c);

#endif
