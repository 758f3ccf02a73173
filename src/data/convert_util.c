/* convert_util.c - file and path helpers for the format readers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "convert_internal.h"
#include "feed/check.h"

char *feed_path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = feed_xmalloc(n, "path");
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

bool feed_is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int64_t feed_file_size(const char *path, const char *what) {
    struct stat st;
    if (stat(path, &st) != 0)
        FEED_INPUT_ERROR("check the folder given to feed_convert", "missing %s '%s': %s", what,
                         path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        FEED_INPUT_ERROR("give the folder that holds the files", "%s '%s' is not a regular file",
                         what, path);
    return (int64_t)st.st_size;
}

void feed_require_dir(const char *dir, const char *hint) {
    struct stat st;
    if (stat(dir, &st) != 0) FEED_INPUT_ERROR(hint, "missing folder '%s': %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) FEED_INPUT_ERROR(hint, "'%s' is not a folder", dir);
}

char *feed_find_source_dir(const char *dir, const char *subdir, const char *marker,
                           const char *hint) {
    feed_require_dir(dir, hint);
    char *direct = feed_path_join(dir, marker);
    bool here = feed_is_file(direct);
    free(direct);
    if (here) return feed_xstrdup(dir);
    char *nested_dir = feed_path_join(dir, subdir);
    char *nested = feed_path_join(nested_dir, marker);
    bool below = feed_is_file(nested);
    free(nested);
    if (below) return nested_dir;
    free(nested_dir);
    FEED_INPUT_ERROR(hint, "missing file: neither '%s/%s' nor '%s/%s/%s' exists", dir, marker, dir,
                     subdir, marker);
}
