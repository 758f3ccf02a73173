/* feed_convert - convert an official image-classification release or a folder of images into
 * a feed_mpi data-set file (layout in docs/data.md).
 *
 *   feed_convert cifar10|cifar100|mnist|fashion-mnist DIR OUT.h5 [--force] [--coarse]
 *   feed_convert imagefolder DIR OUT.h5 [--size S] [--grey | --rgb] [--skip-bad]
 *                [--val-fraction F [--seed N]] [--test-split NAME] [--name NAME] [--force]
 *
 * Every input file is validated before anything is written; the output appears atomically
 * (OUT.h5.tmp + rename) or not at all. Exit codes: 0 done, 2 bad input, 1 other failure. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "feed/check.h"
#include "feed/dataset.h"

static const char usage[] =
    "usage: feed_convert FORMAT DIR OUT.h5 [options]\n"
    "  cifar10        DIR holds data_batch_1..5.bin and test_batch.bin (binary version)\n"
    "  cifar100       DIR holds train.bin and test.bin; fine labels, or --coarse for the 20 superclasses\n"
    "  mnist          DIR holds {train,t10k}-{images-idx3,labels-idx1}-ubyte, gzip (.gz) or plain\n"
    "  fashion-mnist  same file names as mnist\n"
    "  imagefolder    DIR/train/<class>/*.png|jpg and DIR/test/<class>/... (or val/), or DIR/<class>/...\n"
    "                 with --val-fraction; classes are the sorted folder names (torchvision ImageFolder)\n"
    "  --force        replace OUT.h5 if it exists\n"
    "imagefolder options:\n"
    "  --size S            resize the shorter side to S and crop the centre S x S (torchvision Resize +\n"
    "                      CenterCrop, PIL bilinear); without it every image must have the same size\n"
    "  --grey | --rgb      channels of the output (default: grey if every image is grey, else RGB)\n"
    "  --skip-bad          skip unreadable and non-image files (listed) instead of refusing the folder\n"
    "  --val-fraction F    hold out the fraction F of each class as the test split (folders of one split)\n"
    "  --seed N            seed of that hold-out (default 0)\n"
    "  --test-split NAME   the test folder beside train/ (default: test/ or val/)\n"
    "  --name NAME         the data set's name (default: DIR's base name)\n";

/* The value after option argv[*i]; a missing one is a usage error. */
static const char *option_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        fputs(usage, stderr);
        FEED_INPUT_ERROR("see the usage above", "option %s needs a value", argv[*i]);
    }
    return argv[++*i];
}

static long parse_int(const char *option, const char *text, long lo, long hi) {
    char *end;
    long v = strtol(text, &end, 10);
    if (!*text || *end || v < lo || v > hi)
        FEED_INPUT_ERROR(feed_fmt("give an integer in [%ld, %ld]", lo, hi), "%s '%s' is not valid", option, text);
    return v;
}

static double parse_fraction(const char *option, const char *text) {
    char *end;
    double v = strtod(text, &end);
    if (!*text || *end || !(v > 0 && v < 1))
        FEED_INPUT_ERROR("give a fraction strictly between 0 and 1, e.g. 0.1", "%s '%s' is not valid", option, text);
    return v;
}

int main(int argc, char **argv) {
    H5dont_atexit(); /* as feed_mpi (src/app/feed_mpi_main.c) */
    feed_set_program_name("feed_convert");
    const char *positional[3] = {NULL, NULL, NULL};
    int npos = 0;
    bool force = false, coarse = false, folder_option = false;
    feed_imagefolder_options folder = {.progress = true};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool for_folder = true;
        if (strcmp(a, "--force") == 0) force = true, for_folder = false;
        else if (strcmp(a, "--coarse") == 0) coarse = true, for_folder = false;
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return FEED_EXIT_OK;
        } else if (strcmp(a, "--size") == 0) folder.size = (int)parse_int(a, option_value(argc, argv, &i), 1, FEED_MAX_SIDE);
        else if (strcmp(a, "--grey") == 0 || strcmp(a, "--gray") == 0 || strcmp(a, "--rgb") == 0) {
            int c = a[2] == 'r' ? 3 : 1;
            if (folder.channels && folder.channels != c)
                FEED_INPUT_ERROR("choose one of them", "--grey and --rgb both given");
            folder.channels = c;
        } else if (strcmp(a, "--skip-bad") == 0) folder.skip_bad = true;
        else if (strcmp(a, "--val-fraction") == 0) folder.val_fraction = parse_fraction(a, option_value(argc, argv, &i));
        else if (strcmp(a, "--seed") == 0) folder.seed = (uint64_t)parse_int(a, option_value(argc, argv, &i), 0, 2147483647L);
        else if (strcmp(a, "--test-split") == 0) folder.test_split = option_value(argc, argv, &i);
        else if (strcmp(a, "--name") == 0) folder.name = option_value(argc, argv, &i);
        else if (a[0] == '-' && a[1] != 0) {
            fputs(usage, stderr);
            FEED_INPUT_ERROR("see the usage above", "unknown option '%s'", a);
        } else if (npos < 3) positional[npos++] = a, for_folder = false;
        else {
            fputs(usage, stderr);
            FEED_INPUT_ERROR("see the usage above", "unexpected argument '%s'", a);
        }
        if (for_folder) folder_option = true;
    }
    if (npos != 3) {
        fputs(usage, stderr);
        FEED_INPUT_ERROR("see the usage above", "expected a format, a folder and an output file");
    }
    const char *format = positional[0], *dir = positional[1], *out = positional[2];
    if (coarse && strcmp(format, "cifar100") != 0)
        FEED_INPUT_ERROR("--coarse selects CIFAR-100's superclasses", "--coarse does not apply to %s", format);
    if (folder_option && strcmp(format, "imagefolder") != 0)
        FEED_INPUT_ERROR("--size, --grey, --rgb, --skip-bad, --val-fraction, --seed, --test-split and --name are "
                         "options of imagefolder",
                         "an imagefolder option was given for %s", format);
    /* Refuse early, before reading hundreds of megabytes (the writer checks again). */
    if (!force && access(out, F_OK) == 0)
        FEED_INPUT_ERROR("pass --force to replace it, or choose another name", "'%s' already exists", out);
    if (strcmp(format, "imagefolder") == 0) {
        folder.overwrite = force;
        feed_convert_imagefolder(dir, out, &folder);
        return FEED_EXIT_OK;
    }

    feed_dataset *ds = NULL;
    if (strcmp(format, "cifar10") == 0) ds = feed_read_cifar10(dir, true);
    else if (strcmp(format, "cifar100") == 0) ds = feed_read_cifar100(dir, coarse, true);
    else if (strcmp(format, "mnist") == 0) ds = feed_read_mnist(dir, false, true);
    else if (strcmp(format, "fashion-mnist") == 0) ds = feed_read_mnist(dir, true, true);
    else {
        fputs(usage, stderr);
        FEED_INPUT_ERROR("formats: cifar10, cifar100, mnist, fashion-mnist, imagefolder", "unknown format '%s'", format);
    }
    feed_dataset_compute_stats(ds);
    fprintf(stderr, "feed_convert: %s: %d classes\n", ds->name, ds->num_classes);
    feed_dataset_write(ds, out, force, true);
    feed_dataset_close(ds);
    return FEED_EXIT_OK;
}
