#include "mosaic/accum.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

int accum_init(accum *a, int width, int height, int tile, int bands)
{
    memset(a, 0, sizeof *a);
    a->width = width, a->height = height, a->bands = bands;
    a->rows = tile < height ? tile : height;
    size_t plane = (size_t)a->rows * width;
    a->sum = glrp_alloc(plane * (size_t)bands, sizeof *a->sum);
    a->weight = glrp_alloc(plane, sizeof *a->weight);
    a->valid = glrp_alloc(plane, 1);
    return a->sum && a->weight && a->valid ? 0 : GLRP_ERR_RUNTIME;
}

void accum_free(accum *a)
{
    free(a->sum), free(a->weight), free(a->valid);
    memset(a, 0, sizeof *a);
}

void accum_add(accum *a, const float *values, const float *weights, int th, int tw, int x0,
               int y0, int w, int h)
{
    /* Row by row, band by band: both sides are read and written contiguously. Every sum
     * gets the same single addition per tile as in any other order. */
    for (int y = 0; y < h; y++) {
        int r = y0 + y - a->base;
        if (r < 0 || r >= a->rows)
            continue;
        const float *wt = weights + (size_t)y * tw;
        float *weight = a->weight + (size_t)r * a->width + x0;
        for (int x = 0; x < w; x++)
            weight[x] += wt[x];
        for (int b = 0; b < a->bands; b++) {
            float *sum = a->sum + ((size_t)r * a->bands + b) * a->width + x0;
            const float *v = values + ((size_t)b * th + y) * tw;
            for (int x = 0; x < w; x++)
                sum[x] += wt[x] * v[x];
        }
    }
}

void accum_set_valid(accum *a, const uint8_t *valid, int x0, int y0, int w, int h)
{
    for (int y = 0; y < h; y++) {
        int r = y0 + y - a->base;
        if (r >= 0 && r < a->rows)
            memcpy(a->valid + (size_t)r * a->width + x0, valid + (size_t)y * w, (size_t)w);
    }
}

int accum_final_rows(const accum *a, int until)
{
    if (until > a->height)
        until = a->height;
    return until > a->base ? until - a->base : 0;
}

int accum_take(accum *a, int until, float *out)
{
    int n = accum_final_rows(a, until);
    if (n <= 0)
        return 0;
    const size_t width = (size_t)a->width;
    for (int r = 0; r < n; r++)
        for (int b = 0; b < a->bands; b++) {
            const float *s = a->sum + ((size_t)r * a->bands + b) * width;
            const float *wt = a->weight + (size_t)r * width;
            const uint8_t *v = a->valid + (size_t)r * width;
            float *o = out + ((size_t)b * n + r) * width;
            for (size_t x = 0; x < width; x++)
                o[x] = v[x] && wt[x] > 0 ? s[x] / wt[x] : NAN;
        }
    accum_slide(a, a->base + n);
    return n;
}

void accum_slide(accum *a, int until)
{
    int n = accum_final_rows(a, until);
    if (n <= 0)
        return;
    const size_t width = (size_t)a->width;
    for (size_t e = 0; e < (size_t)n * width; e++)
        a->valid_taken += a->valid[e];
    /* Slide: keep rows [n, rows), clear the rest. */
    int keep = a->rows - n;
    size_t row_sum = (size_t)a->bands * width;
    memmove(a->sum, a->sum + (size_t)n * row_sum, (size_t)keep * row_sum * sizeof *a->sum);
    memset(a->sum + (size_t)keep * row_sum, 0, (size_t)n * row_sum * sizeof *a->sum);
    memmove(a->weight, a->weight + (size_t)n * width, (size_t)keep * width * sizeof *a->weight);
    memset(a->weight + (size_t)keep * width, 0, (size_t)n * width * sizeof *a->weight);
    memmove(a->valid, a->valid + (size_t)n * width, (size_t)keep * width);
    memset(a->valid + (size_t)keep * width, 0, (size_t)n * width);
    a->base += n;
}

void accum_start_at(accum *a, int base)
{
    a->base = base;
}

int accum_put_row(accum *a, int y, const float *sums, const float *weight, const float *valid)
{
    int r = y - a->base;
    if (r < 0 || r >= a->rows)
        return -1;
    const size_t width = (size_t)a->width;
    memcpy(a->sum + (size_t)r * a->bands * width, sums, (size_t)a->bands * width * sizeof *sums);
    memcpy(a->weight + (size_t)r * width, weight, width * sizeof *weight);
    for (size_t x = 0; x < width; x++)
        a->valid[(size_t)r * width + x] = valid[x] != 0;
    return 0;
}
