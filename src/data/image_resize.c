/* image_resize.c - PIL's bilinear resampling and torchvision's Resize + CenterCrop geometry
 * (image_io.h). The arithmetic follows Pillow's Resample.c (ImagingResample with the
 * bilinear filter, 8-bit path) so that a folder converted here has the pixels torchvision
 * gives for the same images, not merely similar ones. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
#include "image_io.h"

enum { PRECISION_BITS = 32 - 8 - 2 }; /* Pillow's fixed point for 8-bit images */

typedef struct {
    int ksize;     /* taps per output pixel */
    int *bounds;   /* out x 2: first input index, number of taps */
    int32_t *k;    /* out x ksize fixed-point weights */
} resample_plan;

static double triangle(double x) {
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Weights of each output pixel over the input line, as Pillow's precompute_coeffs and
 * normalize_coeffs_8bpc. */
static resample_plan plan_axis(int in, int out) {
    const double scale = (double)in / out;
    const double filterscale = scale < 1.0 ? 1.0 : scale;
    const double support = 1.0 * filterscale; /* the triangle's support is 1 */
    resample_plan p;
    p.ksize = (int)ceil(support) * 2 + 1;
    p.bounds = feed_xmalloc(sizeof(int) * 2 * (size_t)out, "resampling bounds");
    p.k = feed_xcalloc((size_t)out * (size_t)p.ksize, sizeof(int32_t), "resampling weights");
    double *w = feed_xmalloc(sizeof(double) * (size_t)p.ksize, "resampling weights");
    for (int xx = 0; xx < out; xx++) {
        const double center = (xx + 0.5) * scale;
        const double ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in) xmax = in;
        xmax -= xmin;
        double ww = 0.0;
        for (int x = 0; x < xmax; x++) {
            w[x] = triangle((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        for (int x = 0; x < xmax; x++) {
            const double v = ww != 0.0 ? w[x] / ww : 0.0;
            p.k[(size_t)xx * (size_t)p.ksize + (size_t)x] =
                (int32_t)(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
        }
        p.bounds[2 * xx] = xmin;
        p.bounds[2 * xx + 1] = xmax;
    }
    free(w);
    return p;
}

static void plan_free(resample_plan *p) {
    free(p->bounds);
    free(p->k);
}

static uint8_t clip8(int64_t ss) {
    const int64_t v = ss >> PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* One pass along an axis: `lines` lines of `in` pixels (stride between pixels of a line:
 * step, between lines: line_in / line_out) of c channels. */
static void resample_pass(const uint8_t *src, uint8_t *dst, int lines, int in, int out, int c, size_t step_in,
                          size_t step_out, size_t line_in, size_t line_out) {
    resample_plan p = plan_axis(in, out);
    for (int l = 0; l < lines; l++)
        for (int xx = 0; xx < out; xx++) {
            const int xmin = p.bounds[2 * xx], xn = p.bounds[2 * xx + 1];
            const int32_t *k = p.k + (size_t)xx * (size_t)p.ksize;
            for (int ch = 0; ch < c; ch++) {
                int64_t ss = 1 << (PRECISION_BITS - 1); /* round half up */
                for (int x = 0; x < xn; x++)
                    ss += (int64_t)src[(size_t)l * line_in + (size_t)(xmin + x) * step_in + (size_t)ch] * k[x];
                dst[(size_t)l * line_out + (size_t)xx * step_out + (size_t)ch] = clip8(ss);
            }
        }
    plan_free(&p);
}

void feed_image_resize(const uint8_t *src, int h, int w, int c, uint8_t *dst, int oh, int ow) {
    const size_t C = (size_t)c;
    if (h == oh && w == ow) {
        memcpy(dst, src, (size_t)h * (size_t)w * C);
        return;
    }
    /* rows first (Pillow resamples horizontally, then vertically), through an h x ow image */
    uint8_t *mid = NULL;
    const uint8_t *rows = src;
    if (w != ow) {
        mid = h != oh ? feed_xmalloc((size_t)h * (size_t)ow * C, "resized rows") : dst;
        resample_pass(src, mid, h, w, ow, c, C, C, (size_t)w * C, (size_t)ow * C);
        rows = mid;
    }
    if (h != oh) resample_pass(rows, dst, ow, h, oh, c, (size_t)ow * C, (size_t)ow * C, C, C);
    if (mid && mid != dst) free(mid);
}

void feed_image_fit_square(int h, int w, int S, int *rh, int *rw, int *top, int *left) {
    /* torchvision Resize(S): the shorter side to S, the longer to int(S * long / short) */
    if (w <= h) {
        *rw = S;
        *rh = (int)((double)S * h / w);
    } else {
        *rh = S;
        *rw = (int)((double)S * w / h);
    }
    /* CenterCrop(S): int(round((side - S) / 2.0)), Python's round: half to even */
    *top = (int)nearbyint((*rh - S) / 2.0);
    *left = (int)nearbyint((*rw - S) / 2.0);
}
