/* convert_internal.h - helpers shared by the format readers in src/data (not public API). */
#ifndef FEED_CONVERT_INTERNAL_H
#define FEED_CONVERT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

/* "dir/name", malloc'ed. */
char *feed_path_join(const char *dir, const char *name);
/* A regular file (or a link to one) at path. */
bool feed_is_file(const char *path);
/* Size in bytes of a regular file; a missing file is a user-input error naming `what`. */
int64_t feed_file_size(const char *path, const char *what);
/* dir must be an existing folder (else a user-input error with the hint). */
void feed_require_dir(const char *dir, const char *hint);
/* The folder holding `marker`: dir itself or dir/subdir (the official archives unpack into a
 * subfolder). A missing file is a user-input error listing what was tried. malloc'ed. */
char *feed_find_source_dir(const char *dir, const char *subdir, const char *marker,
                           const char *hint);

#endif
