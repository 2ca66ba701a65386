/*
 * A scene: a GDAL raster opened for reading, the bands chosen for the model, and how
 * their values become the model's input (GDAL scale/offset, then normalisation). Reads
 * return float32 (C, h, w) windows and a validity mask built from GDAL's mask bands, so
 * nodata values, alpha bands, per-dataset masks and NaN are all handled the same way.
 *
 * A scene handle belongs to one thread: GDAL handles are not shared.
 */
#ifndef GLRP_RASTER_SCENE_H
#define GLRP_RASTER_SCENE_H

#include <gdal.h>
#include <stdint.h>

#include "geolrp/geolrp.h"

#define SCENE_MAX_BANDS 256

typedef struct {
    GDALDatasetH ds;
    char *path;
    int width, height;
    int n_bands;                  /* selected */
    int band_index[SCENE_MAX_BANDS]; /* 1-based GDAL band numbers */
    char *band_name[SCENE_MAX_BANDS]; /* description, or "band<N>" */
    double scale[SCENE_MAX_BANDS], offset[SCENE_MAX_BANDS];
    uint8_t nan_nodata[SCENE_MAX_BANDS]; /* the band declares NaN as its nodata value */
    int mask_per_dataset;         /* one mask serves every band */
    int has_mask;                 /* some band has a real mask (nodata, alpha, .msk) */
    double geotransform[6];
    int has_geotransform;
    int striped;                  /* not tiled: slow windowed reads */
} scene;

/* Opens path and selects bands: spec is NULL (all bands), or a comma-separated list of
 * 1-based indices or band descriptions. */
int scene_open(const char *path, const char *band_spec, scene *s, glrp_error *err);
void scene_close(scene *s);

/* Reads the window (x0, y0, w, h), which must lie inside the raster, as float32 values
 * with scale/offset applied: out is (n_bands, h, w); valid is (h, w), 1 where every
 * selected band is valid and finite. */
int scene_read(scene *s, int x0, int y0, int w, int h, float *out, uint8_t *valid,
               glrp_error *err);

/* The smallest and largest value of each selected band (before scale/offset), leaving out
 * the band's own nodata value and non-finite values, as GDALComputeRasterMinMax does; NaN
 * for a band without any such value. One pass over the scene reading all bands together:
 * band by band, a pixel-interleaved file larger than GDAL's cache is decoded once per band
 * (13 times for Sentinel-2). */
int scene_band_ranges(scene *s, double *min, double *max, glrp_error *err);

/* Of the pixels [first, first + count) of a window scene_read returned (band planes plane
 * values apart), how many hold NaN or +-Inf in some band where that is not the band's
 * nodata value: broken data rather than declared nodata (scene_read marks both invalid). */
long long scene_count_nonfinite(const scene *s, const float *data, size_t plane, size_t first,
                                size_t count);

#endif
