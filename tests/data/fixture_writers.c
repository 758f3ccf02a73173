/* fixture_writers.c - see fixture_writers.h */
#define _POSIX_C_SOURCE 200809L
#include "fixture_writers.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "feed/rng.h"
#include "feed_test.h"

uint8_t fx_pixel(int s, int64_t n, int y, int x, int c) {
    uint64_t index = ((((uint64_t)s * 100000 + (uint64_t)n) * 64 + (uint64_t)y) * 64 + (uint64_t)x) * 4 + (uint64_t)c;
    return (uint8_t)feed_rng_u32(7, FEED_RNG_TEST, index);
}

void fx_append(fx_buf *b, const void *data, size_t len) {
    b->data = realloc(b->data, b->len + len);
    if (!b->data) abort();
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

void fx_free(fx_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

void fx_cifar_record(fx_buf *b, const uint8_t *label_bytes, int num_label_bytes, int s, int64_t n) {
    uint8_t rec[2 + 3072];
    memcpy(rec, label_bytes, (size_t)num_label_bytes);
    uint8_t *planes = rec + num_label_bytes; /* R plane, G plane, B plane; rows of 32 */
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++) planes[c * 1024 + y * 32 + x] = fx_pixel(s, n, y, x, c);
    fx_append(b, rec, (size_t)num_label_bytes + 3072);
}

static void put_be32(fx_buf *b, uint32_t v) {
    uint8_t w[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    fx_append(b, w, 4);
}

void fx_idx_images(fx_buf *b, int s, int n, int rows, int cols) {
    put_be32(b, 0x00000803);
    put_be32(b, (uint32_t)n);
    put_be32(b, (uint32_t)rows);
    put_be32(b, (uint32_t)cols);
    for (int i = 0; i < n; i++)
        for (int y = 0; y < rows; y++)
            for (int x = 0; x < cols; x++) {
                uint8_t v = fx_pixel(s, i, y, x, 0);
                fx_append(b, &v, 1);
            }
}

void fx_idx_labels(fx_buf *b, const uint8_t *labels, int n) {
    put_be32(b, 0x00000801);
    put_be32(b, (uint32_t)n);
    fx_append(b, labels, (size_t)n);
}

void fx_write(const char *path, const fx_buf *b, bool gzip) {
    if (!gzip) {
        feed_test_write_file(path, b->data, b->len);
        return;
    }
    gzFile gz = gzopen(path, "wb");
    if (!gz || gzwrite(gz, b->data, (unsigned)b->len) != (int)b->len || gzclose(gz) != Z_OK)
        feed_test_fail(__FILE__, __LINE__, "cannot write gzip file %s", path);
}

void fx_mkdir(const char *path) {
    if (mkdir(path, 0755) != 0 && errno != EEXIST) feed_test_fail(__FILE__, __LINE__, "mkdir %s", path);
}

void fx_remove_tree(const char *path) {
    DIR *d = opendir(path);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        struct stat st;
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode)) fx_remove_tree(sub);
        else unlink(sub);
    }
    closedir(d);
    rmdir(path);
}

bool fx_exists(const char *path) { return access(path, F_OK) == 0; }
