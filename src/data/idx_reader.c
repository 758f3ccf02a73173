/* idx_reader.c - MNIST and Fashion-MNIST in the IDX format (http://yann.lecun.com/exdb/mnist/),
 * gzip-compressed or plain (zlib reads both).
 *
 * IDX: magic 0x00 0x00 <type> <ndim>, then ndim big-endian uint32 sizes, then the data.
 * Images: type 0x08 (unsigned byte), 3 dims (N, rows, cols). Labels: type 0x08, 1 dim (N). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "convert_internal.h"
#include "feed/check.h"
#include "feed/dataset.h"

enum { IDX_TYPE_UBYTE = 0x08, IDX_MAX_SIDE = 4096 };

static const char *const mnist_classes[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
static const char *const fashion_classes[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                                "Coat",        "Sandal",  "Shirt",    "Sneaker",
                                                "Bag",         "Ankle boot"};

typedef struct idx_array {
    int ndim;
    int64_t dims[3];
    uint8_t *data; /* dims[0] x dims[1] x ... */
} idx_array;

static const char *gz_problem(gzFile gz) {
    int code = 0;
    const char *msg = gzerror(gz, &code);
    return code != Z_OK && msg && *msg ? msg : "unexpected end of file";
}

/* Read exactly n bytes or report a truncated/corrupt file. */
static void gz_read_exact(gzFile gz, const char *path, void *dst, int64_t n, const char *part) {
    uint8_t *p = dst;
    int64_t done = 0;
    while (done < n) {
        unsigned want = (unsigned)(n - done > (1 << 30) ? (1 << 30) : n - done);
        int got = gzread(gz, p + done, want);
        if (got <= 0)
            FEED_INPUT_ERROR("the file is truncated or corrupt: download it again",
                             "'%s': %s ends after %lld of %lld bytes (%s)", path, part,
                             (long long)done, (long long)n, gz_problem(gz));
        done += got;
    }
}

static void idx_read(const char *path, int ndim, idx_array *out) {
    gzFile gz = gzopen(path, "rb");
    if (!gz) FEED_INPUT_ERROR("check the path and permissions", "cannot open '%s'", path);
    gzbuffer(gz, 1 << 17);
    uint8_t head[4 + 4 * 3];
    gz_read_exact(gz, path, head, 4, "the IDX header");
    uint32_t magic = (uint32_t)head[0] << 24 | (uint32_t)head[1] << 16 | (uint32_t)head[2] << 8 | head[3];
    uint32_t expected = (uint32_t)IDX_TYPE_UBYTE << 8 | (uint32_t)ndim;
    if (magic != expected)
        FEED_INPUT_ERROR(ndim == 3 ? "expected an images file (*-images-idx3-ubyte[.gz])"
                                   : "expected a labels file (*-labels-idx1-ubyte[.gz])",
                         "'%s': wrong magic number 0x%08x, expected 0x%08x (IDX, unsigned bytes, "
                         "%d dimension%s)",
                         path, magic, expected, ndim, ndim > 1 ? "s" : "");
    gz_read_exact(gz, path, head + 4, 4 * ndim, "the IDX header");
    out->ndim = ndim;
    int64_t total = 1;
    for (int d = 0; d < ndim; d++) {
        const uint8_t *b = head + 4 + 4 * d;
        out->dims[d] = (int64_t)((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]);
        int64_t limit = d == 0 ? INT32_MAX : IDX_MAX_SIDE;
        if (out->dims[d] < 1 || out->dims[d] > limit)
            FEED_INPUT_ERROR("the header is corrupt", "'%s': dimension %d is %lld (allowed 1..%lld)",
                             path, d, (long long)out->dims[d], (long long)limit);
        total *= out->dims[d];
    }
    out->data = feed_xmalloc((size_t)total, feed_fmt("IDX data of %s", path));
    gz_read_exact(gz, path, out->data, total, "the data");
    uint8_t extra;
    int after = gzread(gz, &extra, 1);
    if (after < 0)
        FEED_INPUT_ERROR("the file is truncated or corrupt: download it again",
                         "'%s': damaged after the data (%s)", path, gz_problem(gz));
    if (after > 0)
        FEED_INPUT_ERROR("the header's sizes do not match the data: wrong record size or not an IDX file",
                         "'%s': extra bytes after the %lld data bytes the header announces", path,
                         (long long)total);
    gzclose(gz);
}

/* DIR/base.gz, else DIR/base; missing both is a user-input error. malloc'ed. */
static char *idx_find(const char *dir, const char *base) {
    char *gz_name = feed_xstrdup(feed_fmt("%s.gz", base));
    char *with_gz = feed_path_join(dir, gz_name);
    free(gz_name);
    if (feed_is_file(with_gz)) return with_gz;
    char *plain = feed_path_join(dir, base);
    if (feed_is_file(plain)) {
        free(with_gz);
        return plain;
    }
    FEED_INPUT_ERROR("the folder must hold the four IDX files {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]",
                     "missing file: neither '%s' nor '%s' exists", with_gz, plain);
}

static void idx_read_split(feed_dataset **ds_io, const char *dir, const char *prefix, bool fashion,
                           feed_split split, bool progress) {
    char *img_path = idx_find(dir, feed_fmt("%s-images-idx3-ubyte", prefix));
    char *lab_path = idx_find(dir, feed_fmt("%s-labels-idx1-ubyte", prefix));
    idx_array images, labels;
    idx_read(img_path, 3, &images);
    idx_read(lab_path, 1, &labels);
    if (images.dims[0] != labels.dims[0])
        FEED_INPUT_ERROR("the images and labels files must come from the same release",
                         "'%s' holds %lld images but '%s' holds %lld labels", img_path,
                         (long long)images.dims[0], lab_path, (long long)labels.dims[0]);
    feed_dataset *ds = *ds_io;
    if (!ds) {
        ds = feed_dataset_new(fashion ? "fashion-mnist" : "mnist", 10, (int)images.dims[1],
                              (int)images.dims[2], 1);
        feed_dataset_set_class_names(ds, fashion ? fashion_classes : mnist_classes);
        *ds_io = ds;
    } else if (images.dims[1] != ds->height || images.dims[2] != ds->width) {
        FEED_INPUT_ERROR("training and test images must have the same size",
                         "'%s' holds %lldx%lld images, the training set %dx%d", img_path,
                         (long long)images.dims[1], (long long)images.dims[2], ds->height, ds->width);
    }
    const int64_t n = images.dims[0];
    for (int64_t i = 0; i < n; i++)
        if (labels.data[i] >= 10)
            FEED_INPUT_ERROR("the labels file is corrupt", "'%s': label %lld is %d, out of range [0, 10)",
                             lab_path, (long long)i, labels.data[i]);
    feed_dataset_alloc_split(ds, split, n);
    memcpy(ds->split[split].images, images.data, (size_t)(n * feed_dataset_image_bytes(ds)));
    for (int64_t i = 0; i < n; i++) ds->split[split].labels[i] = labels.data[i];
    feed_dataset_add_source(ds, img_path);
    feed_dataset_add_source(ds, lab_path);
    if (progress)
        fprintf(stderr, "feed_convert: read %s and %s: %lld images %lldx%lld (%s)\n", img_path,
                lab_path, (long long)n, (long long)images.dims[1], (long long)images.dims[2],
                feed_split_name(split));
    free(images.data);
    free(labels.data);
    free(img_path);
    free(lab_path);
}

feed_dataset *feed_read_mnist(const char *dir, bool fashion, bool progress) {
    feed_require_dir(dir, "give the folder that holds the four IDX files");
    feed_dataset *ds = NULL;
    idx_read_split(&ds, dir, "train", fashion, FEED_SPLIT_TRAIN, progress);
    idx_read_split(&ds, dir, "t10k", fashion, FEED_SPLIT_TEST, progress);
    return ds;
}
