/* json.h - the two JSON value writers that feed_mpi's outputs (metrics lines, eval --json)
 * need: strings escaped as RFC 8259 requires, numbers that are never bare nan/inf. */
#ifndef FEED_JSON_H
#define FEED_JSON_H

#include <stdio.h>

/* "s" with ", \ and control characters escaped (bytes >= 0x80 pass through: UTF-8). */
void feed_json_str(FILE *f, const char *s);
/* v with %.9g, or null when v is Inf or NaN (JSON has no such numbers). */
void feed_json_num(FILE *f, double v);

#endif
