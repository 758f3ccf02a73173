/* fuzz_ckpt_gen.c - libFuzzer target: the checkpoint reader on well-formed HDF5 files.
 *
 * The input holds the choices for a checkpoint of a small model (docs/checkpoint.md): which
 * model its attributes name, and for every root attribute, tensor of /model and
 * /optim/momentum, scalar of /train and a few extra objects whether it is there and its
 * type, shape, values and CRC32 - usually right, sometimes not. Groups may hold soft, hard
 * (even cyclic) and external links. HDF5 writes the file; it is then read as eval and resume
 * read it (fuzz_ckpt_read.h). So every input is a valid HDF5 file and the fuzzer explores
 * our checks rather than HDF5's parser (fuzz_ckpt.c covers that).
 */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "feed/checkpoint.h"
#include "feed/net.h"
#include "fuzz_ckpt_read.h"
#include "fuzz_common.h"
#include "fuzz_h5_build.h"

/* The small models the files name (fuzz_ckpt_net builds each once). */
static const char *const models[] = {"resnet8-a", "resnet8-b", "wrn-10-1", "resnext11-1x1d-w1"};

static hid_t gcpl_tracked(void) {
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    return gcpl;
}

static uint32_t crc_of(const void *data, size_t n) { return (uint32_t)crc32(crc32(0L, Z_NULL, 0), data, (uInt)n); }

/* A CRC32 attribute: usually the right uint32, else missing, wrong, or of another type. */
static void crc_attr(fuzz_bytes *in, hid_t dset, uint32_t crc) {
    switch (fuzz_pick(in, 10)) {
    case 0: return;
    case 1: crc ^= 1u << fuzz_pick(in, 32); break;
    case 2: fb_attr_num(dset, "crc32", FB_I32, 1, (double[]){(double)(int32_t)crc}); return; /* a converter's int32 */
    case 3: fb_attr_num(dset, "crc32", FB_I64, 1, (double[]){(double)crc}); return;
    case 4: {
        hsize_t dims[6];
        int rank = fb_shape(in, 0, NULL, dims);
        fb_attr(in, dset, "crc32", (fb_type)fuzz_pick(in, FB_NUM_TYPES), rank, dims);
        return;
    }
    default: break;
    }
    fb_attr_num(dset, "crc32", FB_U32, 1, (double[]){crc});
}

/* Tensor group/key of shape (rank, dims) and dtype (FEED_CKPT_F32 or _I64), mostly right. */
static void tensor(fuzz_bytes *in, hid_t file, const char *group, const char *key, feed_ckpt_dtype dtype, int rank,
                   const int64_t *shape) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", group, key);
    for (char *p = path + strlen(group) + 1; *p; p++)
        if (*p == '.') *p = '/';
    int how = fuzz_pick(in, 24);
    if (how == 0) return; /* missing */
    if (how == 1) { /* a group where a tensor should be */
        hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
        H5Pset_create_intermediate_group(lcpl, 1);
        H5Gclose(H5Gcreate2(file, path, lcpl, H5P_DEFAULT, H5P_DEFAULT));
        H5Pclose(lcpl);
        return;
    }
    hsize_t want[FEED_CKPT_MAX_RANK], dims[H5S_MAX_RANK];
    for (int i = 0; i < rank; i++) want[i] = (hsize_t)shape[i];
    int r = how == 2 ? fb_shape(in, rank, want, dims) : rank;
    if (how != 2) memcpy(dims, want, sizeof want);
    fb_type t = dtype == FEED_CKPT_I64 ? FB_I64 : dtype == FEED_CKPT_F64 ? FB_F64 : FB_F32;
    if (how == 3) t = (fb_type)fuzz_pick(in, FB_NUM_TYPES);
    /* values: small numbers from one input byte (no input spent per element); sometimes a
     * non-finite one */
    uint64_t numel = 1;
    for (int i = 0; i < r; i++) numel *= dims[i];
    size_t n = r < 0 ? 0 : numel > 4096 ? 4096 : (size_t)numel;
    bool typed = t == FB_I64 || t == FB_F32 || t == FB_F64; /* else: raw bytes from the input */
    size_t esize = t == FB_F32 ? 4 : 8;
    uint8_t *values = calloc(n ? n : 1, 8);
    uint8_t seed = fuzz_u8(in);
    for (size_t i = 0; typed && i < n; i++) {
        float v = (float)((int)((i * 131 + seed) % 255) - 127) / 256.0f;
        int64_t iv = (int64_t)(i * seed % 7);
        double dv = v;
        memcpy(values + esize * i, t == FB_I64 ? (void *)&iv : t == FB_F64 ? (void *)&dv : (void *)&v, esize);
    }
    if (how == 4 && n && t == FB_F32) {
        float bad = fuzz_bool(in) ? NAN : INFINITY;
        memcpy(values + 4 * (size_t)fuzz_range(in, 0, (int64_t)n - 1), &bad, 4);
    }
    hid_t dset = fb_dataset(in, file, path, t, r, dims, typed ? values : NULL, typed ? n * esize : 0);
    /* the CRC of what the reader will see: the values as written, repeated to numel */
    uint32_t crc = 0;
    if (typed && numel <= (1u << 20) / esize && n) {
        uLong c = crc32(0L, Z_NULL, 0);
        for (uint64_t done = 0; done < numel; done += n) {
            uint64_t chunk = numel - done < n ? numel - done : n;
            c = crc32(c, values, (uInt)(chunk * esize));
        }
        crc = (uint32_t)c;
    } else if (r == 0 && typed) {
        crc = crc_of(values, esize);
    }
    crc_attr(in, dset, crc);
    H5Dclose(dset);
    free(values);
}

/* Extra objects: links of every kind, stray datasets of odd types, attributes on groups. */
static void extras(fuzz_bytes *in, hid_t file) {
    int n = fuzz_pick(in, 4) == 0 ? (int)fuzz_range(in, 1, 4) : 0;
    for (int i = 0; i < n; i++) {
        static const char *const places[] = {"model", "optim", "optim/momentum", "train", "extra", "model/layer1"};
        const char *at = places[fuzz_pick(in, 6)];
        char name[64];
        snprintf(name, sizeof name, "%s/x%d", at, i);
        if (H5Lexists(file, at, H5P_DEFAULT) <= 0) {
            hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
            H5Pset_create_intermediate_group(lcpl, 1);
            hid_t g = H5Gcreate2(file, at, lcpl, H5P_DEFAULT, H5P_DEFAULT);
            H5Pclose(lcpl);
            if (g < 0) continue; /* `at` passes through a dataset */
            H5Gclose(g);
        }
        switch (fuzz_pick(in, 6)) {
        case 0: H5Lcreate_hard(file, "/", file, name, H5P_DEFAULT, H5P_DEFAULT); break; /* a cycle */
        case 1: H5Lcreate_hard(file, at, file, name, H5P_DEFAULT, H5P_DEFAULT); break; /* a group in itself */
        case 2: H5Lcreate_soft(fuzz_bool(in) ? "/nowhere" : "/model/fc/weight", file, name, H5P_DEFAULT, H5P_DEFAULT); break;
        case 3: H5Lcreate_external("/dev/null", "/x", file, name, H5P_DEFAULT, H5P_DEFAULT); break;
        case 4: {
            hsize_t dims[6];
            int rank = fb_shape(in, 1, (hsize_t[]){3}, dims);
            H5Dclose(fb_dataset(in, file, name, (fb_type)fuzz_pick(in, FB_NUM_TYPES), rank, dims, NULL, 0));
            break;
        }
        default: {
            hid_t obj = H5Oopen(file, at, H5P_DEFAULT);
            hsize_t dims[6];
            int rank = fb_shape(in, 0, NULL, dims);
            if (obj >= 0 && H5Aexists(obj, "model_name") <= 0)
                fb_attr(in, obj, "model_name", (fb_type)fuzz_pick(in, FB_NUM_TYPES), rank, dims);
            if (obj >= 0) H5Oclose(obj);
        }
        }
    }
}

static void root_str(fuzz_bytes *in, hid_t file, const char *name, const char *good) {
    int how = fuzz_pick(in, 12);
    if (how == 0) return;
    if (how == 1) {
        hsize_t dims[6];
        int rank = fb_shape(in, 0, NULL, dims);
        fb_attr(in, file, name, (fb_type)fuzz_pick(in, FB_NUM_TYPES), rank, dims);
        return;
    }
    char text[40];
    fb_attr_str(file, name, how == 2 ? fuzz_str(in, text, sizeof text) : good, fuzz_pick(in, 4) != 0);
}

static void root_num(fuzz_bytes *in, hid_t file, const char *name, fb_type good_type, double good) {
    int how = fuzz_pick(in, 12);
    if (how == 0) return;
    if (how == 1) {
        hsize_t dims[6];
        int rank = fb_shape(in, 0, NULL, dims);
        fb_attr(in, file, name, (fb_type)fuzz_pick(in, FB_NUM_TYPES), rank, dims);
        return;
    }
    if (how == 2) { /* another value: near, zero, negative, past 32 bits */
        static const double odd[] = {0, -1, 1, 2, 3, 27, 29, 4294967296.0 + 28, 2147483648.0, -2147483648.0, 1e18};
        good = fuzz_bool(in) ? good + (double)fuzz_range(in, -3, 3) : odd[fuzz_pick(in, 11)];
    }
    fb_attr_num(file, name, how == 3 ? (fb_type)fuzz_pick(in, FB_F64 + 1) : good_type, 1, &good);
}

static void build_file(fuzz_bytes *in, const char *path) {
    const char *model = models[fuzz_pick(in, (int)(sizeof models / sizeof models[0]))];
    feed_net *net = fuzz_ckpt_net(model);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_fapl_core(fapl, 1 << 20, 1); /* built in memory, written to `path` once at close */
    if (fuzz_bool(in)) H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18); /* as feed_mpi writes */
    if (fuzz_bool(in)) H5Pset_link_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl);
    H5Pclose(fapl);
    H5Pclose(fcpl);
    if (file < 0) abort();
    root_str(in, file, "format", FEED_CKPT_FORMAT);
    root_num(in, file, "format_version", FB_I64, FEED_CKPT_FORMAT_VERSION);
    root_num(in, file, "complete", FB_I64, 1);
    root_str(in, file, "arch", model); /* the model's name, as the trainer writes it */
    root_str(in, file, "dataset", "fashion-mnist");
    root_str(in, file, "config_ini", "[run]\nmode = scratch\n");
    root_str(in, file, "created_by", "fuzz_ckpt_gen");
    root_num(in, file, "num_classes", FB_I64, FUZZ_CKPT_CLASSES);
    root_num(in, file, "in_channels", FB_I64, FUZZ_CKPT_CHANNELS);
    root_num(in, file, "epoch", FB_I64, 1);
    root_num(in, file, "step", FB_I64, 10);
    root_num(in, file, "seed", FB_I64, 1);
    if (fuzz_bool(in)) root_str(in, file, "model_name", model); /* older files: the same name again */
    root_num(in, file, "input_height", FB_I64, FUZZ_CKPT_SIZE);
    root_num(in, file, "input_width", FB_I64, FUZZ_CKPT_SIZE);
    root_num(in, file, "model_dropout", FB_F64, 0);
    if (fuzz_bool(in)) { /* groups as feed_mpi writes them (creation order), else as h5py */
        const char *groups[] = {"model", "optim", "optim/momentum", "train"};
        for (int i = 0; i < 4; i++) {
            hid_t gcpl = gcpl_tracked();
            H5Gclose(H5Gcreate2(file, groups[i], H5P_DEFAULT, gcpl, H5P_DEFAULT));
            H5Pclose(gcpl);
        }
    }
    /* A whole network is 40-70 tensors and makes an input ten times slower: most inputs
     * leave them out (the reads then stop at the first missing one). The seeds (constant
     * bytes 7, 23, 71, 255) keep them. */
    bool tensors = fuzz_u8(in) % 8 == 7, momentum = fuzz_pick(in, 8) != 0;
    for (int i = 0; tensors && net && i < feed_net_num_entries(net); i++) {
        const feed_param_info *e = feed_net_entry(net, i);
        feed_ckpt_dtype dt = e->dtype == FEED_I64 ? FEED_CKPT_I64 : FEED_CKPT_F32;
        tensor(in, file, "model", e->name, dt, e->ndims, e->shape);
        if (momentum && e->kind == FEED_PARAM) tensor(in, file, "optim/momentum", e->name, dt, e->ndims, e->shape);
    }
    static const char *const i64s[] = {"seed", "epoch", "step_in_epoch", "global_step", "sgd_steps"};
    for (int i = 0; i < 5; i++) tensor(in, file, "train", i64s[i], FEED_CKPT_I64, 0, NULL);
    tensor(in, file, "train", "best_error", FEED_CKPT_F64, 0, NULL);
    extras(in, file);
    if (H5Fclose(file) < 0) abort();
}

static void read_ckpt(void *path) {
    fuzz_ckpt_read(path);
    fuzz_require_no_open_h5("the checkpoint reads");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_init();
    const char *path = fuzz_tmp_path("ckpt_gen.h5");
    fuzz_bytes in = {data, size};
    build_file(&in, path);
    if (fuzz_catch(read_ckpt, (void *)path) != 0) fuzz_ckpt_read_cleanup();
    return 0;
}
