/*
 * Overviews built while the rows stream past, so that finishing an output only has to
 * compress them. Before, GDAL's COG driver read the whole raster back at the end to
 * resample it, which took longer than everything else the writer did.
 *
 * Level k (1-based) halves the previous level's size, rounding up as GDAL does; its
 * pixel (x, y) covers the full-resolution pixels [x 2^k, (x + 1) 2^k) x [y 2^k, (y + 1) 2^k)
 * that lie inside the raster. Its value is computed from all of them at once, not from
 * the level above:
 *   OVR_AVERAGE  the mean of the valid (non-NaN) ones; NaN when none is valid.
 *   OVR_MODE     the most frequent class among the valid ones (values 0 .. classes - 1;
 *                255 is nodata), ties going to the lower class; 255 when none is valid.
 * Sums and counts are carried exactly from level to level (a level-k sum is the sum of
 * four level-(k - 1) sums), which is what makes the mean exact rather than a mean of means
 * wherever nodata makes the counts uneven.
 */
#ifndef GLRP_MOSAIC_OVERVIEW_H
#define GLRP_MOSAIC_OVERVIEW_H

#include <stdint.h>

#define OVR_MAX_LEVELS 24

typedef enum { OVR_AVERAGE, OVR_MODE } ovr_kind;

/* Receives one finished row of level (1-based) `level`: values (bands, width). */
typedef int (*ovr_emit_fn)(void *ctx, int level, int row, int width, const float *values);

typedef struct {
    ovr_kind kind;
    int levels, bands, classes;
    int width[OVR_MAX_LEVELS + 1], height[OVR_MAX_LEVELS + 1]; /* [0]: full resolution */
    int next_row[OVR_MAX_LEVELS + 1]; /* full resolution: rows added; levels: rows emitted */
    /* Per level: the pending row's sums (bands, width) and counts (AVERAGE: bands x width
     * valid pixels; MODE: classes x width votes). */
    double *sum[OVR_MAX_LEVELS + 1];
    uint32_t *count[OVR_MAX_LEVELS + 1];
    float *line; /* one emitted row, (bands, width[1]) */
} ovr_stream;

/* How many levels GDAL's COG driver would make: halve until both sides fit in one block. */
int ovr_level_count(int width, int height, int block);

/* classes: for OVR_MODE (at most 255); ignored for OVR_AVERAGE. 0 or GLRP_ERR_RUNTIME (out
 * of memory). levels may be 0 (nothing is kept). */
int ovr_init(ovr_stream *s, ovr_kind kind, int width, int height, int bands, int levels,
             int classes);
void ovr_free(ovr_stream *s);

/* Adds n full-resolution rows, data (bands, n, width), in order from the top; every
 * overview row they complete goes to emit, level by level, top to bottom. The first
 * non-zero return of emit is returned. */
int ovr_add_rows(ovr_stream *s, const float *data, int n, ovr_emit_fn emit, void *ctx);

#endif
