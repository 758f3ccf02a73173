/* ckpt_test_util.h - helpers shared by the checkpoint tests: a scratch folder, a sample
 * checkpoint with every dtype, running code in a child process to capture its error message
 * and exit code, and damaging files (flip bytes, truncate). */
#ifndef FEED_CKPT_TEST_UTIL_H
#define FEED_CKPT_TEST_UTIL_H

#include "feed/checkpoint.h"

#include <stddef.h>
#include <stdint.h>

/* A fresh folder under $TMPDIR (or /tmp): "<tmp>/feed_<name>_XXXXXX". Caller frees. */
char *test_scratch_dir(const char *name);
/* rm -r of a scratch folder (only paths made by test_scratch_dir). */
void test_remove_dir(const char *dir);

/* The sample checkpoint: a small CIFAR-ResNet-like model plus ntl, optim, train and an extra
 * group, with every supported dtype. Values are sample_value(tensor_index, i), exact in every
 * dtype, so h5py can recompute them (tests/io/h5py_check.py has the same formula). */
typedef struct {
    const char *group, *key;
    feed_ckpt_shape shape;
} sample_tensor;
extern const sample_tensor sample_tensors[];
extern const size_t sample_tensor_count;
extern const feed_ckpt_meta sample_meta; /* arch resnet20, 10 classes, 3 channels, epoch 7 */
double sample_value(size_t tensor_index, int64_t i);
/* numel * dtype size buffer filled with sample values (caller frees). */
void *sample_data(size_t tensor_index);
/* Writes the sample checkpoint to path with meta.epoch = epoch, meta.step = step. */
void write_sample_checkpoint(const char *path, int64_t epoch, int64_t step);

/* Runs fn(arg) in a forked child with stdout+stderr captured into out (NUL-terminated).
 * Returns the child's exit code, or 128 + signal. fn returning means exit code 0. */
int run_in_child(void (*fn)(void *arg), void *arg, char *out, size_t cap);

/* Damage: XOR the byte at offset with mask; cut the file to size bytes. */
void flip_byte(const char *path, long offset, unsigned char mask);
void truncate_file(const char *path, long size);
long file_size(const char *path);
bool file_exists(const char *path);
/* File offset of a contiguous dataset's first value (H5Dget_offset), for targeted damage. */
long dataset_offset(const char *path, const char *dataset);
/* Whole file content (caller frees); *size gets its length. */
unsigned char *read_whole_file(const char *path, size_t *size);

#endif
