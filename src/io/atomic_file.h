/* atomic_file.h - durable file replacement with POSIX calls (not a public API).
 *
 * The pattern: create NAME.tmp, write it completely, fsync and close it, rename it over NAME,
 * fsync the folder. rename() is atomic, so whenever the process or machine dies, NAME is the
 * old file or the new one, never a mix.
 *
 * Every function returns 0 (or an fd), or -1 with errno set and *failed naming the call that
 * failed ("fsync('x.tmp')"), so the caller can clean up before reporting. */
#ifndef FEED_IO_ATOMIC_FILE_H
#define FEED_IO_ATOMIC_FILE_H

#include <stddef.h>

/* Creates or truncates path (mode 0644) for writing; returns the fd. */
int feed_io_create_file(const char *path, const char **failed);
/* Writes all n bytes to fd, fsyncs and closes it (closed on failure too). */
int feed_io_write_sync_close(int fd, const void *data, size_t n, const char *path, const char **failed);
/* Renames tmp over final, then fsyncs the folder so the rename survives a crash. */
int feed_io_rename_durable(const char *tmp, const char *final, const char **failed);
/* fsync the folder holding path (after a rename or unlink in it). */
int feed_io_fsync_parent_dir(const char *path, const char **failed);
/* Copies src to dst (created or truncated) and fsyncs dst. */
int feed_io_copy_file(const char *src, const char *dst, const char **failed);

#endif
