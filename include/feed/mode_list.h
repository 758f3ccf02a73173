/* mode_list.h - the one list of feed_mpi's modes (run.mode). Adding a mode is a row here and
 * its file src/app/mode_<name>.c; the config's choices, `feed_mpi --help`, the dispatch, the
 * rank-count check and `--check`'s launch line are all generated from this list.
 *
 *   X(ID, name, entry function, rank count function, --check function, rank layout, description)
 *
 * The rank count function (src/app/modes.c) returns the number of MPI ranks a config needs,
 * 0 when any number works, or -P when it must be a multiple of P; the --check function (NULL: none) checks what the mode adds
 * to the data set and model (modes.h). */
#ifndef FEED_MODE_LIST_H
#define FEED_MODE_LIST_H

#define FEED_MODE_LIST(X)                                                                          \
    X(SCRATCH, scratch, feed_mode_scratch, feed_ranks_scratch, NULL,                                \
      "rank r trains teacher r with seed run.seed + r (train.replicas = P: ranks mP..mP+P-1 teacher m)", \
      "train N independent networks with cross-entropy, one per rank (the teachers)")              \
    X(DISTILL, distill, feed_mode_distill, feed_ranks_distill, feed_distill_check,                                     \
      "rank 0 = student, rank n = teacher n (distill.source = mpi); distill.student_ranks = P: "   \
      "ranks 0..P-1 = student replicas, rank P-1+n = teacher n",                                   \
      "train the student ([model]) with cross-entropy plus the distillation terms of "            \
      "distill.terms (feed, kd, at, l1, ft) from the teachers of distill.teachers")               \
    X(PFEED, pfeed, feed_mode_distill, feed_ranks_distill, feed_distill_check,                                         \
      "rank 0 = student, rank n = teacher n (distill.source = mpi); distill.student_ranks = P: "   \
      "ranks 0..P-1 = student replicas, rank P-1+n = teacher n",                                   \
      "parallel FEED: distill with terms = feed (one NTL per teacher, each teacher rank streams "  \
      "its final feature map)")                                                                    \
    X(SFEED, sfeed, feed_mode_sfeed, feed_ranks_sfeed, feed_sfeed_check_job,                        \
      "rank r trains generation r + 1; with sfeed.teacher empty rank 0 trains generation 0 and "   \
      "rank r generation r (distill.student_ranks = P: P ranks per generation)",                  \
      "sequential FEED (or BAN with terms = kd): generations 1..K of the student, each learning "  \
      "from the one before with sfeed.terms, pipelined across ranks (sfeed.lag_epochs)")          \
    X(CACHE, cache, feed_mode_cache, feed_ranks_any, feed_cache_check,                              \
      "rank r writes the caches of teachers r, r + P, ... (P ranks)",                               \
      "write feature caches: each teacher of distill.teachers over cache.views augmented views of " \
      "every training sample, to cache.dir/teacher_<n>.h5, for students with distill.source = cache")

#endif
