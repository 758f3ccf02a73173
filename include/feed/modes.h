/* modes.h - one function per run.mode, each in src/app/mode_<name>.c. */
#ifndef FEED_MODES_H
#define FEED_MODES_H

#include "feed/app.h"

/* Runs ctx->cfg->run.mode on this rank; returns the process exit code. */
int feed_run_mode(const feed_run_ctx *ctx);

int feed_mode_scratch(const feed_run_ctx *ctx);
int feed_mode_pfeed(const feed_run_ctx *ctx);

#endif
