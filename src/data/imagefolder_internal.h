/* imagefolder_internal.h - listing an image folder (imagefolder_scan.c) for the converter
 * (imagefolder_convert.c). Not public API. */
#ifndef FEED_IMAGEFOLDER_INTERNAL_H
#define FEED_IMAGEFOLDER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    char *rel;  /* path relative to the image folder's root, e.g. "train/cat/001.png" */
    int label;  /* class index */
} folder_item;

typedef struct {
    folder_item *v;
    int64_t n, cap;
} folder_list;

void folder_list_free(folder_list *l);

/* .png, .jpg or .jpeg, any case. */
bool imagefolder_has_image_extension(const char *name);

/* Sorted names of the class folders of root/split_dir (split_dir "" for root itself);
 * none is an input error. malloc'ed array of malloc'ed names. */
char **imagefolder_classes(const char *root, const char *split_dir, int *num_classes);

/* Appends the files of each class folder root/split_dir/classes[k], in torchvision's order,
 * to images (by extension) or others (anything else); per_class[k] counts the images.
 * define: the split that defines the classes - a class without images is an input error. A
 * class folder missing from the split is taken as empty. */
void imagefolder_list_split(const char *root, const char *split_dir, char **classes, int num_classes, bool define,
                            folder_list *images, folder_list *others, int64_t *per_class);

#endif
