#include "raster/tiling.h"

#include <math.h>

#define PI 3.14159265358979323846

int tile_positions(int size, int tile, int stride, int *pos, int max)
{
    int n = 0;
    if (size <= tile) {
        pos[n++] = 0;
        return n;
    }
    for (int p = 0; p + tile < size && n < max; p += stride)
        pos[n++] = p;
    if (n < max && (n == 0 || pos[n - 1] != size - tile))
        pos[n++] = size - tile;
    return n;
}

/* Hann: sin^2(pi (i + 0.5) / T) is never exactly zero (raster edges covered by one tile
 * keep a weight) and tiles at half-tile stride sum to one. Center: keep each tile's
 * central stride x stride part; the rest gets a token weight so that raster borders,
 * which only outer parts cover, still have a value. */
static float window_at(blend_mode mode, int i, int tile, int stride)
{
    if (mode == BLEND_HANN) {
        double s = sin(PI * (i + 0.5) / tile);
        return (float)(s * s);
    }
    if (mode == BLEND_CENTER)
        return fabs(i + 0.5 - tile / 2.0) <= stride / 2.0 ? 1.0f : 1e-6f;
    return 1.0f;
}

void blend_weights(blend_mode mode, int th, int tw, int sy, int sx, float *w)
{
    for (int y = 0; y < th; y++)
        for (int x = 0; x < tw; x++)
            w[y * tw + x] = window_at(mode, y, th, sy) * window_at(mode, x, tw, sx);
}
