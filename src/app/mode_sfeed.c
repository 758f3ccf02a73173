/* mode_sfeed.c - `run.mode = sfeed` (include/feed/sfeed.h): one generation per rank. The rank
 * count was checked before (feed_run_mode). */
#include "feed/modes.h"
#include "feed/sfeed.h"

int feed_mode_sfeed(const feed_run_ctx *ctx) { return feed_sfeed_rank(ctx); }
