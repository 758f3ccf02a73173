/* checkpoint_list.c - enumerating the tensors (datasets) of an open checkpoint, recursively,
 * in creation order where the file tracks it (feed_mpi's writer does) and by name otherwise
 * (files written by h5py without track_order).
 *
 * Hard links can put a group under several names, or inside itself: each group is listed
 * once, under the first path that reaches it, so a cycle cannot recurse forever and a file of
 * a few KB cannot make the list explode. */
#include "checkpoint_internal.h"
#include "h5_util.h"

#include "feed/check.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    feed_ckpt_entry *items;
    size_t n, cap;
    size_t group_prefix_len; /* length of "<listed group>/" stripped to form the key */
    haddr_t *groups;         /* addresses of the groups listed so far */
    size_t n_groups, cap_groups;
} entry_list;

/* Records group address addr; false if it was listed already. */
static bool first_visit(entry_list *list, haddr_t addr) {
    for (size_t i = 0; i < list->n_groups; i++)
        if (list->groups[i] == addr) return false;
    if (list->n_groups == list->cap_groups) {
        list->cap_groups = list->cap_groups ? 2 * list->cap_groups : 16;
        list->groups = feed_xrealloc(list->groups, list->cap_groups * sizeof *list->groups, "checkpoint group list");
    }
    list->groups[list->n_groups++] = addr;
    return true;
}

static void add_entry(entry_list *list, hid_t dataset, const char *path) {
    if (list->n == list->cap) {
        list->cap = list->cap ? 2 * list->cap : 64;
        list->items = feed_xrealloc(list->items, list->cap * sizeof *list->items, "checkpoint tensor list");
    }
    feed_ckpt_entry *e = &list->items[list->n++];
    e->path = feed_xstrdup(path);
    e->key = feed_xstrdup(path + list->group_prefix_len);
    for (char *p = e->key; *p; p++)
        if (*p == '/') *p = '.';
    if (h5_dataset_shape(dataset, &e->shape) < 0 || !feed_ckpt_shape_valid(&e->shape)) {
        memset(&e->shape, 0, sizeof e->shape);
        e->shape.dtype = FEED_CKPT_UNSUPPORTED;
    }
}

static int list_group(hid_t group, const char *prefix, entry_list *list);

typedef struct {
    const char *prefix;
    entry_list *list;
} visit_ctx;

static herr_t visit_link(hid_t group, const char *name, const H5L_info_t *info, void *data) {
    visit_ctx *ctx = data;
    if (info->type != H5L_TYPE_HARD) return 0; /* soft/external links are not tensors of this file */
    char *path = feed_xstrdup(feed_fmt("%s%s%s", ctx->prefix, *ctx->prefix ? "/" : "", name));
    H5O_info_t oinfo;
    int st = H5Oget_info_by_name2(group, name, &oinfo, H5O_INFO_BASIC, H5P_DEFAULT) < 0 ? -1 : 0;
    if (st == 0 && oinfo.type == H5O_TYPE_GROUP && first_visit(ctx->list, oinfo.addr)) {
        hid_t child = H5Gopen2(group, name, H5P_DEFAULT);
        st = child < 0 ? -1 : list_group(child, path, ctx->list);
        if (child >= 0) H5Gclose(child);
    } else if (st == 0 && oinfo.type == H5O_TYPE_DATASET) {
        hid_t dataset = H5Dopen2(group, name, H5P_DEFAULT);
        if (dataset < 0) st = -1;
        else add_entry(ctx->list, dataset, path);
        if (dataset >= 0) H5Dclose(dataset);
    }
    free(path);
    return st < 0 ? -1 : 0;
}

static int list_group(hid_t group, const char *prefix, entry_list *list) {
    H5O_info_t info;
    if (H5Oget_info2(group, &info, H5O_INFO_BASIC) < 0) return -1;
    first_visit(list, info.addr); /* the listed group itself (a link back to it is skipped) */
    unsigned order_flags = 0;
    hid_t gcpl = H5Gget_create_plist(group);
    if (gcpl >= 0) {
        if (H5Pget_link_creation_order(gcpl, &order_flags) < 0) order_flags = 0;
        H5Pclose(gcpl);
    }
    H5_index_t index = (order_flags & H5P_CRT_ORDER_INDEXED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
    visit_ctx ctx = {prefix, list};
    return H5Literate(group, index, H5_ITER_INC, NULL, visit_link, &ctx) < 0 ? -1 : 0;
}

int feed_ckpt_try_list(const feed_ckpt *c, const char *group, feed_ckpt_entry **out, size_t *n,
                       feed_ckpt_error *err) {
    *out = NULL;
    *n = 0;
    const char *why = NULL;
    char *path = group && *group ? feed_ckpt_object_path(group, NULL, &why) : feed_xstrdup("");
    if (!path)
        return feed_ckpt_set_error(err, "a bug in the caller", "checkpoint '%s': bad group name '%s': %s", c->path,
                                   group, why);
    entry_list list = {.group_prefix_len = *path ? strlen(path) + 1 : 0};

    h5_quiet quiet;
    h5_quiet_begin(&quiet);
    H5O_info_t info;
    bool is_group = *path == 0 || (h5_path_exists(c->file, path) > 0 &&
                                   H5Oget_info_by_name2(c->file, path, &info, H5O_INFO_BASIC, H5P_DEFAULT) >= 0 &&
                                   info.type == H5O_TYPE_GROUP);
    int st = 0;
    if (is_group) { /* a missing group has no tensors */
        hid_t g = H5Gopen2(c->file, *path ? path : "/", H5P_DEFAULT);
        if (g < 0 || list_group(g, path, &list) < 0)
            st = feed_ckpt_set_error(err, "the file is damaged; use an older checkpoint",
                                     "checkpoint '%s': cannot list the tensors under '/%s' (HDF5: %s)", c->path, path,
                                     h5_error_detail());
        if (g >= 0) H5Gclose(g);
    }
    h5_quiet_end(&quiet);
    free(path);
    free(list.groups);
    if (st != 0) {
        feed_ckpt_entries_free(list.items, list.n);
        return st;
    }
    *out = list.items;
    *n = list.n;
    return 0;
}

size_t feed_ckpt_list(const feed_ckpt *c, const char *group, feed_ckpt_entry **out) {
    feed_ckpt_error err;
    size_t n;
    if (feed_ckpt_try_list(c, group, out, &n, &err) != 0)
        feed_fatal(FEED_EXIT_USAGE, __FILE__, __LINE__, err.hint, "%s", err.message);
    return n;
}

void feed_ckpt_entries_free(feed_ckpt_entry *entries, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(entries[i].path);
        free(entries[i].key);
    }
    free(entries);
}
