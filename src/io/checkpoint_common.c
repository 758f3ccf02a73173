/* checkpoint_common.c - dtype names, shapes, key -> HDF5 path, CRC32 and error text, shared
 * by the checkpoint writer, reader and run-folder code. */
#include "checkpoint_internal.h"

#include "feed/check.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* The stored checksums are defined over little-endian bytes; on such a host that is simply the
 * buffer. A big-endian port would byte-swap a copy before feed_ckpt_crc32. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "feed_mpi checkpoints assume a little-endian host (see feed_ckpt_crc32)"
#endif

const char *const feed_ckpt_reserved_attrs[] = {
    "format", "format_version", "arch",   "dataset",    "num_classes", "in_channels", "epoch",
    "step",   "seed",           "config_ini", "created_by", "created_at", FEED_CKPT_COMPLETE_ATTR,
    FEED_CKPT_CRC_ATTR, NULL,
};

const char *feed_ckpt_dtype_name(feed_ckpt_dtype dtype) {
    switch (dtype) {
    case FEED_CKPT_F32: return "float32";
    case FEED_CKPT_F64: return "float64";
    case FEED_CKPT_I32: return "int32";
    case FEED_CKPT_I64: return "int64";
    case FEED_CKPT_U8: return "uint8";
    case FEED_CKPT_U32: return "uint32";
    case FEED_CKPT_U64: return "uint64";
    case FEED_CKPT_UNSUPPORTED: break;
    }
    return "unsupported type";
}

size_t feed_ckpt_dtype_size(feed_ckpt_dtype dtype) {
    switch (dtype) {
    case FEED_CKPT_U8: return 1;
    case FEED_CKPT_F32:
    case FEED_CKPT_I32:
    case FEED_CKPT_U32: return 4;
    case FEED_CKPT_F64:
    case FEED_CKPT_I64:
    case FEED_CKPT_U64: return 8;
    case FEED_CKPT_UNSUPPORTED: break;
    }
    return 0;
}

int64_t feed_ckpt_shape_numel(const feed_ckpt_shape *shape) {
    int64_t n = 1;
    for (int i = 0; i < shape->rank; i++) n *= shape->dims[i];
    return n;
}

bool feed_ckpt_shape_valid(const feed_ckpt_shape *shape) {
    int64_t bytes = (int64_t)feed_ckpt_dtype_size(shape->dtype);
    if (bytes == 0) return false;
    if (shape->rank < 0 || shape->rank > FEED_CKPT_MAX_RANK) return false;
    /* the byte size must be a valid object size (so numel and allocations cannot overflow) */
    for (int i = 0; i < shape->rank; i++) {
        if (shape->dims[i] < 0 || (shape->dims[i] > 0 && bytes > PTRDIFF_MAX / shape->dims[i])) return false;
        bytes *= shape->dims[i];
    }
    return true;
}

bool feed_ckpt_shape_equal(const feed_ckpt_shape *a, const feed_ckpt_shape *b) {
    if (a->dtype != b->dtype || a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i]) return false;
    return true;
}

const char *feed_ckpt_shape_str(const feed_ckpt_shape *shape, char *buf, size_t cap) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < shape->rank && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%" PRId64, i ? ", " : "", shape->dims[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

const char *feed_ckpt_shape_dtype_str(const feed_ckpt_shape *shape, char *buf, size_t cap) {
    char dims[256];
    snprintf(buf, cap, "%s %s", feed_ckpt_shape_str(shape, dims, sizeof dims),
             feed_ckpt_dtype_name(shape->dtype));
    return buf;
}

char *feed_ckpt_object_path(const char *group, const char *key, const char **why) {
    if (!group) group = "";
    if (!key) key = "";
    size_t glen = strlen(group), klen = strlen(key);
    char *path = feed_xmalloc(glen + klen + 2, "checkpoint object path");
    size_t n = 0;
    /* group/key with '.' -> '/' in the key; leading and trailing '/' of each part dropped */
    for (size_t i = 0; i < glen; i++) path[n++] = group[i];
    while (n > 0 && path[n - 1] == '/') n--;
    if (n > 0 && klen > 0) path[n++] = '/';
    for (size_t i = 0; i < klen; i++) path[n++] = key[i] == '.' ? '/' : key[i];
    path[n] = 0;
    char *start = path;
    while (*start == '/') start++;
    memmove(path, start, strlen(start) + 1);
    n = strlen(path);
    while (n > 0 && path[n - 1] == '/') path[--n] = 0;

    *why = NULL;
    if (n == 0) *why = "the name is empty";
    else if (strstr(path, "//")) *why = "it has an empty component ('a..b' or 'a//b')";
    if (*why) {
        free(path);
        return NULL;
    }
    return path;
}

uint32_t feed_ckpt_crc32(const void *data, size_t n) {
    uLong crc = crc32(0L, Z_NULL, 0);
    const unsigned char *p = data;
    while (n > 0) { /* zlib takes uInt lengths: feed it in 1 GiB pieces */
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return (uint32_t)crc;
}

int feed_ckpt_set_error(feed_ckpt_error *err, const char *hint, const char *fmt, ...) {
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    snprintf(err->hint, sizeof err->hint, "%s", hint ? hint : "");
    return -1;
}
