/*
 * The tile grid: tiles of the model's input size every `stride` pixels; the last row and
 * column are shifted inward so that every pixel is covered without reading outside the
 * raster. A raster smaller than a tile gets one tile at 0, padded with the fill value.
 */
#ifndef GLRP_RASTER_TILING_H
#define GLRP_RASTER_TILING_H

/* Writes the start offsets along one axis; returns how many (at most max). */
int tile_positions(int size, int tile, int stride, int *pos, int max);

typedef enum { BLEND_HANN = 0, BLEND_UNIFORM, BLEND_CENTER } blend_mode;

/* Per-pixel weight of a th x tw tile whose rows and columns step by sy and sx, for
 * mosaicking overlapping tiles. */
void blend_weights(blend_mode mode, int th, int tw, int sy, int sx, float *w);

#endif
