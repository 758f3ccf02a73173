/* dataset.h - image classification data sets held in memory as uint8, and their HDF5 file.
 *
 * File layout (docs/data.md has the full description and an h5py snippet):
 *   /train/images  uint8  N x H x W x C   (row-major, channels last, as in the sources)
 *   /train/labels  int32  N               (0 <= label < num_classes)
 *   /test/images, /test/labels            (same H, W, C)
 *   root attributes: format, format_version, name, num_classes, class_names, mean, std,
 *                    source_files, source_sha256, created_by
 *
 * A feed_dataset is read once and kept as uint8 (CIFAR-10: 184 MB per process); the
 * loader (loader.h) turns samples into normalised float batches on demand.
 *
 * The converters at the end of this header read the official release formats
 * (CIFAR-10/100 binary, MNIST/Fashion-MNIST IDX) into a feed_dataset that
 * feed_dataset_write() stores; that is what the feed_convert program does.
 */
#ifndef FEED_DATASET_H
#define FEED_DATASET_H

#include <stdbool.h>
#include <stdint.h>

#define FEED_DATASET_FORMAT "feed_mpi_dataset"
#define FEED_DATASET_FORMAT_VERSION 1
#define FEED_MAX_CHANNELS 4
#define FEED_MAX_SIDE 4096 /* image height and width: the loader's augmentation handles up to this */

typedef enum feed_split { FEED_SPLIT_TRAIN = 0, FEED_SPLIT_TEST = 1 } feed_split;
#define FEED_NUM_SPLITS 2

/* One split's arrays. */
typedef struct feed_split_data {
    int64_t n;       /* number of images N */
    uint8_t *images; /* N x H x W x C */
    int32_t *labels; /* N */
} feed_split_data;

/* A whole data set. Fields are read-only for users of feed_dataset_open(); converters and
 * tests fill them after feed_dataset_new() / feed_dataset_alloc_split(). */
typedef struct feed_dataset {
    char *name;        /* "cifar10", "fashion-mnist", ... */
    int num_classes;   /* K */
    char **class_names; /* K strings */
    int height, width, channels; /* H, W, C (C <= FEED_MAX_CHANNELS) */
    /* Per-channel mean and (population) standard deviation of pixel/255 over the training
     * split; the loader normalises with these. */
    float mean[FEED_MAX_CHANNELS];
    float std[FEED_MAX_CHANNELS];
    feed_split_data split[FEED_NUM_SPLITS]; /* indexed by feed_split */
    int num_sources;       /* input files the set was converted from */
    char **source_files;   /* their base names */
    char **source_sha256;  /* SHA-256 of each file's bytes as stored (64 hex digits) */
    char *path;            /* the file it was opened from; NULL for an in-memory set */
} feed_dataset;

/* --- reading --- */

/* Open a data-set file read-only, validate its layout (datasets, shapes, types, attributes,
 * label range) and read both splits into memory. A missing file, missing dataset or wrong
 * shape ends the program with exit code 2 and a message naming the file and the object. */
feed_dataset *feed_dataset_open(const char *path);
void feed_dataset_close(feed_dataset *ds); /* frees everything; NULL is fine */

/* Bytes of one image (H*W*C) and a pointer to image i of a split (H x W x C). */
int64_t feed_dataset_image_bytes(const feed_dataset *ds);
const uint8_t *feed_dataset_image(const feed_dataset *ds, feed_split split, int64_t i);
const char *feed_split_name(feed_split split); /* "train" / "test" */

/* --- building and writing --- */

/* An empty set (no images yet, class names "0".."K-1", mean 0, std 1). */
feed_dataset *feed_dataset_new(const char *name, int num_classes, int height, int width,
                               int channels);
/* Allocate split arrays for n images (zeroed); replaces any previous arrays. */
void feed_dataset_alloc_split(feed_dataset *ds, feed_split split, int64_t n);
/* Replace the class names (names[0..num_classes-1] are copied). */
void feed_dataset_set_class_names(feed_dataset *ds, const char *const *names);
/* Record an input file: its base name and the SHA-256 of its bytes. */
void feed_dataset_add_source(feed_dataset *ds, const char *path);
/* Set mean/std from the training split (exact: per-channel histograms of the uint8 values). */
void feed_dataset_compute_stats(feed_dataset *ds);
/* Labels of a split outside [0, num_classes): returns the first bad index or -1. */
int64_t feed_dataset_find_bad_label(const feed_dataset *ds, feed_split split);

/* Write ds to `path` atomically: the file is written as `path`.tmp, flushed to disk and
 * renamed, so a reader (or a crash) never sees a half-written file. If `path` exists and
 * overwrite is false, nothing is written and the program ends with exit code 2. mean/std are
 * written as they are in ds (call feed_dataset_compute_stats first). progress: stages on stderr. */
void feed_dataset_write(const feed_dataset *ds, const char *path, bool overwrite, bool progress);

/* SHA-256 of a file's bytes as 64 lowercase hex digits + NUL. */
void feed_sha256_file(const char *path, char hex_out[65]);
/* SHA-256 of a memory block. */
void feed_sha256(const void *data, uint64_t len, char hex_out[65]);

/* --- converters from the official release formats (each validates its input: a malformed
 * file ends the program with exit code 2 naming the file, before anything is written) --- */

/* CIFAR-10 binary version: DIR (or DIR/cifar-10-batches-bin) holds data_batch_1..5.bin and
 * test_batch.bin; each record is 1 label byte + 3072 pixel bytes (1024 R, 1024 G, 1024 B, rows
 * of 32). */
feed_dataset *feed_read_cifar10(const char *dir, bool progress);
/* CIFAR-100 binary version: DIR (or DIR/cifar-100-binary) holds train.bin and test.bin; each
 * record is coarse label, fine label, 3072 pixel bytes. Fine labels (100 classes) unless
 * coarse (20 superclasses). */
feed_dataset *feed_read_cifar100(const char *dir, bool coarse, bool progress);
/* MNIST / Fashion-MNIST IDX files in DIR: {train,t10k}-{images-idx3,labels-idx1}-ubyte, each
 * gzip-compressed (.gz) or plain. fashion selects the name and the class names. */
feed_dataset *feed_read_mnist(const char *dir, bool fashion, bool progress);

/* An image folder in torchvision's ImageFolder layout -> a data-set file at `out`, streamed
 * (memory: the file list and one slab of images). Classes are the sorted names of the
 * training split's folders; DIR/train + DIR/test (or val) are the splits, or DIR's class
 * folders (or DIR/train alone) with val_fraction > 0. JPEG and PNG, by content. Every input
 * problem (no class folders, an empty class, an unreadable or non-image file without
 * skip_bad, mixed sizes without size) ends the program with exit 2 naming the file; the
 * output appears atomically or not at all. docs/data.md has the details. */
typedef struct feed_imagefolder_options {
    int size;             /* S > 0: Resize(S) + CenterCrop(S) as torchvision (PIL bilinear); 0: keep sizes */
    int channels;         /* 1 grey, 3 RGB, 0: grey if every image is grey, else RGB */
    bool skip_bad;        /* skip (and list) unreadable and non-image files instead of refusing */
    double val_fraction;  /* > 0: hold out this fraction of each class as the test split */
    uint64_t seed;        /* of the hold-out */
    const char *test_split; /* the test folder beside train/; NULL: test/ or val/, whichever exists */
    const char *name;     /* data-set name; NULL: DIR's base name */
    bool overwrite, progress;
} feed_imagefolder_options;
void feed_convert_imagefolder(const char *dir, const char *out, const feed_imagefolder_options *opt);

#endif
