/* check.c - fatal error reporting that ends the whole MPI job (see include/feed/check.h). */
#define _POSIX_C_SOURCE 200809L
#include "feed/check.h"

#include <errno.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *g_program = "feed_mpi";
static int g_rank = -1;

void feed_set_program_name(const char *name) { g_program = name; }
static int g_size = 1;
static feed_fatal_handler g_fatal_handler = NULL;
static int g_fatal_print = 1;

void feed_set_fatal_handler(feed_fatal_handler handler, int print) {
    g_fatal_handler = handler;
    g_fatal_print = handler ? print : 1;
}

void feed_set_error_rank(int rank, int size) {
    g_size = size;
    g_rank = size > 1 ? rank : -1;
}

static int mpi_is_up(void) {
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    return init && !fin;
}

/* vsnprintf into a buffer of the right size: malloc'ed, or `fallback` (cut to its size) when
 * memory is short - an out-of-memory error must still be reported. */
static char *format_alloc(char *fallback, size_t fallback_cap, const char *fmt, va_list ap) {
    va_list copy;
    va_copy(copy, ap);
    int need = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    char *buf = need >= 0 ? malloc((size_t)need + 1) : NULL;
    if (buf) {
        vsnprintf(buf, (size_t)need + 1, fmt, ap);
        return buf;
    }
    vsnprintf(fallback, fallback_cap, fmt, ap);
    return fallback;
}

static char *format_alloc_v(char *fallback, size_t fallback_cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *out = format_alloc(fallback, fallback_cap, fmt, ap);
    va_end(ap);
    return out;
}

void feed_vfatal(int code, const char *file, int line, const char *hint, const char *fmt,
                 va_list ap) {
    if (code == 0) code = FEED_EXIT_RUNTIME; /* never exit(0) on error */
    static char msg_fallback[4096], out_fallback[6144];
    char *msg = format_alloc(msg_fallback, sizeof msg_fallback, fmt, ap);
    char head[64] = "", at[300] = "";
    if (g_rank >= 0) snprintf(head, sizeof head, "rank %d: ", g_rank);
    if (file) snprintf(at, sizeof at, "  at %s:%d\n", file, line);
    /* One fputs so lines from several ranks do not interleave mid-message; paths are never cut. */
    char *out = format_alloc_v(out_fallback, sizeof out_fallback, "%s: %serror: %s\n%s%s%s%s", g_program, head, msg,
                               at, hint && *hint ? "  hint: " : "", hint && *hint ? hint : "",
                               hint && *hint ? "\n" : "");
    if (g_fatal_print) { /* the message is formatted even when a test hook silences it */
        fputs(out, stderr);
        fflush(stderr);
        fflush(stdout);
    }
    if (msg != msg_fallback) free(msg);
    if (out != out_fallback) free(out);
    if (g_fatal_handler) g_fatal_handler(code); /* a test hook; does not return */
    if (mpi_is_up() && g_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

void feed_fatal(int code, const char *file, int line, const char *hint, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    feed_vfatal(code, file, line, hint, fmt, ap);
}

void feed_exit_collective(int code) {
    fflush(stdout);
    fflush(stderr);
    if (mpi_is_up()) MPI_Finalize();
    exit(code);
}

const char *feed_errno_str(void) { return strerror(errno); }

const char *feed_dnnl_status_str(int status) {
    /* dnnl_status_t values of oneDNN 2.6 (dnnl_types.h), listed here so this file needs no dnnl.h */
    switch (status) {
    case 0: return "success";
    case 1: return "out of memory";
    case 2: return "invalid arguments";
    case 3: return "unimplemented (no implementation for these shapes/formats)";
    case 4: return "iterator ends";
    case 5: return "runtime error";
    case 6: return "not required";
    default: return "unknown oneDNN status";
    }
}

const char *feed_mpi_error_str(int code) {
    static char buf[MPI_MAX_ERROR_STRING + 32];
    int len = 0;
    if (MPI_Error_string(code, buf, &len) != MPI_SUCCESS) snprintf(buf, sizeof buf, "MPI error %d", code);
    return buf;
}

const char *feed_fmt(const char *fmt, ...) {
    /* A ring of 8 buffers, each grown to fit (so long paths are never cut), kept for reuse. */
    static char *bufs[8];
    static size_t caps[8];
    static char fallback[8][1024];
    static int next = 0;
    int i = next;
    next = (next + 1) % 8;
    va_list ap, copy;
    va_start(ap, fmt);
    va_copy(copy, ap);
    int need = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (need >= 0 && (size_t)need + 1 > caps[i]) {
        char *grown = realloc(bufs[i], (size_t)need + 1);
        if (grown) bufs[i] = grown, caps[i] = (size_t)need + 1;
    }
    char *b = caps[i] ? bufs[i] : fallback[i];
    vsnprintf(b, caps[i] ? caps[i] : sizeof fallback[i], fmt, ap);
    va_end(ap);
    return b;
}

void *feed_xmalloc(size_t bytes, const char *what) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p)
        feed_fatal(FEED_EXIT_RUNTIME, __FILE__, __LINE__, "reduce the batch size or the model",
                   "out of memory allocating %zu bytes for %s", bytes, what);
    return p;
}

void *feed_xcalloc(size_t n, size_t size, const char *what) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        feed_fatal(FEED_EXIT_RUNTIME, __FILE__, __LINE__, "reduce the batch size or the model",
                   "out of memory allocating %zu x %zu bytes for %s", n, size, what);
    return p;
}

void *feed_xrealloc(void *p, size_t bytes, const char *what) {
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q)
        feed_fatal(FEED_EXIT_RUNTIME, __FILE__, __LINE__, "reduce the batch size or the model",
                   "out of memory growing %s to %zu bytes", what, bytes);
    return q;
}

char *feed_xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = feed_xmalloc(n, "string");
    memcpy(d, s, n);
    return d;
}

void *feed_xaligned(size_t bytes, const char *what) {
    void *p = NULL;
    size_t rounded = (bytes + 63) / 64 * 64;
    if (posix_memalign(&p, 64, rounded ? rounded : 64) != 0)
        feed_fatal(FEED_EXIT_RUNTIME, __FILE__, __LINE__, "reduce the batch size or the model",
                   "out of memory allocating %zu aligned bytes for %s", bytes, what);
    return p;
}
