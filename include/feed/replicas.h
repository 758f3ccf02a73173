/* replicas.h - one network trained as P data-parallel replicas (train.replicas for scratch,
 * distill.student_ranks for a distillation student; docs/data_parallel.md).
 *
 * Every replica holds the same network planned for its share b = B / P of the global batch B
 * and trains on its shard of every global minibatch (loader shard r of P: together the
 * shards of step s are exactly the B samples a single rank would take). Per step:
 *
 *   forward (own shard) -> losses (mean over the shard) -> feed_replicas_backward_begin
 *   -> backward: each bucket of the gradient arena starts its MPI_Iallreduce as soon as the
 *      backward has passed it (feed_net_replicas.grads_final_from), the extension's modules'
 *      gradients start first -> feed_replicas_backward_end: wait, scale by 1/P
 *   -> every replica takes the same optimizer step on the same averaged gradient.
 *
 * So the replicas stay identical by construction: the same initial state (broadcast from
 * replica 0 at start), the same updates. feed_replicas_check compares a checksum of every
 * replica's parameters and momentum (and, with synchronised BN, its BN statistics) with
 * replica 0's every train.replica_check steps and ends the job naming a replica that
 * drifted. Replica 0 writes checkpoints, metrics and evaluates; with per-replica BN its
 * running statistics are the model's (the other replicas' are never read).
 *
 * FEED_REPLICAS_OVERLAP=0 in the environment starts every reduction after the backward
 * instead (what tools/replica_bench.py compares against: the same bits, no overlap).
 *
 * All calls are collective over the replicas' communicator, in the same order on every
 * replica. Buckets, requests and buffers are made at create; the step allocates nothing.
 */
#ifndef FEED_REPLICAS_H
#define FEED_REPLICAS_H

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

#include "feed/net.h"
#include "feed/sgd.h"

typedef struct feed_replicas feed_replicas;

typedef struct {
    MPI_Comm comm;       /* the replicas of this network; replica r = rank r of comm */
    bool sync_bn;        /* BN statistics over the global batch (feed_net_replicas.sum) */
    int check_every;     /* drift check every N steps; 0: never */
    const char *what;    /* "the student", "teacher 2": for messages */
} feed_replicas_config;

/* The replicas of `net` and of the extension's trainable modules (they train with it: their
 * gradients are reduced too, their BN synchronised with sync_bn). sgd holds every
 * parameter of net and the modules (checked: anything else would drift). Hooks net and
 * modules (feed_net_set_replicas). */
feed_replicas *feed_replicas_create(const feed_replicas_config *cfg, feed_net *net, feed_net *const *modules,
                                    int n_modules, const feed_sgd *sgd);
void feed_replicas_free(feed_replicas *R);

/* Replica 0's parameters, momentum buffers, optimizer step count and BN buffers on every
 * replica (after a fresh start or a resume). */
void feed_replicas_broadcast_state(feed_replicas *R, feed_sgd *sgd);

/* The modules' gradients are final (after the distillation terms ran): start reducing them. */
void feed_replicas_backward_begin(feed_replicas *R);
/* After the network's backward: every reduction complete, gradients averaged over the
 * replicas. Returns the seconds spent waiting here (communication not hidden). */
double feed_replicas_backward_end(feed_replicas *R);

/* Whether any replica saw a non-finite value in this step (MPI_LOR of `mine`): every replica
 * then drops or stops at the same step. */
bool feed_replicas_any(feed_replicas *R, bool mine);
/* Sums of n doubles over the replicas, in place (epoch figures). */
void feed_replicas_sum(feed_replicas *R, double *v, int n);

/* Every train.replica_check steps (global_step % check_every == 0): compare checksums of
 * parameters, momentum (and BN statistics with sync_bn) with replica 0's; a replica that
 * differs ends the job (FEED_FAIL) naming it, the step and the first entry that differs. */
void feed_replicas_check(feed_replicas *R, const feed_sgd *sgd, int64_t global_step);

#endif
