/*
 * The JSON document of a part file: which scene, model and options the part belongs to
 * (merge compares these across parts), what the finishing stage needs to write the
 * outputs without the scene or the model (grid, CRS, band and class names, rules, zbox
 * bounds, setup warnings), and the part's statistics with their tile-row sums.
 *
 * Doubles are written with 17 significant digits, which read back to the same bits;
 * non-finite ones as the strings "nan", "inf", "-inf".
 */
#include <cpl_conv.h>
#include <limits.h>
#include <math.h>
#include <ogr_srs_api.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "pipeline/part_file.h"
#include "pipeline/run_state.h"
#include "util/error.h"
#include "util/sha256.h"

static const char *const BLENDS[] = {"hann", "uniform", "center"};

static json_t *jreal(double v)
{
    if (isnan(v))
        return json_string("nan");
    if (isinf(v))
        return json_string(v > 0 ? "inf" : "-inf");
    return json_real(v);
}

static json_t *stat_json(const stat_acc *a)
{
    return json_pack("[o, o, I, I]", jreal(a->sum), jreal(a->sum2), (json_int_t)a->n,
                     (json_int_t)a->undefined);
}

json_t *row_stats_json(const row_stats *r)
{
    return json_pack("{s:o, s:o, s:o, s:o}", "conservation_sum", jreal(r->cons_sum),
                     "border_ratio", stat_json(&r->border), "zero_input_share",
                     stat_json(&r->zero), "nodata_fill_share", stat_json(&r->filled));
}

static json_t *floats_json(const float *v, int n)
{
    json_t *a = json_array();
    for (int k = 0; a && k < n; k++)
        json_array_append_new(a, jreal(v[k]));
    return a;
}

static json_t *strings_json(char *const *v, int n)
{
    json_t *a = json_array();
    for (int k = 0; a && k < n; k++)
        json_array_append_new(a, json_string(v[k]));
    return a;
}

/* A fingerprint of a scene file that does not depend on its path or time stamps (a
 * staged copy matches) yet tells apart two scenes of the same grid and size: the SHA-256
 * of its size and of 16 slices of 64 KiB spread over it (all of it when smaller). */
#define FP_SLICES 16
#define FP_SLICE ((size_t)64 * 1024)

static int scene_fingerprint(const char *path, long long size, char hex[65])
{
    FILE *f = fopen(path, "rb");
    sha256_stream *h = f ? sha256_begin() : NULL;
    unsigned char *buf = h ? malloc(FP_SLICE) : NULL;
    int ok = buf != NULL;
    char head[32];
    snprintf(head, sizeof head, "%lld\n", size);
    if (ok)
        sha256_update(h, head, strlen(head));
    if (size <= (long long)(FP_SLICES * FP_SLICE)) {
        size_t n;
        while (ok && (n = fread(buf, 1, FP_SLICE, f)) > 0)
            sha256_update(h, buf, n);
        ok = ok && !ferror(f);
    } else {
        for (int k = 0; ok && k < FP_SLICES; k++) {
            long long off = (long long)k * (size - (long long)FP_SLICE) / (FP_SLICES - 1);
            ok = fseeko(f, (off_t)off, SEEK_SET) == 0 && fread(buf, 1, FP_SLICE, f) == FP_SLICE;
            if (ok)
                sha256_update(h, buf, FP_SLICE);
        }
    }
    if (ok)
        sha256_end(h, hex);
    else
        sha256_discard(h);
    free(buf);
    if (f)
        fclose(f);
    return ok ? 0 : -1;
}

/* The scene as a raster and, when it is a file, its size and fingerprint (not its path
 * or time: parts may read staged copies). */
static json_t *scene_identity(const run_state *st)
{
    json_t *o = json_object();
    struct stat sb;
    char fp[65];
    int is_file = stat(st->job->scene, &sb) == 0 && S_ISREG(sb.st_mode) &&
                  !scene_fingerprint(st->job->scene, (long long)sb.st_size, fp);
    json_object_set_new(o, "size", is_file ? json_integer((json_int_t)sb.st_size) : json_null());
    json_object_set_new(o, "fingerprint", is_file ? json_string(fp) : json_null());
    /* a GDAL connection string or virtual path: its name is all there is */
    json_object_set_new(o, "name", is_file ? json_null() : json_string(st->job->scene));
    json_object_set_new(o, "width", json_integer(st->grid.width));
    json_object_set_new(o, "height", json_integer(st->grid.height));
    json_t *idx = json_array();
    for (int k = 0; k < st->C; k++)
        json_array_append_new(idx, json_integer(st->sc.band_index[k]));
    json_object_set_new(o, "band_index", idx);
    json_object_set_new(o, "band_names", strings_json(st->band_names, st->C));
    json_t *gt = json_null();
    if (st->grid.has_geotransform) {
        gt = json_array();
        for (int k = 0; k < 6; k++)
            json_array_append_new(gt, jreal(st->grid.geotransform[k]));
    }
    json_object_set_new(o, "geotransform", gt);
    char *wkt = NULL;
    const char *opts[] = {"FORMAT=WKT2_2019", NULL};
    if (st->grid.srs && OSRExportToWktEx(st->grid.srs, &wkt, opts) == OGRERR_NONE && wkt)
        json_object_set_new(o, "srs_wkt", json_string(wkt));
    else
        json_object_set_new(o, "srs_wkt", json_null());
    CPLFree(wkt);
    return o;
}

static json_t *options_json(const run_state *st)
{
    const scene_job *j = st->job;
    json_t *o = json_object();
    char sha[65];
    glrp_error e = {0};
    json_object_set_new(o, "config_sha256", j->config && !sha256_file(j->config, sha, &e)
                                                ? json_string(sha) : json_null());
    json_object_set_new(o, "tile", json_pack("[i, i]", st->th, st->tw));
    json_object_set_new(o, "stride", json_pack("[i, i]", st->stride_y, st->stride_x));
    json_object_set_new(o, "blend", json_string(BLENDS[j->blend]));
    json_object_set_new(o, "target", j->target == TARGET_ALL ? json_string("all")
                                     : j->target == TARGET_INDEX ? json_integer(j->target_index)
                                                                 : json_string("predicted"));
    json_object_set_new(o, "init", json_string(glrp_init_name(j->init)));
    json_object_set_new(o, "min_valid", jreal(j->min_valid));
    json_object_set_new(o, "batch", json_integer(j->batch));
    json_object_set_new(o, "composite", json_string(j->rules.composite));
    json_object_set_new(o, "epsilon", jreal(j->rules.eps));
    json_object_set_new(o, "gamma", jreal(j->rules.gamma));
    json_object_set_new(o, "alpha", jreal(j->rules.alpha));
    json_object_set_new(o, "beta", jreal(j->rules.beta));
    json_object_set_new(o, "maxpool", json_string(j->rules.maxpool == GLRP_MAXPOOL_PROPORTIONAL
                                                      ? "proportional" : "wta"));
    json_object_set_new(o, "rules", json_string(st->rules_str));
    json_object_set_new(o, "zbox", j->rules.low
                                       ? json_pack("{s:o, s:o, s:s}", "low",
                                                   floats_json(j->rules.low, j->rules.n_bounds),
                                                   "high",
                                                   floats_json(j->rules.high, j->rules.n_bounds),
                                                   "source", st->zbox_source[0]
                                                                 ? st->zbox_source
                                                                 : "command line")
                                       : json_null());
    json_object_set_new(o, "normalization", json_string(st->norm.source));
    json_object_set_new(o, "fill_value", jreal(st->norm.fill_value));
    return o;
}

json_t *part_meta_describe(const run_state *st, double t_total)
{
    const scene_job *j = st->job;
    json_t *doc = json_object();
    if (!doc)
        return NULL;
    json_object_set_new(doc, "format", json_string(PART_FORMAT));
    json_object_set_new(doc, "format_version", json_integer(PART_FORMAT_VERSION));
    json_object_set_new(doc, "geolrp_version", json_string(GEOLRP_VERSION));
    json_object_set_new(doc, "part", json_pack("{s:i, s:i, s:[i, i], s:[i, i], s:[i, i]}",
                                               "index", j->part_index, "count", j->part_count,
                                               "tile_rows", st->part_t0, st->part_t1, "rows",
                                               st->part_a, st->part_b, "seam_rows",
                                               st->part_seam, st->part_a));
    char *real = realpath(j->scene, NULL);
    json_object_set_new(doc, "names", json_pack("{s:s, s:s, s:s?}", "scene", j->scene, "model",
                                                j->model, "scene_file", real));
    free(real);
    json_object_set_new(doc, "scene", scene_identity(st));
    json_object_set_new(doc, "model_sha256", json_string(st->sha));
    json_object_set_new(doc, "options", options_json(st));
    json_object_set_new(doc, "run", json_pack("{s:i, s:o, s:[i, i], s:i, s:i}", "outputs",
                                              st->K, "class_names",
                                              strings_json(st->class_names, st->n_classes),
                                              "tile_grid", st->ny, st->nx, "relevance_bands",
                                              st->n_rel, "accumulated_bands", st->n_acc));
    json_object_set_new(doc, "warnings", strings_json(st->warnings, st->n_warnings));
    json_t *stats = json_pack("{s:I, s:I, s:I, s:I, s:o, s:o, s:O}", "tiles_explained",
                              (json_int_t)st->tiles_explained, "skipped_no_valid_pixel",
                              (json_int_t)st->skipped_empty, "skipped_min_valid",
                              (json_int_t)st->skipped_min_valid, "conservation_tiles",
                              (json_int_t)st->cons_n, "conservation_min",
                              jreal(st->cons_n ? st->cons_min : NAN), "conservation_max",
                              jreal(st->cons_n ? st->cons_max : NAN), "tile_rows",
                              st->part_rows);
    json_object_set_new(doc, "stats", stats);
    json_object_set_new(doc, "time_seconds", json_pack("{s:f, s:f, s:f, s:f, s:f}", "read",
                                                       st->t_read, "explain", st->t_explain,
                                                       "mosaic", st->t_mosaic, "write",
                                                       st->t_write, "total", t_total));
    /* json_pack fails as a whole on a NULL member: check the pieces that can. */
    const char *keys[] = {"part", "names", "scene", "options", "run", "stats", "time_seconds"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
        if (!json_object_get(doc, keys[k])) {
            json_decref(doc);
            return NULL;
        }
    return doc;
}

/* ------------------------------------------------------------ reading --- */

/* Reading with the first missing or mistyped key remembered. */
typedef struct {
    const char *bad;
} rd;

static const json_t *at(rd *r, const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (!v && !r->bad)
        r->bad = key;
    return v;
}

static double dbl(rd *r, const json_t *v, const char *key)
{
    if (json_is_number(v))
        return json_number_value(v);
    const char *s = json_string_value(v);
    if (s && !strcmp(s, "nan"))
        return NAN;
    if (s && !strcmp(s, "inf"))
        return INFINITY;
    if (s && !strcmp(s, "-inf"))
        return -INFINITY;
    if (!r->bad)
        r->bad = key;
    return NAN;
}

static long long integer(rd *r, const json_t *v, const char *key, long long lo, long long hi)
{
    long long x = json_is_integer(v) ? (long long)json_integer_value(v) : lo - 1;
    if ((x < lo || x > hi) && !r->bad)
        r->bad = key;
    return x < lo || x > hi ? lo : x;
}

static const char *str(rd *r, const json_t *v, const char *key)
{
    if (!json_is_string(v) && !r->bad)
        r->bad = key;
    return json_is_string(v) ? json_string_value(v) : "";
}

static char **strings(rd *r, const json_t *a, const char *key, int n)
{
    if (json_array_size(a) != (size_t)n || n < 1) {
        if (!r->bad)
            r->bad = key;
        return NULL;
    }
    char **v = glrp_alloc((size_t)n, sizeof *v);
    for (int k = 0; v && k < n; k++)
        v[k] = glrp_strdup(str(r, json_array_get(a, (size_t)k), key));
    return v;
}

static void stat_from(rd *r, const json_t *a, stat_acc *s)
{
    if (json_array_size(a) != 4 && !r->bad)
        r->bad = "tile_rows";
    s->sum = dbl(r, json_array_get(a, 0), "tile_rows");
    s->sum2 = dbl(r, json_array_get(a, 1), "tile_rows");
    s->n = (long)integer(r, json_array_get(a, 2), "tile_rows", 0, LONG_MAX);
    s->undefined = (long)integer(r, json_array_get(a, 3), "tile_rows", 0, LONG_MAX);
}

int row_stats_from_json(const json_t *v, row_stats *out)
{
    rd r = {0};
    memset(out, 0, sizeof *out);
    out->cons_sum = dbl(&r, at(&r, v, "conservation_sum"), "conservation_sum");
    stat_from(&r, at(&r, v, "border_ratio"), &out->border);
    stat_from(&r, at(&r, v, "zero_input_share"), &out->zero);
    stat_from(&r, at(&r, v, "nodata_fill_share"), &out->filled);
    return r.bad ? -1 : 0;
}

static int fail_key(const char *path, const rd *r, glrp_error *err)
{
    return glrp_fail(err, GLRP_ERR_INPUT, "%s: part document: '%s' is missing or invalid", path,
                     r->bad);
}

int part_meta_restore(run_state *st, const json_t *doc, const char *path, glrp_error *err)
{
    scene_job *j = st->job;
    rd r = {0};
    const json_t *names = at(&r, doc, "names"), *sc = at(&r, doc, "scene");
    const json_t *o = at(&r, doc, "options"), *run = at(&r, doc, "run");
    j->scene = str(&r, at(&r, names, "scene"), "names.scene");
    j->model = str(&r, at(&r, names, "model"), "names.model");
    snprintf(st->sha, sizeof st->sha, "%s", str(&r, at(&r, doc, "model_sha256"), "model_sha256"));
    /* The grid and the CRS. */
    st->grid.width = (int)integer(&r, at(&r, sc, "width"), "scene.width", 1, INT_MAX);
    st->grid.height = (int)integer(&r, at(&r, sc, "height"), "scene.height", 1, INT_MAX);
    const json_t *gt = at(&r, sc, "geotransform");
    if (json_is_array(gt) && json_array_size(gt) == 6) {
        st->grid.has_geotransform = 1;
        for (int k = 0; k < 6; k++)
            st->grid.geotransform[k] = dbl(&r, json_array_get(gt, (size_t)k), "geotransform");
    } else if (!json_is_null(gt) && !r.bad) {
        r.bad = "scene.geotransform";
    }
    const json_t *wkt = at(&r, sc, "srs_wkt");
    if (json_is_string(wkt)) {
        char *text = (char *)json_string_value(wkt); /* OSRImportFromWkt only reads it */
        st->own_srs = OSRNewSpatialReference(NULL);
        if (!st->own_srs || OSRImportFromWkt(st->own_srs, &text) != OGRERR_NONE)
            return glrp_fail(err, GLRP_ERR_INPUT, "%s: the scene's CRS (srs_wkt) cannot be "
                             "read back", path);
        OSRSetAxisMappingStrategy(st->own_srs, OAMS_TRADITIONAL_GIS_ORDER);
        st->grid.srs = st->own_srs;
    }
    const json_t *bn = at(&r, sc, "band_names");
    st->C = (int)json_array_size(bn);
    if (st->C < 1 || st->C > SCENE_MAX_BANDS)
        r.bad = r.bad ? r.bad : "scene.band_names";
    st->band_names = strings(&r, bn, "scene.band_names", st->C);
    st->own_band_names = st->band_names != NULL;
    /* Model and tiling. */
    const json_t *cn = at(&r, run, "class_names");
    st->K = (int)integer(&r, at(&r, run, "outputs"), "run.outputs", 1, 255);
    st->n_classes = (int)json_array_size(cn);
    if (st->n_classes != (st->K == 1 ? 2 : st->K))
        r.bad = r.bad ? r.bad : "run.class_names";
    st->class_names = strings(&r, cn, "run.class_names", st->n_classes);
    const json_t *tile = at(&r, o, "tile"), *stride = at(&r, o, "stride");
    st->th = (int)integer(&r, json_array_get(tile, 0), "options.tile", 1, 1 << 16);
    st->tw = (int)integer(&r, json_array_get(tile, 1), "options.tile", 1, 1 << 16);
    st->stride_y = (int)integer(&r, json_array_get(stride, 0), "options.stride", 1, 1 << 16);
    st->stride_x = (int)integer(&r, json_array_get(stride, 1), "options.stride", 1, 1 << 16);
    /* Options that the outputs' metadata and the report name. */
    const char *blend = str(&r, at(&r, o, "blend"), "options.blend");
    for (int k = 0; k < 3; k++)
        if (!strcmp(blend, BLENDS[k]))
            j->blend = (blend_mode)k;
    const json_t *t = at(&r, o, "target");
    if (json_is_integer(t)) {
        j->target = TARGET_INDEX;
        j->target_index = (int)integer(&r, t, "options.target", 0, st->K - 1);
    } else {
        j->target = !strcmp(str(&r, t, "options.target"), "all") ? TARGET_ALL
                                                                 : TARGET_PREDICTED;
    }
    if (glrp_init_parse(str(&r, at(&r, o, "init"), "options.init"), &j->init) && !r.bad)
        r.bad = "options.init";
    j->min_valid = dbl(&r, at(&r, o, "min_valid"), "options.min_valid");
    j->batch = (int)integer(&r, at(&r, o, "batch"), "options.batch", 1, 1 << 20);
    snprintf(j->rules.composite, sizeof j->rules.composite, "%s",
             str(&r, at(&r, o, "composite"), "options.composite"));
    j->rules.eps = (float)dbl(&r, at(&r, o, "epsilon"), "options.epsilon");
    j->rules.gamma = (float)dbl(&r, at(&r, o, "gamma"), "options.gamma");
    j->rules.alpha = (float)dbl(&r, at(&r, o, "alpha"), "options.alpha");
    j->rules.beta = (float)dbl(&r, at(&r, o, "beta"), "options.beta");
    j->rules.maxpool = !strcmp(str(&r, at(&r, o, "maxpool"), "options.maxpool"), "proportional")
                           ? GLRP_MAXPOOL_PROPORTIONAL : GLRP_MAXPOOL_WTA;
    st->rules_str = glrp_strdup(str(&r, at(&r, o, "rules"), "options.rules"));
    const json_t *z = at(&r, o, "zbox");
    if (json_is_object(z)) {
        const json_t *lo = json_object_get(z, "low"), *hi = json_object_get(z, "high");
        int n = (int)json_array_size(lo);
        if (n < 1 || n > SCENE_MAX_BANDS || json_array_size(hi) != (size_t)n)
            r.bad = r.bad ? r.bad : "options.zbox";
        for (int k = 0; k < n && k < SCENE_MAX_BANDS; k++) {
            st->zlow[k] = (float)dbl(&r, json_array_get(lo, (size_t)k), "options.zbox");
            st->zhigh[k] = (float)dbl(&r, json_array_get(hi, (size_t)k), "options.zbox");
        }
        j->rules.low = st->zlow, j->rules.high = st->zhigh, j->rules.n_bounds = n;
        const char *src = str(&r, json_object_get(z, "source"), "options.zbox");
        if (strcmp(src, "command line"))
            snprintf(st->zbox_source, sizeof st->zbox_source, "%s", src);
    }
    snprintf(st->norm.source, sizeof st->norm.source, "%s",
             str(&r, at(&r, o, "normalization"), "options.normalization"));
    /* The warnings of the set-up; the finishing stage adds its own. */
    const json_t *w = at(&r, doc, "warnings");
    for (size_t k = 0; k < json_array_size(w) && st->n_warnings < RUN_MAX_WARNINGS; k++) {
        char *s = glrp_strdup(str(&r, json_array_get(w, k), "warnings"));
        if (!s)
            return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
        st->warnings[st->n_warnings++] = s;
    }
    if (r.bad)
        return fail_key(path, &r, err);
    if (!st->band_names || !st->class_names || !st->rules_str)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    for (int k = 0; k < st->C; k++)
        if (!st->band_names[k])
            return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    for (int k = 0; k < st->n_classes; k++)
        if (!st->class_names[k])
            return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    st->need_rel = 1;
    return 0;
}

int part_meta_add_stats(run_state *st, const json_t *doc, const char *path, double *t_total,
                        glrp_error *err)
{
    rd r = {0};
    const json_t *s = at(&r, doc, "stats"), *t = at(&r, doc, "time_seconds");
    st->tiles_explained += (long)integer(&r, at(&r, s, "tiles_explained"), "tiles_explained", 0,
                                         LONG_MAX);
    st->skipped_empty += (long)integer(&r, at(&r, s, "skipped_no_valid_pixel"),
                                       "skipped_no_valid_pixel", 0, LONG_MAX);
    st->skipped_min_valid += (long)integer(&r, at(&r, s, "skipped_min_valid"),
                                           "skipped_min_valid", 0, LONG_MAX);
    long n = (long)integer(&r, at(&r, s, "conservation_tiles"), "conservation_tiles", 0,
                           LONG_MAX);
    double mn = dbl(&r, at(&r, s, "conservation_min"), "conservation_min");
    double mx = dbl(&r, at(&r, s, "conservation_max"), "conservation_max");
    if (n) {
        st->cons_min = st->cons_n ? fmin(st->cons_min, mn) : mn;
        st->cons_max = st->cons_n ? fmax(st->cons_max, mx) : mx;
        st->cons_n += n;
    }
    st->t_read += dbl(&r, at(&r, t, "read"), "time_seconds.read");
    st->t_explain += dbl(&r, at(&r, t, "explain"), "time_seconds.explain");
    st->t_mosaic += dbl(&r, at(&r, t, "mosaic"), "time_seconds.mosaic");
    st->t_write += dbl(&r, at(&r, t, "write"), "time_seconds.write");
    *t_total += dbl(&r, at(&r, t, "total"), "time_seconds.total");
    const json_t *rows = at(&r, s, "tile_rows");
    if (!json_is_array(rows) && !r.bad)
        r.bad = "stats.tile_rows";
    if (r.bad)
        return fail_key(path, &r, err);
    for (size_t k = 0; k < json_array_size(rows); k++) {
        row_stats rs;
        if (row_stats_from_json(json_array_get(rows, k), &rs))
            return glrp_fail(err, GLRP_ERR_INPUT, "%s: part document: tile row %zu of "
                             "stats.tile_rows is invalid", path, k);
        run_add_row_stats(st, &rs);
    }
    return 0;
}
