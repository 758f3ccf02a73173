/* signals.h - checkpoint-and-exit on SIGUSR1 / SIGTERM.
 *
 * SLURM's `--signal=B:USR1@120` (forwarded to the job step) or `scancel --signal=TERM` set
 * a flag; the training loop polls it once per step and all ranks agree with one small
 * MPI_Allreduce, so they finish the same step, write their checkpoints and exit 0 together.
 */
#ifndef FEED_SIGNALS_H
#define FEED_SIGNALS_H

#include <mpi.h>
#include <stdbool.h>

/* Install the handlers (idempotent). */
void feed_signals_install(void);
/* The signal received on this process (0 if none). */
int feed_signals_pending(void);
/* Collective over comm: true on every rank of comm if any of them received a stop signal. */
bool feed_signals_agree_stop(MPI_Comm comm);
const char *feed_signal_name(int sig);

#endif
