/* cifar_reader.c - the official CIFAR-10 and CIFAR-100 binary releases
 * (https://www.cs.toronto.edu/~kriz/cifar.html, "binary version").
 *
 * A file is a sequence of records: label byte(s), then 3072 pixel bytes = 3 planes
 * (R, G, B) of 32 rows of 32. CIFAR-10 records have 1 label byte (0..9); CIFAR-100 records
 * have 2: coarse (0..19) then fine (0..99). Images are stored here as H x W x C. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert_internal.h"
#include "feed/check.h"
#include "feed/dataset.h"

enum { CIFAR_SIDE = 32, CIFAR_PLANE = 32 * 32, CIFAR_PIXELS = 3 * 32 * 32 };

static const char *const cifar10_classes[10] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                                "dog",      "frog",       "horse", "ship", "truck"};

static const char *const cifar100_coarse_classes[20] = {
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
    "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores", "medium_mammals", "non-insect_invertebrates", "people",
    "reptiles", "small_mammals", "trees", "vehicles_1", "vehicles_2"};

static const char *const cifar100_fine_classes[100] = {
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
    "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm"};

/* The record layout of one release. */
typedef struct cifar_format {
    const char *release;   /* for messages */
    int label_bytes;       /* 1 (CIFAR-10) or 2 (CIFAR-100) */
    int label_limit[2];    /* exclusive upper bound of each label byte */
    int label_used;        /* which label byte becomes the class */
} cifar_format;

/* Records in a file, after checking its size is a whole number of records. */
static int64_t cifar_record_count(const char *path, const cifar_format *fmt) {
    const int64_t record = fmt->label_bytes + CIFAR_PIXELS;
    int64_t size = feed_file_size(path, feed_fmt("%s file", fmt->release));
    if (size == 0) FEED_INPUT_ERROR("the file is empty: download it again", "'%s' is empty", path);
    if (size % record != 0)
        FEED_INPUT_ERROR(fmt->label_bytes == 1
                             ? "a CIFAR-10 record is 1 label byte + 3072 pixel bytes; is this a "
                               "CIFAR-100 file, or truncated?"
                             : "a CIFAR-100 record is 2 label bytes + 3072 pixel bytes; is this a "
                               "CIFAR-10 file, or truncated?",
                         "'%s': size %lld bytes is not a whole number of %lld-byte %s records "
                         "(%lld records + %lld bytes)",
                         path, (long long)size, (long long)record, fmt->release,
                         (long long)(size / record), (long long)(size % record));
    return size / record;
}

/* Read `count` records of `path` into images/labels of split starting at image `first`. */
static void cifar_read_file(const char *path, const cifar_format *fmt, int64_t count,
                            feed_dataset *ds, feed_split split, int64_t first) {
    FILE *f = fopen(path, "rb");
    if (!f) FEED_INPUT_ERROR("check the path and permissions", "cannot open '%s': %s", path, strerror(errno));
    uint8_t rec[2 + CIFAR_PIXELS];
    const size_t record = (size_t)fmt->label_bytes + CIFAR_PIXELS;
    for (int64_t i = 0; i < count; i++) {
        if (fread(rec, 1, record, f) != record)
            FEED_INPUT_ERROR("was the file changed during the conversion?",
                             "'%s': short read at record %lld", path, (long long)i);
        for (int b = 0; b < fmt->label_bytes; b++)
            if (rec[b] >= fmt->label_limit[b])
                FEED_INPUT_ERROR("the file is corrupt or not a CIFAR binary file of this release",
                                 "'%s': record %lld: label %d out of range [0, %d) (%s label byte %d)",
                                 path, (long long)i, rec[b], fmt->label_limit[b], fmt->release, b);
        ds->split[split].labels[first + i] = rec[fmt->label_used];
        const uint8_t *planes = rec + fmt->label_bytes; /* 3 x 32 x 32 */
        uint8_t *img = ds->split[split].images + (first + i) * CIFAR_PIXELS; /* 32 x 32 x 3 */
        for (int p = 0; p < CIFAR_PLANE; p++)
            for (int c = 0; c < 3; c++) img[p * 3 + c] = planes[c * CIFAR_PLANE + p];
    }
    fclose(f);
}

/* Read a list of files into one split. */
static void cifar_read_split(const char *dir, const char *const *names, int num_files,
                             const cifar_format *fmt, feed_dataset *ds, feed_split split,
                             bool progress) {
    char **paths = feed_xcalloc((size_t)num_files, sizeof(char *), "paths");
    int64_t *counts = feed_xcalloc((size_t)num_files, sizeof(int64_t), "record counts");
    int64_t total = 0;
    for (int i = 0; i < num_files; i++) {
        paths[i] = feed_path_join(dir, names[i]);
        counts[i] = cifar_record_count(paths[i], fmt);
        total += counts[i];
    }
    feed_dataset_alloc_split(ds, split, total);
    int64_t first = 0;
    for (int i = 0; i < num_files; i++) {
        cifar_read_file(paths[i], fmt, counts[i], ds, split, first);
        first += counts[i];
        feed_dataset_add_source(ds, paths[i]);
        if (progress)
            fprintf(stderr, "feed_convert: read %s: %lld images (%s %lld/%lld)\n", paths[i],
                    (long long)counts[i], feed_split_name(split), (long long)first, (long long)total);
        free(paths[i]);
    }
    free(paths);
    free(counts);
}

feed_dataset *feed_read_cifar10(const char *dir_arg, bool progress) {
    static const char *const train_files[] = {"data_batch_1.bin", "data_batch_2.bin",
                                              "data_batch_3.bin", "data_batch_4.bin",
                                              "data_batch_5.bin"};
    static const char *const test_files[] = {"test_batch.bin"};
    const cifar_format fmt = {"CIFAR-10", 1, {10, 0}, 0};
    char *dir = feed_find_source_dir(dir_arg, "cifar-10-batches-bin", train_files[0],
                                     "unpack cifar-10-binary.tar.gz and give its folder");
    feed_dataset *ds = feed_dataset_new("cifar10", 10, CIFAR_SIDE, CIFAR_SIDE, 3);
    feed_dataset_set_class_names(ds, cifar10_classes);
    cifar_read_split(dir, train_files, 5, &fmt, ds, FEED_SPLIT_TRAIN, progress);
    cifar_read_split(dir, test_files, 1, &fmt, ds, FEED_SPLIT_TEST, progress);
    free(dir);
    return ds;
}

feed_dataset *feed_read_cifar100(const char *dir_arg, bool coarse, bool progress) {
    static const char *const train_files[] = {"train.bin"};
    static const char *const test_files[] = {"test.bin"};
    const cifar_format fmt = {"CIFAR-100", 2, {20, 100}, coarse ? 0 : 1};
    char *dir = feed_find_source_dir(dir_arg, "cifar-100-binary", train_files[0],
                                     "unpack cifar-100-binary.tar.gz and give its folder");
    feed_dataset *ds = feed_dataset_new(coarse ? "cifar100-coarse" : "cifar100", coarse ? 20 : 100,
                                        CIFAR_SIDE, CIFAR_SIDE, 3);
    feed_dataset_set_class_names(ds, coarse ? cifar100_coarse_classes : cifar100_fine_classes);
    cifar_read_split(dir, train_files, 1, &fmt, ds, FEED_SPLIT_TRAIN, progress);
    cifar_read_split(dir, test_files, 1, &fmt, ds, FEED_SPLIT_TEST, progress);
    free(dir);
    return ds;
}
