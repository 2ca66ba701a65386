#include "mosaic/output.h"

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/error.h"
#include "util/progress.h"

/* |v| histogram: bin k covers 2^((k - 2048) / 32) .. 2^((k - 2047) / 32): 1/32 of an
 * octave (2%) from about 1e-19 to 1e19; bin 0 also holds zeros and tinier values. */
static int abs_bin(double a)
{
    if (!(a > 0))
        return 0;
    int k = (int)floor(log2(a) * 32.0) + ABS_HIST_BINS / 2;
    return k < 0 ? 0 : k >= ABS_HIST_BINS ? ABS_HIST_BINS - 1 : k;
}

double out_abs_quantile(const out_raster *o, double q)
{
    long long total = 0, seen = 0;
    for (int k = 0; k < ABS_HIST_BINS; k++)
        total += o->hist[k];
    if (total == 0)
        return 0;
    for (int k = 0; k < ABS_HIST_BINS; k++) {
        seen += o->hist[k];
        if ((double)seen >= q * (double)total) {
            const int edge = k + 1 - ABS_HIST_BINS / 2; /* upper edge, in 1/32 octaves */
            return k == 0 ? 0 : exp2(edge / 32.0);
        }
    }
    return 0;
}

static char *tmp_name(const char *path, const char *tag)
{
    const char *slash = strrchr(path, '/');
    size_t dir = slash ? (size_t)(slash - path) + 1 : 0;
    size_t len = strlen(path) + 64;
    char *t = malloc(len);
    if (t)
        snprintf(t, len, "%.*s.%s.%s-%ld.tif", (int)dir, path, path + dir, tag, (long)getpid());
    return t;
}

void out_grid_of_scene(const scene *s, out_grid *g)
{
    memset(g, 0, sizeof *g);
    g->width = s->width, g->height = s->height;
    g->has_geotransform = s->has_geotransform;
    memcpy(g->geotransform, s->geotransform, sizeof g->geotransform);
    g->srs = s->ds ? GDALGetSpatialRef(s->ds) : NULL;
}

/* The value of creation option `name` in opt (NULL: not given); the last one wins. */
static const char *co_value(const out_options *opt, const char *name)
{
    const char *found = NULL;
    const size_t len = strlen(name);
    for (int k = 0; opt && k < opt->n_co; k++)
        if (!strncasecmp(opt->co[k], name, len) && opt->co[k][len] == '=')
            found = opt->co[k] + len + 1;
    return found;
}

/* How many overview levels geolrp streams for this output: those GDAL's COG driver would
 * make (OVERVIEW_COUNT, or halving until a BLOCKSIZE block holds the level), unless the
 * options want none or want GDAL to make them (another resampling, a warp to a tiling
 * scheme or CRS), in which case 0 and the COG driver does as told. */
static int streamed_levels(const out_raster *o)
{
    static const char *const gdal_makes[] = {"OVERVIEW_RESAMPLING", "RESAMPLING", "TARGET_SRS",
                                             "RES", "EXTENT", "ALIGNED_LEVELS", "ZOOM_LEVEL",
                                             "ZOOM_LEVEL_STRATEGY", "WARP_RESAMPLING"};
    for (size_t k = 0; k < sizeof gdal_makes / sizeof *gdal_makes; k++)
        if (co_value(&o->opt, gdal_makes[k]))
            return 0;
    const char *scheme = co_value(&o->opt, "TILING_SCHEME");
    const char *ovr = co_value(&o->opt, "OVERVIEWS");
    if ((scheme && strcasecmp(scheme, "CUSTOM")) ||
        (ovr && (!strcasecmp(ovr, "NONE") || !strcasecmp(ovr, "IGNORE_EXISTING"))))
        return 0;
    /* GDAL has validated both numbers (out_check_options) */
    const char *count = co_value(&o->opt, "OVERVIEW_COUNT");
    if (count) {
        long n = strtol(count, NULL, 10);
        return n < 0 ? 0 : n > OVR_MAX_LEVELS ? OVR_MAX_LEVELS : (int)n;
    }
    const char *block = co_value(&o->opt, "BLOCKSIZE");
    long size = block ? strtol(block, NULL, 10) : 512;
    return ovr_level_count(o->width, o->height, size > 0 && size < (1 << 20) ? (int)size : 512);
}

/* Empty overview levels in the temporary, filled as rows arrive. */
static int create_overviews(out_raster *o, glrp_error *err)
{
    const int levels = streamed_levels(o);
    if (levels == 0)
        return 0;
    if (ovr_init(&o->ovr, strcmp(o->resampling, "MODE") ? OVR_AVERAGE : OVR_MODE, o->width,
                 o->height, o->bands, levels, o->type == GDT_Byte ? 255 : 0))
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    int factors[OVR_MAX_LEVELS];
    for (int k = 0; k < levels; k++)
        factors[k] = 2 << k;
    CPLErrorReset();
    if (GDALBuildOverviews(o->ds, "NONE", levels, factors, 0, NULL, NULL, NULL) != CE_None)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: cannot create the overview levels: %s",
                         o->path, CPLGetLastErrorMsg());
    /* GDAL rounds each level's size up, as overview.c does; a mismatch would misplace rows. */
    GDALRasterBandH band = GDALGetRasterBand(o->ds, 1);
    for (int k = 0; k < levels; k++) {
        GDALRasterBandH ov = GDALGetOverview(band, k);
        if (!ov || GDALGetRasterBandXSize(ov) != o->ovr.width[k + 1] ||
            GDALGetRasterBandYSize(ov) != o->ovr.height[k + 1])
            return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: GDAL made overview level %d with "
                             "another size than expected", o->path, k + 1);
    }
    return 0;
}

int out_create(out_raster *o, const char *path, const out_grid *g, int bands,
               GDALDataType type, char **names, const char *resampling,
               const out_options *opt, glrp_error *err)
{
    memset(o, 0, sizeof *o);
    o->width = g->width, o->height = g->height, o->bands = bands, o->type = type;
    o->resampling = resampling;
    if (opt)
        o->opt = *opt;
    o->path = glrp_strdup(path);
    o->tmp_path = tmp_name(path, "part");
    o->sum = glrp_alloc((size_t)bands, sizeof *o->sum);
    o->sum2 = glrp_alloc((size_t)bands, sizeof *o->sum2);
    o->vmin = glrp_alloc((size_t)bands, sizeof *o->vmin);
    o->vmax = glrp_alloc((size_t)bands, sizeof *o->vmax);
    o->count = glrp_alloc((size_t)bands, sizeof *o->count);
    if (!o->path || !o->tmp_path || !o->sum || !o->sum2 || !o->vmin || !o->vmax || !o->count) {
        out_abort(o);
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    }
    for (int b = 0; b < bands; b++)
        o->vmin[b] = INFINITY, o->vmax[b] = -INFINITY;
    GDALDriverH drv = GDALGetDriverByName("GTiff");
    /* Strips of 64 rows, filled in order, uncompressed: the COG copy reads them in windows
     * of 512 rows and all bands, more than GDAL's cache holds on a wide scene, so
     * compressed strips were decompressed several times each (a third of the copy's time
     * on a 4096 x 4096 x 14 output, docs/benchmarks.md). The price is temporary space. */
    char **opts = NULL;
    opts = CSLSetNameValue(opts, "BLOCKYSIZE", "64");
    opts = CSLSetNameValue(opts, "INTERLEAVE", "BAND");
    opts = CSLSetNameValue(opts, "BIGTIFF", "IF_SAFER");
    CPLErrorReset();
    cleanup_register(o->tmp_path);
    o->ds = GDALCreate(drv, o->tmp_path, o->width, o->height, bands, type, opts);
    CSLDestroy(opts);
    if (!o->ds) {
        char note[96];
        glrp_fail(err, GLRP_ERR_RUNTIME, "%s: cannot create output: %s%s", path,
                  CPLGetLastErrorMsg(), free_space_note(o->tmp_path, note, sizeof note));
        out_abort(o);
        return GLRP_ERR_RUNTIME;
    }
    if (g->has_geotransform)
        GDALSetGeoTransform(o->ds, (double *)g->geotransform);
    if (g->srs)
        GDALSetSpatialRef(o->ds, g->srs);
    for (int b = 0; b < bands; b++) {
        GDALRasterBandH band = GDALGetRasterBand(o->ds, b + 1);
        GDALSetDescription(band, names[b]);
        GDALSetRasterNoDataValue(band, type == GDT_Byte ? 255.0 : NAN);
    }
    if (create_overviews(o, err)) {
        out_abort(o);
        return GLRP_ERR_RUNTIME;
    }
    return 0;
}

/* One finished overview row into the temporary's overview level. */
static int write_overview_row(void *ctx, int level, int row, int width, const float *values)
{
    out_raster *o = ctx;
    for (int b = 0; b < o->bands; b++) {
        GDALRasterBandH ov = GDALGetOverview(GDALGetRasterBand(o->ds, b + 1), level - 1);
        if (GDALRasterIO(ov, GF_Write, 0, row, width, 1, (void *)(values + (size_t)b * width),
                         width, 1, GDT_Float32, 0, 0) != CE_None)
            return GLRP_ERR_RUNTIME;
    }
    return 0;
}

int out_write_rows(out_raster *o, const float *data, int n, glrp_error *err)
{
    const size_t width = (size_t)o->width;
    for (int b = 0; b < o->bands; b++) {
        const float *p = data + (size_t)b * n * width;
        for (size_t e = 0; e < (size_t)n * width; e++) {
            double v = p[e];
            if (isnan(v) || (o->type == GDT_Byte && v == 255))
                continue;
            o->sum[b] += v;
            o->sum2[b] += v * v;
            o->count[b]++;
            if (v < o->vmin[b]) o->vmin[b] = v;
            if (v > o->vmax[b]) o->vmax[b] = v;
            if (b == 0)
                o->hist[abs_bin(fabs(v))]++;
        }
    }
    CPLErrorReset();
    CPLErr e = GDALDatasetRasterIO(o->ds, GF_Write, 0, o->rows_written, o->width, n,
                                   (void *)data, o->width, n, GDT_Float32, o->bands, NULL, 0, 0,
                                   0);
    if (e == CE_None && ovr_add_rows(&o->ovr, data, n, write_overview_row, o))
        e = CE_Failure;
    /* GDAL writes blocks as its cache evicts them, and a failure there (a full disk) is
     * only reported through CPLError, not through the return value. */
    char note[96];
    if (e != CE_None || CPLGetLastErrorType() >= CE_Failure)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: cannot write rows %d to %d: %s%s",
                         o->path, o->rows_written, o->rows_written + n - 1,
                         CPLGetLastErrorMsg(), free_space_note(o->tmp_path, note, sizeof note));
    o->rows_written += n;
    return 0;
}

void out_set_meta(out_raster *o, const char *key, const char *value)
{
    GDALSetMetadataItem(o->ds, key, value, NULL);
}

/* A qualitative palette (ColorBrewer Set1 then Dark2), cycled. */
static const unsigned char PALETTE[][3] = {
    {55, 126, 184}, {228, 26, 28}, {77, 175, 74}, {152, 78, 163}, {255, 127, 0},
    {255, 255, 51}, {166, 86, 40}, {247, 129, 191}, {153, 153, 153}, {27, 158, 119},
    {217, 95, 2}, {117, 112, 179}, {231, 41, 138}, {102, 166, 30}, {230, 171, 2}};
#define PALETTE_N ((int)(sizeof PALETTE / sizeof *PALETTE))

void glrp_class_color(int k, unsigned char rgb[3])
{
    memcpy(rgb, PALETTE[k % PALETTE_N], 3);
}

void out_set_color_table(out_raster *o, int n_classes, char **class_names)
{
    GDALRasterBandH band = GDALGetRasterBand(o->ds, 1);
    GDALColorTableH ct = GDALCreateColorTable(GPI_RGB);
    for (int k = 0; k < n_classes && k < 255; k++) {
        GDALColorEntry c = {PALETTE[k % PALETTE_N][0], PALETTE[k % PALETTE_N][1],
                            PALETTE[k % PALETTE_N][2], 255};
        GDALSetColorEntry(ct, k, &c);
    }
    GDALColorEntry none = {0, 0, 0, 0};
    GDALSetColorEntry(ct, 255, &none);
    GDALSetRasterColorTable(band, ct);
    GDALDestroyColorTable(ct);
    GDALSetRasterColorInterpretation(band, GCI_PaletteIndex);
    CSLDestroy(o->categories);
    o->categories = NULL;
    for (int k = 0; k < n_classes && k < 255; k++)
        o->categories = CSLAddString(o->categories, class_names[k]);
}

/* Category names do not survive the copy to COG (GTiff keeps them in a .aux.xml); set them
 * on the finished temporary COG, where GDAL writes them to "<cog_tmp>.aux.xml", which is
 * renamed beside the output with it. */
static int write_categories(out_raster *o, glrp_error *err)
{
    if (!o->categories)
        return 0;
    size_t len = strlen(o->cog_tmp) + sizeof ".aux.xml";
    o->aux_tmp = malloc(len);
    if (!o->aux_tmp)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    snprintf(o->aux_tmp, len, "%s.aux.xml", o->cog_tmp);
    cleanup_register(o->aux_tmp);
    CPLErrorReset();
    GDALDatasetH ds = GDALOpen(o->cog_tmp, GA_ReadOnly);
    if (!ds)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: cannot reopen to set class names: %s",
                         o->path, CPLGetLastErrorMsg());
    GDALSetRasterCategoryNames(GDALGetRasterBand(ds, 1), o->categories);
    GDALClose(ds);
    char note[96];
    if (CPLGetLastErrorType() >= CE_Failure || !path_exists(o->aux_tmp))
        return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: cannot write the class names beside it: "
                         "%s%s", o->path, CPLGetLastErrorMsg(),
                         free_space_note(o->aux_tmp, note, sizeof note));
    return 0;
}

static int CPL_STDCALL stderr_progress(double fraction, const char *msg, void *arg)
{
    (void)msg;
    progress_update(arg, fraction);
    return TRUE;
}

/* The COG options: DEFLATE with the predictor, at level 1 (a tenth of a run's time at the
 * default level 6 for about 1% larger files on float relevance, which compresses poorly
 * anyway); the overviews streamed into the source when there are; then the user's --co
 * over them. */
static char **cog_options(const char *resampling, int streamed, const out_options *opt)
{
    char threads[16];
    snprintf(threads, sizeof threads, "%d", opt && opt->threads > 1 ? opt->threads : 1);
    char **opts = NULL;
    opts = CSLSetNameValue(opts, "COMPRESS", "DEFLATE");
    opts = CSLSetNameValue(opts, "LEVEL", "1");
    opts = CSLSetNameValue(opts, "PREDICTOR", "YES");
    if (streamed)
        opts = CSLSetNameValue(opts, "OVERVIEWS", "FORCE_USE_EXISTING");
    else
        opts = CSLSetNameValue(opts, "OVERVIEW_RESAMPLING", resampling);
    opts = CSLSetNameValue(opts, "BIGTIFF", "IF_SAFER");
    opts = CSLSetNameValue(opts, "NUM_THREADS", threads);
    for (int k = 0; opt && k < opt->n_co; k++) {
        char *key = NULL;
        const char *value = CPLParseNameValue(opt->co[k], &key);
        if (key && value)
            opts = CSLSetNameValue(opts, key, value);
        CPLFree(key);
    }
    return opts;
}

int out_check_options(const char *const *co, int n_co, glrp_error *err)
{
    for (int k = 0; k < n_co; k++) {
        const char *eq = strchr(co[k], '=');
        if (!eq || eq == co[k])
            return glrp_fail(err, GLRP_ERR_INPUT, "--co %s: expected NAME=VALUE", co[k]);
    }
    out_options opt = {co, n_co, 1};
    GDALAllRegister();
    char **opts = cog_options("AVERAGE", 0, &opt);
    CPLErrorReset();
    CPLPushErrorHandler(CPLQuietErrorHandler);
    int ok = GDALValidateCreationOptions(GDALGetDriverByName("COG"), opts);
    CPLPopErrorHandler();
    CSLDestroy(opts);
    if (!ok)
        return glrp_fail(err, GLRP_ERR_INPUT, "--co: GDAL's COG driver refuses the creation "
                         "options: %s", CPLGetLastErrorMsg());
    return 0;
}

int out_finish(out_raster *o, int quiet, glrp_error *err)
{
    if (o->rows_written != o->height) {
        glrp_fail(err, GLRP_ERR_RUNTIME, "%s: only %d of %d rows were written", o->path,
                  o->rows_written, o->height);
        out_abort(o);
        return GLRP_ERR_RUNTIME;
    }
    if (o->ovr.levels > 0 && o->ovr.next_row[o->ovr.levels] != o->ovr.height[o->ovr.levels]) {
        glrp_fail(err, GLRP_ERR_RUNTIME, "%s: overview level %d is incomplete", o->path,
                  o->ovr.levels);
        out_abort(o);
        return GLRP_ERR_RUNTIME;
    }
    for (int b = 0; b < o->bands; b++) {
        if (o->count[b] == 0)
            continue;
        double mean = o->sum[b] / (double)o->count[b];
        double var = o->sum2[b] / (double)o->count[b] - mean * mean;
        GDALSetRasterStatistics(GDALGetRasterBand(o->ds, b + 1), o->vmin[b], o->vmax[b], mean,
                                sqrt(var > 0 ? var : 0));
    }
    /* Every block on disk before the copy: a block the cache failed to write (full disk)
     * must be an error here, not a hole in the COG. */
    char note[96];
    CPLErrorReset();
    GDALFlushCache(o->ds);
    if (CPLGetLastErrorType() >= CE_Failure) {
        glrp_fail(err, GLRP_ERR_RUNTIME, "%s: cannot write the temporary raster: %s%s",
                  o->path, CPLGetLastErrorMsg(), free_space_note(o->tmp_path, note,
                                                                 sizeof note));
        out_abort(o);
        return GLRP_ERR_RUNTIME;
    }
    char *cog_tmp = tmp_name(o->path, "cog");
    if (!cog_tmp) {
        out_abort(o);
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    }
    cleanup_register(cog_tmp);
    char **opts = cog_options(o->resampling, o->ovr.levels > 0, &o->opt);
    CPLErrorReset();
    /* GDAL's own GDALTermProgress prints to stdout; ours goes to stderr. */
    progress prog = {.quiet = quiet};
    GDALDatasetH cog = GDALCreateCopy(GDALGetDriverByName("COG"), cog_tmp, o->ds, FALSE, opts,
                                      stderr_progress, &prog);
    CSLDestroy(opts);
    int rc = 0;
    if (cog) {
        GDALClose(cog); /* void before GDAL 3.7: a failure shows in the error state */
        if (CPLGetLastErrorType() >= CE_Failure)
            cog = NULL;
    }
    if (!cog)
        rc = glrp_fail(err, GLRP_ERR_RUNTIME, "%s: cannot write the COG: %s%s", o->path,
                       CPLGetLastErrorMsg(), free_space_note(cog_tmp, note, sizeof note));
    /* The striped temporary is no longer needed either way. */
    GDALClose(o->ds);
    o->ds = NULL;
    VSIUnlink(o->tmp_path);
    o->cog_tmp = cog_tmp;
    if (!rc)
        rc = write_categories(o, err);
    if (rc)
        out_abort(o);
    return rc;
}

int out_stage(out_raster *o, outset *set, glrp_error *err)
{
    int rc = outset_add(set, o->cog_tmp, o->path, err);
    free(o->cog_tmp); /* the set owns the file now, or removed it */
    o->cog_tmp = NULL;
    if (!rc && o->aux_tmp) {
        size_t len = strlen(o->path) + sizeof ".aux.xml";
        char *aux = malloc(len);
        if (aux)
            snprintf(aux, len, "%s.aux.xml", o->path);
        rc = aux ? outset_add(set, o->aux_tmp, aux, err)
                 : glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
        free(aux);
        if (!rc)
            free(o->aux_tmp), o->aux_tmp = NULL;
    }
    out_abort(o);
    return rc;
}

void out_abort(out_raster *o)
{
    if (o->ds)
        GDALClose(o->ds);
    if (o->tmp_path) {
        VSIUnlink(o->tmp_path);
        cleanup_release(o->tmp_path);
    }
    if (o->cog_tmp) { /* NULL once staged */
        VSIUnlink(o->cog_tmp);
        cleanup_release(o->cog_tmp);
    }
    if (o->aux_tmp) {
        VSIUnlink(o->aux_tmp);
        cleanup_release(o->aux_tmp);
    }
    free(o->cog_tmp), free(o->aux_tmp);
    CSLDestroy(o->categories);
    ovr_free(&o->ovr);
    free(o->path), free(o->tmp_path), free(o->sum), free(o->sum2), free(o->vmin),
        free(o->vmax), free(o->count);
    memset(o, 0, sizeof *o);
}
