/* fuzz_common.c - fatal-error recovery, HDF5 clean-up, scratch files, input bytes
 * (see fuzz_common.h). */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include "fuzz_common.h"

#include <hdf5.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "feed/check.h"

static jmp_buf *g_jump;   /* set while fuzz_catch runs fn */
static int g_fatal_code;

static void on_fatal(int code) {
    if (!g_jump) return; /* outside fuzz_catch: feed_fatal ends the process as usual */
    g_fatal_code = code;
    longjmp(*g_jump, 1);
}

void fuzz_init(void) {
    static bool done = false;
    if (done) return;
    done = true;
    /* one thread: the readers are serial, and idle OpenMP workers spinning between inputs
     * cost the other core (unless the caller chose otherwise) */
    setenv("OMP_NUM_THREADS", "1", 0);
    const char *verbose = getenv("FEED_FUZZ_VERBOSE");
    /* Printing every expected error costs more than some targets' whole run. */
    feed_set_fatal_handler(on_fatal, verbose && *verbose == '1');
    H5open();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

int fuzz_catch(void (*fn)(void *), void *arg) {
    jmp_buf here;
    jmp_buf *volatile outer = g_jump;
    if (setjmp(here) != 0) {
        g_jump = outer;
        fuzz_h5_close_all();
        /* The ids H5Fget_obj_ids does not list - dataspaces, datatypes and property lists
         * the reader had open - pile up too: restart the library now and then, which
         * releases every id (the next HDF5 call starts it again). */
        static unsigned recovered;
        if (++recovered % 4096 == 0) H5close();
        /* readers that set HDF5 quiet restore it on return; an error left it as it was */
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        H5Eclear2(H5E_DEFAULT);
        return g_fatal_code;
    }
    g_jump = &here;
    fn(arg);
    g_jump = outer;
    return 0;
}

int fuzz_h5_close_all(void) {
    ssize_t n = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (n <= 0) return 0;
    hid_t *ids = malloc((size_t)n * sizeof *ids);
    if (!ids) abort();
    n = H5Fget_obj_ids(H5F_OBJ_ALL, H5F_OBJ_ALL, (size_t)n, ids);
    /* objects inside files first, files last (a file id with open objects stays half-open
     * under the default close degree) */
    for (int pass = 0; pass < 2; pass++)
        for (ssize_t i = 0; i < n; i++) {
            H5I_type_t type = H5Iget_type(ids[i]);
            if ((type == H5I_FILE) != (pass == 1)) continue;
            switch (type) {
            case H5I_FILE: H5Fclose(ids[i]); break;
            case H5I_GROUP: H5Gclose(ids[i]); break;
            case H5I_DATASET: H5Dclose(ids[i]); break;
            case H5I_ATTR: H5Aclose(ids[i]); break;
            case H5I_DATATYPE: H5Tclose(ids[i]); break;
            default: break;
            }
        }
    free(ids);
    return (int)n;
}

void fuzz_require_no_open_h5(const char *after) {
    ssize_t n = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (n != 0) {
        fprintf(stderr, "fuzz: %zd HDF5 object(s) still open after %s returned\n", n, after);
        abort();
    }
}

/* ---- scratch files ---------------------------------------------------------------------- */

#define MAX_TMP 8
static char *g_tmp[MAX_TMP];
static int g_ntmp;

static void remove_tmp(void) {
    for (int i = 0; i < g_ntmp; i++) unlink(g_tmp[i]);
}

const char *fuzz_tmp_path(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "/dev/shm/feed_fuzz_%ld_%s", (long)getpid(), name);
    for (int i = 0; i < g_ntmp; i++)
        if (strcmp(g_tmp[i], path) == 0) return g_tmp[i];
    if (g_ntmp == MAX_TMP) abort();
    if (g_ntmp == 0) atexit(remove_tmp);
    g_tmp[g_ntmp] = strdup(path);
    if (!g_tmp[g_ntmp]) abort();
    return g_tmp[g_ntmp++];
}

void fuzz_write_file(const char *path, const uint8_t *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

/* ---- input bytes ------------------------------------------------------------------------ */

uint8_t fuzz_u8(fuzz_bytes *b) {
    if (b->n == 0) return 0;
    b->n--;
    return *b->p++;
}

uint32_t fuzz_u32(fuzz_bytes *b) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v = v << 8 | fuzz_u8(b);
    return v;
}

uint64_t fuzz_u64(fuzz_bytes *b) {
    uint64_t hi = fuzz_u32(b);
    return hi << 32 | fuzz_u32(b);
}

bool fuzz_bool(fuzz_bytes *b) { return fuzz_u8(b) & 1; }

int64_t fuzz_range(fuzz_bytes *b, int64_t lo, int64_t hi) {
    uint64_t span = (uint64_t)hi - (uint64_t)lo, v;
    if (span < 256) {
        v = fuzz_u8(b);
    } else if (span < 65536) {
        v = (uint64_t)fuzz_u8(b) << 8;
        v |= fuzz_u8(b);
    } else {
        v = fuzz_u64(b);
    }
    if (span != UINT64_MAX) v %= span + 1;
    return (int64_t)((uint64_t)lo + v); /* two's complement wrap, as every target compiler does */
}

int fuzz_pick(fuzz_bytes *b, int n) { return (int)fuzz_range(b, 0, n - 1); }

char *fuzz_str(fuzz_bytes *b, char *out, size_t cap) {
    size_t len = (size_t)fuzz_range(b, 0, (int64_t)cap - 1);
    size_t i = 0;
    for (; i < len && b->n; i++) out[i] = (char)fuzz_u8(b);
    out[i] = 0;
    return out;
}
