/* feed_loader_bench - images per second of the training loader (pad + random crop + flip +
 * normalise into NCHW float32), on a data-set file or a synthetic CIFAR-size set.
 *
 *   feed_loader_bench [--threads T] [--batch B] [--pad P] [--seconds S] [DATA.h5]
 *
 * --threads 0 assembles batches in the calling thread; T >= 1 uses T prefetch threads
 * (the calling thread only copies finished batches out). Prints one line:
 *   loader images=N img_per_s=X threads=T batch=B shape=CxHxW pad=P source=...        */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "feed/check.h"
#include "feed/dataset.h"
#include "feed/loader.h"

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CIFAR-10 training-set shape with pseudo-random pixels (xorshift: fast, not a data RNG). */
static feed_dataset *synthetic_cifar(void) {
    feed_dataset *ds = feed_dataset_new("synthetic-cifar", 10, 32, 32, 3);
    feed_dataset_alloc_split(ds, FEED_SPLIT_TRAIN, 50000);
    feed_dataset_alloc_split(ds, FEED_SPLIT_TEST, 1);
    uint64_t x = 88172645463325252ull;
    uint8_t *p = ds->split[FEED_SPLIT_TRAIN].images;
    const int64_t bytes = 50000 * feed_dataset_image_bytes(ds);
    for (int64_t i = 0; i < bytes; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)(x >> 32);
    }
    for (int64_t i = 0; i < 50000; i++) ds->split[FEED_SPLIT_TRAIN].labels[i] = (int32_t)(i % 10);
    feed_dataset_compute_stats(ds);
    return ds;
}

static int parse_int(const char *flag, const char *v, int lo, int hi) {
    char *end = NULL;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || x < lo || x > hi)
        FEED_INPUT_ERROR("usage: feed_loader_bench [--threads T] [--batch B] [--pad P] [--seconds S] [DATA.h5]",
                         "%s needs an integer in [%d, %d], got '%s'", flag, lo, hi, v ? v : "");
    return (int)x;
}

int main(int argc, char **argv) {
    H5dont_atexit(); /* as feed_mpi (src/app/feed_mpi_main.c) */
    feed_set_program_name("feed_loader_bench");
    int threads = 1, batch = 128, pad = -1, seconds = 3;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: feed_loader_bench [--threads T] [--batch B] [--pad P] [--seconds S] [DATA.h5]\n"
                   "  images per second of the training loader (pad + crop + flip + normalise);\n"
                   "  without DATA.h5 a synthetic CIFAR-size set (50000 x 32x32x3).\n"
                   "  --threads 0: synchronous; T >= 1: T prefetch threads (default 1)\n");
            return 0;
        }
        if (strcmp(argv[i], "--threads") == 0) threads = parse_int(argv[i], next, 0, 64), i++;
        else if (strcmp(argv[i], "--batch") == 0) batch = parse_int(argv[i], next, 1, 1 << 20), i++;
        else if (strcmp(argv[i], "--pad") == 0) pad = parse_int(argv[i], next, 0, 64), i++;
        else if (strcmp(argv[i], "--seconds") == 0) seconds = parse_int(argv[i], next, 1, 3600), i++;
        else if (argv[i][0] == '-') FEED_INPUT_ERROR("feed_loader_bench --help lists the options", "unknown option '%s'", argv[i]);
        else path = argv[i];
    }
    feed_dataset *ds = path ? feed_dataset_open(path) : synthetic_cifar();
    feed_loader_config cfg = feed_loader_config_train(batch, 1234);
    cfg.pad = pad >= 0 ? pad : (ds->height >= 32 ? 4 : 2);
    cfg.prefetch_depth = threads > 0 ? 2 * threads : 0;
    cfg.prefetch_threads = threads;
    feed_loader *ld = feed_loader_create(ds, &cfg);
    int dims[4];
    feed_loader_batch_shape(ld, dims);
    float *images = feed_xaligned(sizeof(float) * (size_t)dims[0] * dims[1] * dims[2] * dims[3], "batch");
    int32_t *labels = feed_xmalloc(sizeof(int32_t) * (size_t)batch, "labels");
    const int64_t steps = feed_loader_steps_per_epoch(ld);
    feed_loader_batch(ld, 0, 0, images, labels); /* warm-up: permutation, pages, threads */
    int64_t images_done = 0;
    double checksum = 0, start = now_seconds(), elapsed = 0;
    for (int64_t epoch = 0; elapsed < seconds; epoch++)
        for (int64_t step = epoch == 0 ? 1 : 0; step < steps && elapsed < seconds; step++) {
            int n = feed_loader_batch(ld, epoch, step, images, labels);
            images_done += n;
            checksum += images[0] + labels[n - 1];
            elapsed = now_seconds() - start;
        }
    printf("loader images=%lld img_per_s=%.0f threads=%d batch=%d shape=%dx%dx%d pad=%d source=%s "
           "(checksum %.3f)\n",
           (long long)images_done, (double)images_done / elapsed, threads, batch, dims[1], dims[2],
           dims[3], cfg.pad, path ? path : "synthetic-cifar-50000", checksum);
    free(images);
    free(labels);
    feed_loader_destroy(ld);
    feed_dataset_close(ds);
    return FEED_EXIT_OK;
}
