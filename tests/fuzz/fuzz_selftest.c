/* fuzz_selftest.c - the fuzz targets' error recovery works: feed_fatal's hook hands back the
 * exit code, control returns to fuzz_catch, and the HDF5 objects the abandoned reader held
 * are closed. Without this, every fuzz target would stop at its first rejected input. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>

#include "feed/check.h"
#include "feed/dataset.h"
#include "fuzz_common.h"

static int failures;
#define EXPECT(cond)                                                                              \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "fuzz_selftest: %s:%d: expected %s\n", __FILE__, __LINE__, #cond);    \
            failures++;                                                                           \
        }                                                                                         \
    } while (0)

static void fail_usage(void *arg) { FEED_INPUT_ERROR("hint", "an input error %s", (const char *)arg); }
static void fail_runtime(void *arg) { FEED_FAIL("hint", "a runtime error %s", (const char *)arg); }
static void no_error(void *arg) { *(int *)arg = 1; }

/* Opens a file and an attribute, then fails: the ids must not survive fuzz_catch. */
static void fail_holding_h5(void *path) {
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(file, "a", H5T_NATIVE_INT, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Sclose(space);
    FEED_INPUT_ERROR("", "failing with file %lld and attribute %lld open", (long long)file, (long long)attr);
}

static void open_dataset(void *path) { feed_dataset_close(feed_dataset_open(path)); }

int main(void) {
    fuzz_init();
    EXPECT(fuzz_catch(fail_usage, "x") == FEED_EXIT_USAGE);
    EXPECT(fuzz_catch(fail_runtime, "y") == FEED_EXIT_RUNTIME);
    int ran = 0;
    EXPECT(fuzz_catch(no_error, &ran) == 0 && ran == 1);

    const char *path = fuzz_tmp_path("selftest.h5");
    EXPECT(fuzz_catch(fail_holding_h5, (void *)path) == FEED_EXIT_USAGE);
    EXPECT(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) == 0);
    /* a real reader failing half-way (the file has no data-set attributes) */
    EXPECT(fuzz_catch(open_dataset, (void *)path) == FEED_EXIT_USAGE);
    EXPECT(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) == 0);
    /* many recoveries in a row: no jmp_buf or HDF5 state left behind */
    for (int i = 0; i < 5000; i++) EXPECT(fuzz_catch(open_dataset, (void *)path) == FEED_EXIT_USAGE); /* one restart */
    EXPECT(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) == 0);
    if (failures) return 1;
    printf("fuzz_selftest: ok\n");
    return 0;
}
