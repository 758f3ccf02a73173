/* run_lock.h - one run per run folder.
 *
 * A run holds an exclusive flock(2) on RUN_DIR/.feed_mpi.lock for the life of its process
 * (world rank 0 takes it for the whole job); the file says who holds it ("host H pid P
 * started T"). The kernel releases the lock when the process ends in any way, so a lock
 * left by a killed run is taken over, with a note naming it. On NFS, Linux maps flock to
 * NFS byte-range locks, so runs on different nodes exclude each other too (lockd needed).
 */
#ifndef FEED_RUN_LOCK_H
#define FEED_RUN_LOCK_H

#include <stddef.h>

/* Creates dir if needed and takes its lock. Returns 0, with *previous the holder text of a
 * run that ended without releasing it ("" if none); or -1 with why saying who holds it (or
 * why the lock file cannot be made). Released at process exit. */
int feed_run_lock(const char *dir, char *why, size_t why_cap, char *previous, size_t prev_cap);

/* For --check: 0 if a run could take the lock of dir now (dir absent counts: it is created
 * then; the nearest existing parent must be a writable folder), else -1 with why. */
int feed_run_lock_probe(const char *dir, char *why, size_t why_cap);

#endif
