/* resume.h - which checkpoint a run continues from (checkpoint.resume, checkpoint.on_corrupt).
 *
 *   none   start fresh
 *   auto   the newest checkpoint of this rank's prefix in run.dir that verifies; ranks agree
 *          on one global step (the newest every rank has), so a job killed between two
 *          ranks' writes resumes every rank from the same point. A damaged newer file is
 *          reported and passed over (on_corrupt = fallback) or ends the job (refuse).
 *   PATH   that checkpoint; "{rank}" in the path is replaced by the rank number.
 */
#ifndef FEED_RESUME_H
#define FEED_RESUME_H

#include <mpi.h>

#include "feed/config.h"

typedef struct {
    char *path; /* NULL: start fresh */
} feed_resume_choice;

/* Collective over comm (the ranks that train together; each has its own prefix). */
feed_resume_choice feed_resume_select(const feed_config *cfg, const char *prefix, MPI_Comm comm);
void feed_resume_choice_free(feed_resume_choice *c);

#endif
