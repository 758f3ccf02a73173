/* image_decode.c - JPEG (libjpeg-turbo) and PNG (libpng) files to 8-bit grey or RGB pixels
 * (image_io.h). Both libraries report errors by longjmp from their error callbacks; each
 * decode owns its jmp_buf, so nothing here is global. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <jpeglib.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
#include "image_io.h"

typedef enum { FORMAT_UNKNOWN, FORMAT_JPEG, FORMAT_PNG } image_format;

/* Opens path and tells the format by its first bytes; the file is rewound. */
static FILE *open_image(const char *path, image_format *format, char *why, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, cap, "cannot open: %s", strerror(errno));
        return NULL;
    }
    unsigned char magic[8] = {0};
    size_t n = fread(magic, 1, sizeof magic, f);
    rewind(f);
    static const unsigned char png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n == 8 && memcmp(magic, png_magic, 8) == 0) *format = FORMAT_PNG;
    else if (n >= 3 && magic[0] == 0xff && magic[1] == 0xd8 && magic[2] == 0xff) *format = FORMAT_JPEG;
    else {
        fclose(f);
        snprintf(why, cap, n == 0 ? "empty file" : "not a JPEG or PNG file (by its content)");
        return NULL;
    }
    return f;
}

/* ---- JPEG ---- */

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char *why;
    size_t cap;
} jpeg_errors;

static void jpeg_fail(j_common_ptr cinfo) {
    jpeg_errors *e = (jpeg_errors *)cinfo->err;
    char text[JMSG_LENGTH_MAX];
    e->base.format_message(cinfo, text);
    snprintf(e->why, e->cap, "damaged JPEG: %s", text);
    longjmp(e->jump, 1);
}

/* libjpeg goes on after a warning ("Premature end of JPEG file") and fills the missing rows
 * with grey: a warning is a failure here. Trace messages (level > 0) are ignored. */
static void jpeg_message(j_common_ptr cinfo, int level) {
    if (level < 0) jpeg_fail(cinfo);
}

static int jpeg_read(FILE *f, feed_image *out, bool header_only, char *why, size_t cap) {
    struct jpeg_decompress_struct cinfo;
    jpeg_errors err;
    cinfo.err = jpeg_std_error(&err.base);
    err.base.error_exit = jpeg_fail;
    err.base.emit_message = jpeg_message;
    err.why = why;
    err.cap = cap;
    uint8_t *volatile pixels = NULL;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, f);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.num_components != 1 && cinfo.num_components != 3) {
        snprintf(why, cap, "JPEG with %d colour components (CMYK?): only grey and RGB are read", cinfo.num_components);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    out->height = (int)cinfo.image_height;
    out->width = (int)cinfo.image_width;
    out->channels = cinfo.num_components;
    if (header_only) {
        jpeg_destroy_decompress(&cinfo);
        return 0;
    }
    cinfo.out_color_space = out->channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    const size_t row = (size_t)cinfo.output_width * (size_t)cinfo.output_components;
    pixels = malloc(row * cinfo.output_height);
    if (!pixels) {
        snprintf(why, cap, "out of memory for %ux%u pixels", cinfo.output_width, cinfo.output_height);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW r = pixels + row * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &r, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    out->pixels = pixels;
    return 0;
}

/* ---- PNG ---- */

typedef struct {
    jmp_buf jump;
    char *why;
    size_t cap;
} png_errors;

static void png_fail(png_structp png, png_const_charp msg) {
    png_errors *e = png_get_error_ptr(png);
    snprintf(e->why, e->cap, "damaged PNG: %s", msg);
    longjmp(e->jump, 1);
}

static void png_warn(png_structp png, png_const_charp msg) {
    (void)png, (void)msg; /* e.g. an unknown chunk or a bad iCCP profile: the pixels are fine */
}

static int png_read(FILE *f, feed_image *out, bool header_only, char *why, size_t cap) {
    png_errors err = {.why = why, .cap = cap};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &err, png_fail, png_warn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        snprintf(why, cap, "out of memory");
        return -1;
    }
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(err.jump)) {
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);
        free(rows);
        return -1;
    }
    png_init_io(png, f);
    png_read_info(png, info);
    const int type = png_get_color_type(png, info);
    out->height = (int)png_get_image_height(png, info);
    out->width = (int)png_get_image_width(png, info);
    out->channels = (type & PNG_COLOR_MASK_COLOR) ? 3 : 1; /* a palette is RGB */
    if (header_only) {
        png_destroy_read_struct(&png, &info, NULL);
        return 0;
    }
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_bit_depth(png, info) == 16) png_set_strip_16(png);
    png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    const size_t row = png_get_rowbytes(png, info);
    if (row != (size_t)out->width * (size_t)out->channels) {
        snprintf(why, cap, "PNG of an unexpected layout (%zu bytes per row for %d x %d)", row, out->width,
                 out->channels);
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    pixels = malloc(row * (size_t)out->height);
    rows = malloc(sizeof(png_bytep) * (size_t)out->height);
    if (!pixels || !rows) {
        snprintf(why, cap, "out of memory for %dx%d pixels", out->width, out->height);
        longjmp(err.jump, 1);
    }
    for (int y = 0; y < out->height; y++) rows[y] = pixels + row * (size_t)y;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    out->pixels = pixels;
    return 0;
}

/* ---- both ---- */

static int read_image(const char *path, feed_image *out, bool header_only, char *why, size_t cap) {
    memset(out, 0, sizeof *out);
    image_format format = FORMAT_UNKNOWN;
    FILE *f = open_image(path, &format, why, cap);
    if (!f) return -1;
    int rc = format == FORMAT_PNG ? png_read(f, out, header_only, why, cap) : jpeg_read(f, out, header_only, why, cap);
    fclose(f);
    if (rc == 0 && (out->height < 1 || out->width < 1)) {
        snprintf(why, cap, "image of %d x %d pixels", out->width, out->height);
        feed_image_free(out);
        return -1;
    }
    return rc;
}

int feed_image_probe(const char *path, int *height, int *width, int *channels, char *why, size_t cap) {
    feed_image img;
    if (read_image(path, &img, true, why, cap) != 0) return -1;
    *height = img.height, *width = img.width, *channels = img.channels;
    return 0;
}

int feed_image_decode(const char *path, feed_image *out, char *why, size_t cap) {
    return read_image(path, out, false, why, cap);
}

void feed_image_free(feed_image *img) {
    free(img->pixels);
    img->pixels = NULL;
}

void feed_image_set_channels(feed_image *img, int channels) {
    if (img->channels == channels) return;
    const size_t n = (size_t)img->height * (size_t)img->width;
    uint8_t *p = img->pixels;
    if (channels == 1) { /* RGB -> L in place: pixel i reads bytes 3i.. before writing byte i */
        for (size_t i = 0; i < n; i++)
            p[i] = (uint8_t)((19595u * p[3 * i] + 38470u * p[3 * i + 1] + 7471u * p[3 * i + 2] + 0x8000u) >> 16);
    } else {
        uint8_t *rgb = feed_xmalloc(n * 3, "RGB pixels");
        for (size_t i = 0; i < n; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = p[i];
        free(p);
        img->pixels = rgb;
    }
    img->channels = channels;
}
