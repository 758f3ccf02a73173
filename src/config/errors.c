/* errors.c - collecting configuration errors so a file's problems are reported together. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
#include "feed/config.h"

/* After this many, further errors are counted but not printed (binary garbage would
 * otherwise print one per line). */
#define MAX_PRINTED_ERRORS 20

static void append(feed_cfg_errors *e, const char *s) {
    size_t n = strlen(s);
    if (e->len + n + 1 > e->cap) {
        e->cap = (e->len + n + 1) * 2;
        e->text = feed_xrealloc(e->text, e->cap, "config error text");
    }
    memcpy(e->text + e->len, s, n + 1);
    e->len += n;
}

void feed_cfg_error(feed_cfg_errors *errs, const char *where, int line, const char *hint,
                    const char *fmt, ...) {
    errs->count++;
    if (errs->count > MAX_PRINTED_ERRORS) {
        if (errs->count == MAX_PRINTED_ERRORS + 1)
            append(errs, "(further errors not shown: fix the ones above first)\n");
        return;
    }
    char msg[8192], entry[8400]; /* a PATH_MAX path and the words around it, never cut */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(entry, sizeof entry, "%s:%d: %s\n", where, line, msg);
    else
        snprintf(entry, sizeof entry, "%s: %s\n", where, msg);
    append(errs, entry);
    if (hint && *hint) {
        snprintf(entry, sizeof entry, "  hint: %s\n", hint);
        append(errs, entry);
    }
}

void feed_cfg_errors_free(feed_cfg_errors *errs) {
    free(errs->text);
    memset(errs, 0, sizeof *errs);
}
