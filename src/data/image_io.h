/* image_io.h - JPEG and PNG files to 8-bit pixels, and the resampling of feed_convert
 * imagefolder (src/data; not public API).
 *
 * Decoding follows what PIL (and so torchvision's ImageFolder loader) gives for the same
 * file: libjpeg-turbo with its default (islow DCT, fancy upsampling), libpng with palettes
 * expanded, 16-bit samples reduced to 8 and alpha dropped. Failures are returned as text
 * (never fatal), so a converter can skip a bad file and go on. */
#ifndef FEED_IMAGE_IO_H
#define FEED_IMAGE_IO_H

#include <stddef.h>
#include <stdint.h>

typedef struct feed_image {
    int height, width, channels; /* channels: 1 (grey) or 3 (RGB) */
    uint8_t *pixels;             /* height x width x channels, malloc'ed */
} feed_image;

/* Size and channels from the file's header (cheap: no pixel data is read). The format is
 * told by the content, not the name. Returns 0, or -1 with the reason in why[cap]. */
int feed_image_probe(const char *path, int *height, int *width, int *channels, char *why, size_t cap);
/* Decodes the whole file (a truncated or damaged stream is an error, not a grey tail).
 * Returns 0 and fills out, or -1 with the reason in why[cap]. */
int feed_image_decode(const char *path, feed_image *out, char *why, size_t cap);
void feed_image_free(feed_image *img);

/* Grey <-> RGB in place of img: grey to RGB repeats the value; RGB to grey is ITU-R 601
 * luma in PIL's fixed point, L = (19595 R + 38470 G + 7471 B + 32768) >> 16. */
void feed_image_set_channels(feed_image *img, int channels);

/* src (h x w x c) -> dst (oh x ow x c) as PIL's Image.resize(..., BILINEAR): a triangle
 * filter whose support widens with the scale when shrinking (antialiased), coefficients in
 * 22-bit fixed point, rows first, then columns, each pass rounded to uint8. A side that
 * keeps its size is not resampled. */
void feed_image_resize(const uint8_t *src, int h, int w, int c, uint8_t *dst, int oh, int ow);

/* torchvision's Resize(S) + CenterCrop(S) of an h x w image: the shorter side becomes S, the
 * longer int(S * long / short); the crop's top-left corner is round-half-even of the excess
 * over 2. Writes the resized size to rh, rw and the crop corner to top, left. */
void feed_image_fit_square(int h, int w, int S, int *rh, int *rw, int *top, int *left);

#endif
