/* check.h - error reporting for feed_mpi.
 *
 * Every oneDNN, MPI, HDF5 and libc call goes through one of the CHECK_* macros.
 * A failure prints what failed, where (file:line), the value or path involved and
 * a hint, then ends the whole job with a non-zero exit code:
 *
 *   feed_mpi: rank 2: error: H5Fopen('teacher_1.h5') failed
 *     at src/io/checkpoint.c:88
 *     hint: is the path right and the file a feed_mpi checkpoint?
 *
 * Under MPI with more than one rank the job is ended with MPI_Abort, so one
 * failing rank never leaves the others hanging in a collective.
 * Errors every rank detects identically (a bad config) use feed_exit_collective()
 * instead, so the user sees one message and not one per rank.
 */
#ifndef FEED_CHECK_H
#define FEED_CHECK_H

#include <stdarg.h>
#include <stdnoreturn.h>

/* Exit codes of feed_mpi (documented in the README). */
enum {
    FEED_EXIT_OK = 0,
    FEED_EXIT_RUNTIME = 1, /* a library call or the run itself failed */
    FEED_EXIT_USAGE = 2,   /* bad command line, config, data or checkpoint */
};

/* Print "feed_mpi: [rank r: ]error: MSG\n  at FILE:LINE\n  hint: HINT" and end the job.
 * file may be NULL for user-input errors that have no useful source position. */
noreturn void feed_fatal(int code, const char *file, int line, const char *hint,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));
noreturn void feed_vfatal(int code, const char *file, int line, const char *hint,
                          const char *fmt, va_list ap);

/* The program named at the start of messages ("feed_mpi" unless set, e.g. "feed_convert"). */
void feed_set_program_name(const char *name);

/* The rank prefixed to messages (-1: not under MPI or single rank: no prefix). */
void feed_set_error_rank(int rank, int size);

/* Test hook (fuzz targets, tests/fuzz/): with a handler set, feed_fatal formats and prints
 * the message as usual (print = 0: formats it, prints nothing), then calls the handler with
 * the exit code. The handler must not return (it longjmps back into the test); if it does,
 * the job ends as usual. NULL, the default, is the normal behaviour: MPI_Abort or exit.
 * Only for tests: whatever the abandoned frames held (memory, HDF5 ids) stays behind. */
typedef void (*feed_fatal_handler)(int code);
void feed_set_fatal_handler(feed_fatal_handler handler, int print);

/* End every rank with the same code after an error all ranks saw alike: only rank 0 has
 * printed it. Calls MPI_Finalize when MPI is up, then exit(code). */
noreturn void feed_exit_collective(int code);

/* A runtime failure with a hint: FEED_FAIL("hint", "what %s", arg). */
#define FEED_FAIL(hint, ...) feed_fatal(FEED_EXIT_RUNTIME, __FILE__, __LINE__, hint, __VA_ARGS__)
/* Bad user input (file, value): exit code 2. */
#define FEED_INPUT_ERROR(hint, ...) feed_fatal(FEED_EXIT_USAGE, __FILE__, __LINE__, hint, __VA_ARGS__)

/* Condition that must hold; `what` names the value or path involved. */
#define FEED_CHECK(cond, hint, ...)                                                               \
    do {                                                                                          \
        if (!(cond)) feed_fatal(FEED_EXIT_RUNTIME, __FILE__, __LINE__, hint, __VA_ARGS__);        \
    } while (0)

/* libc/POSIX call returning -1 (or NULL via FEED_CHECK_PTR) and setting errno. */
const char *feed_errno_str(void);
#define CHECK_SYS(call, hint, ...)                                                                \
    do {                                                                                          \
        if ((call) == -1)                                                                         \
            feed_fatal(FEED_EXIT_RUNTIME, __FILE__, __LINE__, hint, "%s: %s (%s)", #call,         \
                       feed_errno_str(), feed_fmt(__VA_ARGS__));                                  \
    } while (0)

/* oneDNN: the caller includes dnnl.h; status is a dnnl_status_t. */
const char *feed_dnnl_status_str(int status);
#define CHECK_DNNL(call)                                                                          \
    do {                                                                                          \
        int st_ = (int)(call);                                                                    \
        if (st_ != 0)                                                                             \
            feed_fatal(FEED_EXIT_RUNTIME, __FILE__, __LINE__,                                     \
                       "run with ONEDNN_VERBOSE=1 to see the primitive and its formats",          \
                       "oneDNN call %s failed: %s", #call, feed_dnnl_status_str(st_));            \
    } while (0)

/* MPI: returns an MPI error code; the message comes from MPI_Error_string. */
const char *feed_mpi_error_str(int code);
#define CHECK_MPI(call)                                                                           \
    do {                                                                                          \
        int rc_ = (call);                                                                         \
        if (rc_ != 0)                                                                             \
            feed_fatal(FEED_EXIT_RUNTIME, __FILE__, __LINE__,                                     \
                       "check the other ranks' messages; a peer may have died",                   \
                       "MPI call %s failed: %s", #call, feed_mpi_error_str(rc_));                 \
    } while (0)

/* HDF5: negative return is failure (hid_t or herr_t). `...` names the path/object. */
#define CHECK_H5(call, hint, ...)                                                                 \
    do {                                                                                          \
        if ((long long)(call) < 0)                                                                \
            feed_fatal(FEED_EXIT_RUNTIME, __FILE__, __LINE__, hint, "HDF5 call %s failed (%s)",   \
                       #call, feed_fmt(__VA_ARGS__));                                             \
    } while (0)

/* printf into one of 8 rotating buffers, each grown to fit (messages never cut a long path);
 * valid until 8 more calls; not thread-safe. */
const char *feed_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Allocation that never returns NULL: failures end the job naming the size and purpose. */
#include <stddef.h>
void *feed_xmalloc(size_t bytes, const char *what);
void *feed_xcalloc(size_t n, size_t size, const char *what);
void *feed_xrealloc(void *p, size_t bytes, const char *what);
char *feed_xstrdup(const char *s);
/* 64-byte aligned allocation (free with free()). */
void *feed_xaligned(size_t bytes, const char *what);

#endif
