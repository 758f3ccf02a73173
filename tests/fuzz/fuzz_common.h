/* fuzz_common.h - what the libFuzzer targets of tests/fuzz/ share.
 *
 * The project's input errors end the process (feed_fatal -> exit). A target runs the code
 * under test through fuzz_catch(), which installs a fatal handler that longjmps back, so an
 * expected error ("not a feed_mpi checkpoint") is one more input, not the end of the run.
 * After such an error fuzz_catch() closes the HDF5 objects the abandoned frames left open.
 */
#ifndef FEED_FUZZ_COMMON_H
#define FEED_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Once per process: fatal handler (quiet unless FEED_FUZZ_VERBOSE=1 is set), HDF5 error
 * printing off. Every target calls it first; calling it again does nothing. */
void fuzz_init(void);

/* Runs fn(arg). Returns 0 if it returned, or the exit code of the feed_fatal that ended it;
 * then the HDF5 objects fn left open are closed (every 4096th time HDF5 is restarted, which
 * also releases the dataspace, datatype and property-list ids no query lists). */
int fuzz_catch(void (*fn)(void *), void *arg);

/* Closes every HDF5 file, group, dataset, attribute and named type still open; returns how
 * many there were. */
int fuzz_h5_close_all(void);
/* Ends the process with a message if HDF5 objects are open: after a reader returned normally
 * it must have closed what it opened. */
void fuzz_require_no_open_h5(const char *after);

/* A file in /dev/shm unique to this process ("/dev/shm/feed_fuzz_<pid>_<name>"), removed at
 * exit; fuzz_write_file replaces its content. */
const char *fuzz_tmp_path(const char *name);
void fuzz_write_file(const char *path, const uint8_t *data, size_t size);

/* Reads values from the fuzz input front to back; past the end every value is 0. */
typedef struct {
    const uint8_t *p;
    size_t n;
} fuzz_bytes;
uint8_t fuzz_u8(fuzz_bytes *b);
uint32_t fuzz_u32(fuzz_bytes *b);
uint64_t fuzz_u64(fuzz_bytes *b);
bool fuzz_bool(fuzz_bytes *b);
/* A value in [lo, hi] (lo <= hi). */
int64_t fuzz_range(fuzz_bytes *b, int64_t lo, int64_t hi);
/* Picks one of n (n >= 1) - how the structure-aware targets choose among cases. */
int fuzz_pick(fuzz_bytes *b, int n);
/* Up to cap-1 bytes (length chosen by the input) as a NUL-terminated string; returns it. */
char *fuzz_str(fuzz_bytes *b, char *out, size_t cap);

#endif
