/* imagefolder_scan.c - the file list of an image folder in torchvision's ImageFolder order:
 * classes are the sorted names of the split's subfolders, a class's files are found by a
 * walk of its folder (links followed) sorted by (folder path, file name) - what
 * `sorted(os.walk(...))` + `sorted(fnames)` give. Names starting with '.' are skipped. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "convert_internal.h"
#include "feed/check.h"
#include "imagefolder_internal.h"

enum { MAX_DEPTH = 64 }; /* a link cycle would walk forever */

/* "dir/name", or name when dir is "" (the root itself); malloc'ed. */
static char *join_rel(const char *dir, const char *name) {
    return dir[0] ? feed_path_join(dir, name) : feed_xstrdup(name);
}

static void list_push(folder_list *l, char *rel, int label) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->v = feed_xrealloc(l->v, sizeof *l->v * (size_t)l->cap, "file list");
    }
    l->v[l->n++] = (folder_item){.rel = rel, .label = label};
}

void folder_list_free(folder_list *l) {
    for (int64_t i = 0; i < l->n; i++) free(l->v[i].rel);
    free(l->v);
    memset(l, 0, sizeof *l);
}

bool imagefolder_has_image_extension(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (strcasecmp(dot, ".png") == 0 || strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0);
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The entries of a folder not starting with '.', sorted, split into folders and files. */
static void read_folder(const char *abs, char ***dirs, int *ndirs, char ***files, int *nfiles) {
    DIR *d = opendir(abs);
    if (!d) FEED_INPUT_ERROR("check the permissions", "cannot read folder '%s': %s", abs, feed_errno_str());
    *dirs = *files = NULL;
    *ndirs = *nfiles = 0;
    int capd = 0, capf = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char *path = feed_path_join(abs, e->d_name);
        struct stat st;
        bool is_dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode); /* follows links */
        free(path);
        char ***v = is_dir ? dirs : files;
        int *n = is_dir ? ndirs : nfiles, *cap = is_dir ? &capd : &capf;
        if (*n == *cap) {
            *cap = *cap ? 2 * *cap : 64;
            *v = feed_xrealloc(*v, sizeof(char *) * (size_t)*cap, "folder listing");
        }
        (*v)[(*n)++] = feed_xstrdup(e->d_name);
    }
    closedir(d);
    if (*ndirs) qsort(*dirs, (size_t)*ndirs, sizeof(char *), compare_names);
    if (*nfiles) qsort(*files, (size_t)*nfiles, sizeof(char *), compare_names);
}

static void free_names(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* A (folder, file) pair of the walk; sorted by folder path, then name. */
typedef struct {
    char *dir, *name;
} walk_entry;

typedef struct {
    walk_entry *v;
    int64_t n, cap;
} walk_list;

static void walk(const char *root, const char *rel, int depth, walk_list *out) {
    if (depth > MAX_DEPTH)
        FEED_INPUT_ERROR("is there a link that points to a folder above it?", "folders nested deeper than %d at '%s/%s'",
                         MAX_DEPTH, root, rel);
    char *abs = join_rel(root, rel);
    char **dirs, **files;
    int ndirs, nfiles;
    read_folder(abs, &dirs, &ndirs, &files, &nfiles);
    for (int i = 0; i < nfiles; i++) {
        if (out->n == out->cap) {
            out->cap = out->cap ? 2 * out->cap : 256;
            out->v = feed_xrealloc(out->v, sizeof *out->v * (size_t)out->cap, "file list");
        }
        out->v[out->n++] = (walk_entry){.dir = feed_xstrdup(rel), .name = files[i]};
    }
    free(files);
    for (int i = 0; i < ndirs; i++) {
        char *sub = join_rel(rel, dirs[i]);
        walk(root, sub, depth + 1, out);
        free(sub);
    }
    free_names(dirs, ndirs);
    free(abs);
}

static int compare_walk(const void *a, const void *b) {
    const walk_entry *x = a, *y = b;
    int c = strcmp(x->dir, y->dir);
    return c ? c : strcmp(x->name, y->name);
}

void imagefolder_list_split(const char *root, const char *split_dir, char **classes, int num_classes, bool define,
                            folder_list *images, folder_list *others, int64_t *per_class) {
    for (int k = 0; k < num_classes; k++) {
        char *class_rel = join_rel(split_dir, classes[k]);
        walk_list w = {0};
        char *class_abs = feed_path_join(root, class_rel);
        struct stat st;
        bool present = stat(class_abs, &st) == 0 && S_ISDIR(st.st_mode);
        free(class_abs);
        if (present) walk(root, class_rel, 0, &w);
        if (w.n) qsort(w.v, (size_t)w.n, sizeof *w.v, compare_walk);
        per_class[k] = 0;
        for (int64_t i = 0; i < w.n; i++) {
            char *rel = join_rel(w.v[i].dir, w.v[i].name);
            if (imagefolder_has_image_extension(w.v[i].name)) {
                list_push(images, rel, k);
                per_class[k]++;
            } else list_push(others, rel, k);
            free(w.v[i].dir);
            free(w.v[i].name);
        }
        free(w.v);
        if (define && per_class[k] == 0)
            FEED_INPUT_ERROR("every class folder needs images (.png, .jpg, .jpeg): remove the empty folder, class "
                             "indices follow the sorted folder names",
                             "class folder '%s/%s' has no images", root, class_rel);
        free(class_rel);
    }
}

char **imagefolder_classes(const char *root, const char *split_dir, int *num_classes) {
    char *abs = join_rel(root, split_dir);
    char **dirs, **files;
    int ndirs, nfiles;
    read_folder(abs, &dirs, &ndirs, &files, &nfiles);
    free_names(files, nfiles);
    if (ndirs == 0)
        FEED_INPUT_ERROR("an image folder has one folder per class (torchvision's ImageFolder layout), e.g. "
                         "DIR/train/cat/1.png, DIR/test/cat/2.png",
                         "'%s' has no class folders", abs);
    free(abs);
    *num_classes = ndirs;
    return dirs;
}
