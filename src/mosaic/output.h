/*
 * Output rasters: rows stream into a temporary striped GeoTIFF next to the destination,
 * and its overviews are built from them on the way (mosaic/overview.h); finishing sets
 * statistics and metadata, copies it into a Cloud Optimized GeoTIFF (the COG driver only
 * copies) under another temporary name, and renames that into place. An error or an
 * interruption leaves no file under the real name.
 */
#ifndef GLRP_MOSAIC_OUTPUT_H
#define GLRP_MOSAIC_OUTPUT_H

#include <gdal.h>

#include "geolrp/geolrp.h"
#include "io/tmpfile.h"
#include "mosaic/overview.h"
#include "raster/scene.h"

#define ABS_HIST_BINS 4096

/* COG creation options: the defaults, then co (NAME=VALUE) over them. */
typedef struct {
    const char *const *co;
    int n_co;
    int threads; /* compression threads */
} out_options;

typedef struct {
    GDALDatasetH ds;
    char *path, *tmp_path;
    int width, height, bands;
    GDALDataType type;
    int rows_written;
    /* Streamed statistics per band, and a log histogram of |v| for band 1. */
    double *sum, *sum2, *vmin, *vmax;
    long long *count;
    long long hist[ABS_HIST_BINS];
    char **categories;       /* class names (CSL list), written beside the COG */
    char *cog_tmp;           /* the finished COG, before it is staged */
    char *aux_tmp;           /* its .aux.xml (class names), if any */
    out_options opt;         /* a copy; the option strings are borrowed */
    const char *resampling;  /* GDAL's name of the overview resampling */
    ovr_stream ovr;          /* overviews streamed into the temporary (ovr.levels 0: GDAL
                                makes them, or there are none) */
} out_raster;

/* The grid of an output: size, geotransform and CRS (srs borrowed; NULL: none). */
typedef struct {
    int width, height;
    int has_geotransform;
    double geotransform[6];
    OGRSpatialReferenceH srs;
} out_grid;

/* The scene's grid (the CRS handle belongs to the scene's dataset). */
void out_grid_of_scene(const scene *s, out_grid *g);

/* type: GDT_Float32 (NaN nodata) or GDT_Byte (nodata 255). names: one per band.
 * resampling: "AVERAGE" or "MODE", for the overviews; opt (its strings borrowed until out_finish):
 * the COG options, which also decide whether geolrp streams the overviews itself (it does
 * unless they ask GDAL for another resampling, a warp, or no overviews). */
int out_create(out_raster *o, const char *path, const out_grid *g, int bands,
               GDALDataType type, char **names, const char *resampling,
               const out_options *opt, glrp_error *err);
/* Writes rows [rows_written, rows_written + n) from data (bands, n, width) as float. */
int out_write_rows(out_raster *o, const float *data, int n, glrp_error *err);
/* Sets a metadata item (default domain, which survives the copy to COG). */
void out_set_meta(out_raster *o, const char *key, const char *value);
void out_set_color_table(out_raster *o, int n_classes, char **class_names);
/* Statistics and the COG copy under a temporary name; quiet: no progress. Several outputs
 * are finished first and committed together, so a failure while writing one leaves none
 * of them under its real name. */
int out_finish(out_raster *o, int quiet, glrp_error *err);
/* Checks NAME=VALUE creation options against GDAL's COG driver before any work is done:
 * an error (code 2) names the option GDAL does not know or the value it refuses. */
int out_check_options(const char *const *co, int n_co, glrp_error *err);
/* Hands the finished COG (and its .aux.xml) to set, which renames them into place with the
 * run's other outputs (io/tmpfile.h), and frees o. */
int out_stage(out_raster *o, outset *set, glrp_error *err);
/* Removes every temporary and frees o (safe after out_stage). */
void out_abort(out_raster *o);

/* Colour of class k in class maps and their .qml (a qualitative palette, cycled). */
void glrp_class_color(int k, unsigned char rgb[3]);

/* The q-quantile of |band 1| from the streamed histogram (within a few percent). */
double out_abs_quantile(const out_raster *o, double q);

#endif
