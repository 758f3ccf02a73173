/* mode_cache.c - `run.mode = cache`: every rank writes the feature caches of its teachers
 * (include/feed/distill.h, feed_cache_rank). */
#include "feed/distill.h"
#include "feed/modes.h"

int feed_mode_cache(const feed_run_ctx *ctx) { return feed_cache_rank(ctx); }
