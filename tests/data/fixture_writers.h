/* fixture_writers.h - small data sets written at test time in the exact official byte formats
 * (CIFAR-10/100 binary records, IDX images/labels plain or gzip), with the arrays they hold. */
#ifndef FEED_TEST_FIXTURE_WRITERS_H
#define FEED_TEST_FIXTURE_WRITERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The pixel the fixtures put at (image n, row y, column x, channel c) of split s. */
uint8_t fx_pixel(int s, int64_t n, int y, int x, int c);

/* A byte buffer being built. */
typedef struct fx_buf {
    uint8_t *data;
    size_t len;
} fx_buf;
void fx_append(fx_buf *b, const void *data, size_t len);
void fx_free(fx_buf *b);

/* CIFAR record: label bytes (1 or 2), then the image of fx_pixel(s, n) as 3 planes of 32x32. */
void fx_cifar_record(fx_buf *b, const uint8_t *label_bytes, int num_label_bytes, int s, int64_t n);
/* IDX images (magic 0x803, N x rows x cols of fx_pixel(s, n, y, x, 0)) and labels (0x801). */
void fx_idx_images(fx_buf *b, int s, int n, int rows, int cols);
void fx_idx_labels(fx_buf *b, const uint8_t *labels, int n);

/* Write a buffer to path, plain or gzip-compressed. */
void fx_write(const char *path, const fx_buf *b, bool gzip);
/* mkdir -p for one level, and rm -rf of a fixture folder (no shell). */
void fx_mkdir(const char *path);
void fx_remove_tree(const char *path);
bool fx_exists(const char *path);

#endif
