/* fuzz_h5_build.c - HDF5 objects of input-chosen type, shape and value (fuzz_h5_build.h). */
#include "fuzz_h5_build.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WRITE_BYTES (1u << 20)

#define H5_OK(call)                                                                               \
    do {                                                                                          \
        if ((long long)(call) < 0) {                                                              \
            fprintf(stderr, "fuzz_h5_build: %s failed at %s:%d\n", #call, __FILE__, __LINE__);   \
            abort();                                                                              \
        }                                                                                         \
    } while (0)

static bool is_string(fb_type t) { return t == FB_STR_VLEN || t == FB_STR_FIXED; }

hid_t fb_h5_type(fb_type t, size_t fixed_len) {
    static const hid_t *const base[] = {
        [FB_U8] = &H5T_STD_U8LE_g,   [FB_I8] = &H5T_STD_I8LE_g,   [FB_U16] = &H5T_STD_U16LE_g,
        [FB_I32] = &H5T_STD_I32LE_g, [FB_U32] = &H5T_STD_U32LE_g, [FB_I64] = &H5T_STD_I64LE_g,
        [FB_U64] = &H5T_STD_U64LE_g, [FB_F32] = &H5T_IEEE_F32LE_g, [FB_F64] = &H5T_IEEE_F64LE_g,
    };
    hid_t type;
    if (t == FB_F16) { /* IEEE half, as numpy/h5py store float16 */
        H5_OK(type = H5Tcopy(H5T_IEEE_F32LE));
        H5_OK(H5Tset_fields(type, 15, 10, 5, 0, 10));
        H5_OK(H5Tset_precision(type, 16));
        H5_OK(H5Tset_size(type, 2));
        H5_OK(H5Tset_ebias(type, 15));
    } else if (is_string(t)) {
        H5_OK(type = H5Tcopy(H5T_C_S1));
        H5_OK(H5Tset_size(type, t == FB_STR_VLEN ? H5T_VARIABLE : (fixed_len ? fixed_len : 1)));
        H5_OK(H5Tset_cset(type, H5T_CSET_UTF8));
    } else {
        H5open(); /* the H5T_*_g globals are set when the library starts */
        H5_OK(type = H5Tcopy(*base[t]));
    }
    return type;
}

hid_t fb_space(int rank, const hsize_t *dims) {
    hid_t space;
    if (rank < 0) H5_OK(space = H5Screate(H5S_NULL));
    else if (rank == 0) H5_OK(space = H5Screate(H5S_SCALAR));
    else H5_OK(space = H5Screate_simple(rank, dims, NULL));
    return space;
}

static uint64_t count_of(int rank, const hsize_t *dims) {
    if (rank < 0) return 0;
    uint64_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] && n > UINT64_MAX / dims[i]) return UINT64_MAX;
        n *= dims[i];
    }
    return n;
}

void fb_attr(fuzz_bytes *in, hid_t obj, const char *name, fb_type t, int rank, const hsize_t *dims) {
    uint64_t n = count_of(rank, dims);
    size_t fixed_len = t == FB_STR_FIXED ? (size_t)fuzz_range(in, 1, 24) : 0;
    hid_t type = fb_h5_type(t, fixed_len), attr;
    /* attributes stay small: an object header holds at most 64 KiB of them */
    hsize_t max_n = 16384 / H5Tget_size(type);
    if (n > max_n) n = max_n, rank = 1, dims = &max_n;
    hid_t space = fb_space(rank, dims);
    H5_OK(attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT));
    if (n > 0 && t == FB_STR_VLEN) {
        char **strs = calloc(n, sizeof *strs);
        for (uint64_t i = 0; i < n; i++) strs[i] = fuzz_str(in, malloc(40), 40);
        H5_OK(H5Awrite(attr, type, strs));
        for (uint64_t i = 0; i < n; i++) free(strs[i]);
        free(strs);
    } else if (n > 0) {
        size_t bytes = (size_t)n * H5Tget_size(type);
        uint8_t *raw = calloc(bytes, 1);
        for (size_t i = 0; i < bytes && in->n; i++) raw[i] = fuzz_u8(in);
        H5_OK(H5Awrite(attr, type, raw));
        free(raw);
    }
    H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
}

void fb_attr_str(hid_t obj, const char *name, const char *value, bool vlen) {
    hid_t type = fb_h5_type(vlen ? FB_STR_VLEN : FB_STR_FIXED, strlen(value) + 1);
    hid_t space = fb_space(0, NULL), attr;
    H5_OK(attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT));
    H5_OK(H5Awrite(attr, type, vlen ? (const void *)&value : (const void *)value));
    H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
}

void fb_attr_num(hid_t obj, const char *name, fb_type t, int n, const double *values) {
    hid_t type = fb_h5_type(t, 0), space = fb_space(n == 1 ? 0 : 1, (hsize_t[]){(hsize_t)n}), attr;
    H5_OK(attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT));
    if (n > 0) H5_OK(H5Awrite(attr, H5T_NATIVE_DOUBLE, values)); /* HDF5 converts (and clips) */
    H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
}

hid_t fb_dataset(fuzz_bytes *in, hid_t loc, const char *name, fb_type t, int rank, const hsize_t *dims,
                 const void *values, size_t n) {
    size_t fixed_len = t == FB_STR_FIXED ? (size_t)fuzz_range(in, 1, 16) : 0;
    hid_t type = fb_h5_type(t, fixed_len);
    uint64_t count = count_of(rank, dims), size = H5Tget_size(type);
    bool write = count > 0 && !is_string(t) && count <= MAX_WRITE_BYTES / size;
    hid_t space, dcpl, dset;
    H5_OK(dcpl = H5Pcreate(H5P_DATASET_CREATE));
    if (write || rank <= 0) {
        space = fb_space(rank, dims);
    } else { /* declared large, stored as nothing: chunked, growable, no chunk written */
        hsize_t maxdims[H5S_MAX_RANK], chunk[H5S_MAX_RANK];
        uint64_t elems = 1;
        for (int i = 0; i < rank; i++) {
            maxdims[i] = H5S_UNLIMITED;
            chunk[i] = dims[i] < 1 ? 1 : dims[i] > 64 ? 64 : dims[i];
            if (elems * chunk[i] > 4096) chunk[i] = 1;
            elems *= chunk[i];
        }
        H5_OK(space = H5Screate_simple(rank, dims, maxdims));
        H5_OK(H5Pset_chunk(dcpl, rank, chunk));
    }
    hid_t lcpl; /* missing groups on the way are created */
    H5_OK(lcpl = H5Pcreate(H5P_LINK_CREATE));
    H5_OK(H5Pset_create_intermediate_group(lcpl, 1));
    H5_OK(dset = H5Dcreate2(loc, name, type, space, lcpl, dcpl, H5P_DEFAULT));
    H5Pclose(lcpl);
    if (write) {
        size_t bytes = (size_t)(count * size);
        uint8_t *raw = malloc(bytes);
        if (values && n) {
            for (size_t i = 0; i < bytes; i += n) memcpy(raw + i, values, bytes - i < n ? bytes - i : n);
        } else {
            for (size_t i = 0; i < bytes; i++) raw[i] = fuzz_u8(in);
        }
        H5_OK(H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw));
        free(raw);
    }
    H5Pclose(dcpl);
    H5Sclose(space);
    H5Tclose(type);
    return dset;
}

int fb_shape(fuzz_bytes *in, int typical_rank, const hsize_t *typical, hsize_t *dims) {
    for (int i = 0; i < typical_rank; i++) dims[i] = typical[i];
    int rank = typical_rank;
    switch (fuzz_pick(in, 12)) {
    case 0: /* another rank: the typical dims, cut or padded with 1s */
        rank = (int)fuzz_range(in, 0, 6);
        for (int i = typical_rank; i < rank; i++) dims[i] = 1;
        break;
    case 1: rank = -1; break; /* null dataspace */
    case 2: dims[fuzz_pick(in, rank ? rank : 1)] = 0; break;
    case 3: /* one dim off by a little */
        if (rank) {
            int i = fuzz_pick(in, rank);
            dims[i] = (hsize_t)((int64_t)dims[i] + fuzz_range(in, -2, 2));
            if ((int64_t)dims[i] < 0) dims[i] = 0;
        }
        break;
    case 4: /* one dim very large: past int, past 32 bits, or near 2^63 */
        if (rank) {
            static const hsize_t big[] = {1u << 20, 0x7fffffffu, 0x80000000u, 0x100000000ull + 1,
                                          (hsize_t)1 << 40, (hsize_t)1 << 62, (hsize_t)-1 / 2};
            dims[fuzz_pick(in, rank)] = big[fuzz_pick(in, (int)(sizeof big / sizeof big[0]))];
        }
        break;
    default: break; /* the typical shape */
    }
    return rank;
}
