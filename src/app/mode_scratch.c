/* mode_scratch.c - interim: the training loop lands with the engine and data modules. */
#include "feed/check.h"
#include "feed/modes.h"

int feed_mode_scratch(const feed_run_ctx *ctx) {
    (void)ctx;
    FEED_INPUT_ERROR("this build has the configuration layer only", "mode scratch is not built yet");
}
