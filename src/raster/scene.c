#include "raster/scene.h"

#include <cpl_conv.h>
#include <cpl_error.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

static int select_bands(scene *s, const char *spec, glrp_error *err)
{
    int total = GDALGetRasterCount(s->ds);
    if (!spec) {
        if (total > SCENE_MAX_BANDS)
            return glrp_fail(err, GLRP_ERR_INPUT, "%s: %d bands; at most %d can be used",
                             s->path, total, SCENE_MAX_BANDS);
        for (int k = 0; k < total; k++)
            s->band_index[k] = k + 1;
        s->n_bands = total;
        return 0;
    }
    char *copy = glrp_strdup(spec);
    if (!copy)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (s->n_bands == SCENE_MAX_BANDS) {
            free(copy);
            return glrp_fail(err, GLRP_ERR_INPUT, "--bands: more than %d bands",
                             SCENE_MAX_BANDS);
        }
        char *end;
        long idx = strtol(tok, &end, 10);
        int found = 0;
        if (*end == '\0' && end != tok) {
            found = idx >= 1 && idx <= total ? (int)idx : 0;
        } else {
            for (int b = 1; b <= total && !found; b++)
                if (!strcmp(GDALGetDescription(GDALGetRasterBand(s->ds, b)), tok))
                    found = b;
        }
        if (!found) {
            char names[1024] = "";
            for (int b = 1; b <= total; b++) {
                const char *d = GDALGetDescription(GDALGetRasterBand(s->ds, b));
                size_t n = strlen(names);
                snprintf(names + n, sizeof names - n, "%s%d%s%s%s", b > 1 ? ", " : "", b,
                         d[0] ? " (" : "", d, d[0] ? ")" : "");
            }
            glrp_fail(err, GLRP_ERR_INPUT, "--bands: '%s' is not a band of %s; it has %d: %s",
                      tok, s->path, total, names);
            free(copy);
            return GLRP_ERR_INPUT;
        }
        s->band_index[s->n_bands++] = found;
    }
    free(copy);
    if (s->n_bands == 0)
        return glrp_fail(err, GLRP_ERR_INPUT, "--bands: no band given");
    return 0;
}

int scene_open(const char *path, const char *band_spec, scene *s, glrp_error *err)
{
    memset(s, 0, sizeof *s);
    s->path = glrp_strdup(path);
    if (!s->path)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    CPLErrorReset();
    /* VERBOSE_ERROR: GDAL then says why ("No such file or directory", "not recognized as a
     * supported file format") instead of failing silently. */
    s->ds = GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY | GDAL_OF_VERBOSE_ERROR, NULL,
                       NULL, NULL);
    if (!s->ds) {
        const char *why = CPLGetLastErrorMsg();
        glrp_fail(err, GLRP_ERR_INPUT, "%s: cannot open as a raster%s%s", path,
                  why[0] ? ": " : "", why);
        scene_close(s);
        return GLRP_ERR_INPUT;
    }
    s->width = GDALGetRasterXSize(s->ds);
    s->height = GDALGetRasterYSize(s->ds);
    if (GDALGetRasterCount(s->ds) < 1) {
        glrp_fail(err, GLRP_ERR_INPUT, "%s: has no raster bands (a container of "
                  "subdatasets? open one of them, e.g. NETCDF:\"file.nc\":variable)", path);
        scene_close(s);
        return GLRP_ERR_INPUT;
    }
    int rc = select_bands(s, band_spec, err);
    if (rc) {
        scene_close(s);
        return rc;
    }
    for (int k = 0; k < s->n_bands; k++) {
        GDALRasterBandH b = GDALGetRasterBand(s->ds, s->band_index[k]);
        const char *d = GDALGetDescription(b);
        char fallback[32];
        snprintf(fallback, sizeof fallback, "band%d", s->band_index[k]);
        s->band_name[k] = glrp_strdup(d && d[0] ? d : fallback);
        int ok = 0;
        s->scale[k] = GDALGetRasterScale(b, &ok);
        if (!ok)
            s->scale[k] = 1.0;
        s->offset[k] = GDALGetRasterOffset(b, &ok);
        if (!ok)
            s->offset[k] = 0.0;
        int has_nodata = 0;
        double nodata = GDALGetRasterNoDataValue(b, &has_nodata);
        s->nan_nodata[k] = has_nodata && isnan(nodata);
        int flags = GDALGetMaskFlags(b);
        if (!(flags & GMF_ALL_VALID))
            s->has_mask = 1;
        if (k == 0)
            s->mask_per_dataset = (flags & GMF_PER_DATASET) != 0;
        int bx, by;
        GDALGetBlockSize(b, &bx, &by);
        if (by == 1 || (bx == s->width && s->width > 512))
            s->striped = 1;
    }
    s->has_geotransform = GDALGetGeoTransform(s->ds, s->geotransform) == CE_None;
    return 0;
}

void scene_close(scene *s)
{
    if (s->ds)
        GDALClose(s->ds);
    for (int k = 0; k < s->n_bands; k++)
        free(s->band_name[k]);
    free(s->path);
    memset(s, 0, sizeof *s);
}

int scene_read(scene *s, int x0, int y0, int w, int h, float *out, uint8_t *valid,
               glrp_error *err)
{
    const size_t plane = (size_t)w * h;
    CPLErrorReset();
    /* One call for all bands: pixel-interleaved files decode each block once. */
    CPLErr e = GDALDatasetRasterIOEx(s->ds, GF_Read, x0, y0, w, h, out, w, h, GDT_Float32,
                                     s->n_bands, s->band_index, 0, 0, 0, NULL);
    if (e != CE_None)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: cannot read rows %d to %d (columns %d to "
                         "%d): %s", s->path, y0, y0 + h - 1, x0, x0 + w - 1,
                         CPLGetLastErrorMsg());
    memset(valid, 1, plane);
    uint8_t *m = s->has_mask ? malloc(plane) : NULL;
    if (s->has_mask && !m)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    for (int k = 0; k < s->n_bands; k++) {
        if (m && (k == 0 || !s->mask_per_dataset)) {
            GDALRasterBandH b = GDALGetMaskBand(GDALGetRasterBand(s->ds, s->band_index[k]));
            if (GDALRasterIO(b, GF_Read, x0, y0, w, h, m, w, h, GDT_Byte, 0, 0) != CE_None) {
                free(m);
                return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: cannot read the mask of band %d "
                                 "at rows %d to %d: %s", s->path, s->band_index[k], y0,
                                 y0 + h - 1, CPLGetLastErrorMsg());
            }
            for (size_t p = 0; p < plane; p++)
                if (!m[p])
                    valid[p] = 0;
        }
        float *v = out + (size_t)k * plane;
        const float scale = (float)s->scale[k], offset = (float)s->offset[k];
        for (size_t p = 0; p < plane; p++) {
            if (!isfinite(v[p]))
                valid[p] = 0;
            v[p] = v[p] * scale + offset;
        }
    }
    free(m);
    return 0;
}

int scene_band_ranges(scene *s, double *min, double *max, glrp_error *err)
{
    const int C = s->n_bands, W = s->width;
    double nodata[SCENE_MAX_BANDS];
    int has_nodata[SCENE_MAX_BANDS];
    for (int k = 0; k < C; k++) {
        nodata[k] = GDALGetRasterNoDataValue(GDALGetRasterBand(s->ds, s->band_index[k]),
                                             &has_nodata[k]);
        min[k] = INFINITY, max[k] = -INFINITY;
    }
    int block_rows = 0;
    GDALGetBlockSize(GDALGetRasterBand(s->ds, s->band_index[0]), &(int){0}, &block_rows);
    if (block_rows < 1)
        block_rows = 1;
    /* Whole blocks per read, at least 64 rows, but at most 64 MiB of values: a tall
     * block (one strip for the whole file) is then read in pieces, which GDAL's cache
     * mostly absorbs, rather than all at once. */
    const size_t row_bytes = (size_t)C * (size_t)W * sizeof(double);
    int rows = (64 + block_rows - 1) / block_rows * block_rows;
    const size_t cap = ((size_t)64 << 20) / row_bytes;
    if ((size_t)rows > cap)
        rows = cap > 0 ? (int)cap : 1;
    if (rows > s->height)
        rows = s->height;
    double *v = glrp_alloc((size_t)C * rows * W, sizeof *v);
    if (!v)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    for (int y0 = 0; y0 < s->height; y0 += rows) {
        const int h = s->height - y0 < rows ? s->height - y0 : rows;
        const size_t plane = (size_t)h * W;
        CPLErrorReset();
        if (GDALDatasetRasterIOEx(s->ds, GF_Read, 0, y0, W, h, v, W, h, GDT_Float64, C,
                                  s->band_index, 0, 0, 0, NULL) != CE_None) {
            free(v);
            return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: cannot read rows %d to %d: %s",
                             s->path, y0, y0 + h - 1, CPLGetLastErrorMsg());
        }
        for (int k = 0; k < C; k++) {
            const double *p = v + (size_t)k * plane;
            double lo = min[k], hi = max[k];
            for (size_t e = 0; e < plane; e++) {
                if (!isfinite(p[e]) || (has_nodata[k] && p[e] == nodata[k]))
                    continue;
                if (p[e] < lo) lo = p[e];
                if (p[e] > hi) hi = p[e];
            }
            min[k] = lo, max[k] = hi;
        }
    }
    free(v);
    for (int k = 0; k < C; k++)
        if (min[k] > max[k])
            min[k] = max[k] = NAN;
    return 0;
}

long long scene_count_nonfinite(const scene *s, const float *data, size_t plane, size_t first,
                                size_t count)
{
    long long n = 0;
    for (size_t p = first; p < first + count; p++)
        for (int k = 0; k < s->n_bands; k++) {
            float v = data[(size_t)k * plane + p];
            if (isinf(v) || (isnan(v) && !s->nan_nodata[k])) {
                n++;
                break;
            }
        }
    return n;
}
