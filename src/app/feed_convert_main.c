/* feed_convert - convert an official image-classification release into a feed_mpi data-set
 * file (layout in docs/data.md).
 *
 *   feed_convert cifar10|cifar100|mnist|fashion-mnist DIR OUT.h5 [--force] [--coarse]
 *
 * Every input file is validated before anything is written; the output appears atomically
 * (OUT.h5.tmp + rename) or not at all. Exit codes: 0 done, 2 bad input, 1 other failure. */
#include <hdf5.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "feed/check.h"
#include "feed/dataset.h"

static const char usage[] =
    "usage: feed_convert cifar10|cifar100|mnist|fashion-mnist DIR OUT.h5 [--force] [--coarse]\n"
    "  cifar10        DIR holds data_batch_1..5.bin and test_batch.bin (binary version)\n"
    "  cifar100       DIR holds train.bin and test.bin; fine labels, or --coarse for the 20 superclasses\n"
    "  mnist          DIR holds {train,t10k}-{images-idx3,labels-idx1}-ubyte, gzip (.gz) or plain\n"
    "  fashion-mnist  same file names as mnist\n"
    "  --force        replace OUT.h5 if it exists\n";

int main(int argc, char **argv) {
    H5dont_atexit(); /* as feed_mpi (src/app/feed_mpi_main.c) */
    feed_set_program_name("feed_convert");
    const char *positional[3] = {NULL, NULL, NULL};
    int npos = 0;
    bool force = false, coarse = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--force") == 0) force = true;
        else if (strcmp(argv[i], "--coarse") == 0) coarse = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return FEED_EXIT_OK;
        } else if (argv[i][0] == '-' && argv[i][1] != 0) {
            fputs(usage, stderr);
            FEED_INPUT_ERROR("see the usage above", "unknown option '%s'", argv[i]);
        } else if (npos < 3) positional[npos++] = argv[i];
        else {
            fputs(usage, stderr);
            FEED_INPUT_ERROR("see the usage above", "unexpected argument '%s'", argv[i]);
        }
    }
    if (npos != 3) {
        fputs(usage, stderr);
        FEED_INPUT_ERROR("see the usage above", "expected a format, a folder and an output file");
    }
    const char *format = positional[0], *dir = positional[1], *out = positional[2];
    if (coarse && strcmp(format, "cifar100") != 0)
        FEED_INPUT_ERROR("--coarse selects CIFAR-100's superclasses", "--coarse does not apply to %s", format);
    /* Refuse early, before reading hundreds of megabytes (the writer checks again). */
    if (!force && access(out, F_OK) == 0)
        FEED_INPUT_ERROR("pass --force to replace it, or choose another name", "'%s' already exists", out);

    feed_dataset *ds = NULL;
    if (strcmp(format, "cifar10") == 0) ds = feed_read_cifar10(dir, true);
    else if (strcmp(format, "cifar100") == 0) ds = feed_read_cifar100(dir, coarse, true);
    else if (strcmp(format, "mnist") == 0) ds = feed_read_mnist(dir, false, true);
    else if (strcmp(format, "fashion-mnist") == 0) ds = feed_read_mnist(dir, true, true);
    else {
        fputs(usage, stderr);
        FEED_INPUT_ERROR("formats: cifar10, cifar100, mnist, fashion-mnist", "unknown format '%s'", format);
    }
    feed_dataset_compute_stats(ds);
    fprintf(stderr, "feed_convert: %s: %d classes, mean", ds->name, ds->num_classes);
    for (int c = 0; c < ds->channels; c++) fprintf(stderr, " %.6f", ds->mean[c]);
    fprintf(stderr, ", std");
    for (int c = 0; c < ds->channels; c++) fprintf(stderr, " %.6f", ds->std[c]);
    fputc('\n', stderr);
    feed_dataset_write(ds, out, force, true);
    feed_dataset_close(ds);
    return FEED_EXIT_OK;
}
