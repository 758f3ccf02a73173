/* config_values.h - internal interface of src/config: typed value parsing. */
#ifndef FEED_CONFIG_VALUES_H
#define FEED_CONFIG_VALUES_H

#include <stdbool.h>

#include "feed/config.h"

typedef struct {
    char msg[8192]; /* room for a PATH_MAX path and the words around it */
    char hint[512];
} feed_cfg_msg;

/* Parse `value` for key `id` into cfg. Returns 0, or -1 with m filled. (Whether input
 * files exist is checked later, on the final values: feed_cfg_check_inputs.) */
int feed_cfg_set_value(feed_config *cfg, int id, const char *value, feed_cfg_msg *m);
void feed_cfg_free_value(feed_config *cfg, int id);
/* For PATH and PATH_LIST keys: every file named exists and is readable (0), else -1 with m
 * filled. Run on the final values, after the overrides. */
int feed_cfg_check_inputs(const feed_config *cfg, int id, feed_cfg_msg *m);
/* "int", "float", ... for the reference. */
const char *feed_cfg_type_label(feed_cfg_type t);

#endif
