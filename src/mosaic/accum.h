/*
 * Streaming mosaic: the weighted sums sum(w * v) and sum(w) of the tiles covering each
 * pixel, kept only for a stripe of rows one tile high. Tiles arrive row of tiles by row
 * of tiles; rows above the next tile row are final and handed to the writer, so memory is
 * bounded by the scene width, never its height.
 */
#ifndef GLRP_MOSAIC_ACCUM_H
#define GLRP_MOSAIC_ACCUM_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int width, height, rows; /* rows held: one tile height */
    int bands;
    int base;                /* raster row of the stripe's first row */
    float *sum;              /* (rows, bands, width) */
    float *weight;           /* (rows, width) */
    uint8_t *valid;          /* (rows, width): the scene's validity */
    long long valid_taken;   /* valid pixels in the rows taken so far */
} accum;

int accum_init(accum *a, int width, int height, int tile, int bands);
void accum_free(accum *a);

/* Adds a tile's values (bands, th, tw) with weights (th, tw) at (x0, y0); y0 >= base. Only
 * the part inside the raster (w, h) is used. */
void accum_add(accum *a, const float *values, const float *weights, int th, int tw, int x0,
               int y0, int w, int h);
/* Records the scene's validity for rows of a window read at (x0, y0). */
void accum_set_valid(accum *a, const uint8_t *valid, int x0, int y0, int w, int h);

/* Rows [base, until) are final: writes their mean values (NaN where invalid or uncovered)
 * to out (bands, n, width) and slides the stripe. Returns the row count n. */
int accum_take(accum *a, int until, float *out);

/* How many rows from base are final when the next tiles start at row until (0 if none). */
int accum_final_rows(const accum *a, int until);
/* Drops rows [base, until) (counting their valid pixels) and slides the stripe; the raw
 * sums of those rows, (rows, bands, width) from a->sum, may be read before. */
void accum_slide(accum *a, int until);
/* An empty accumulator whose first row is `base` (a part of a scene starts there). */
void accum_start_at(accum *a, int base);
/* Sets row y (inside the stripe) to given raw sums (bands, width), weights and validity
 * (width, non-zero = valid): the partial sums of a part file. -1 when y is outside. */
int accum_put_row(accum *a, int y, const float *sums, const float *weight, const float *valid);

#endif
