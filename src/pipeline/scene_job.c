#include "pipeline/scene_job.h"
#include "pipeline/run_state.h"

#include <cpl_conv.h>
#include <cpl_error.h>
#include <jansson.h>
#include <math.h>
#include <ogr_srs_api.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "analysis/band_stats.h"
#include "analysis/metrics.h"
#include "io/json_file.h"
#include "io/tmpfile.h"
#include "mosaic/accum.h"
#include "mosaic/output.h"
#include "mosaic/qml.h"
#include "raster/config.h"
#include "raster/scene.h"
#include "util/error.h"
#include "util/progress.h"
#include "util/sha256.h"

#define MAX_TILES_PER_AXIS 65536
#define MAX_CLASSES 255

void scene_job_init(scene_job *j)
{
    memset(j, 0, sizeof *j);
    glrp_rules_init(&j->rules);
    snprintf(j->rules.composite, sizeof j->rules.composite, "epsilon-gamma-box");
    j->init = GLRP_INIT_LOGIT;
    j->threads = 1;
    j->batch = 16;
}

int scene_target_parse(scene_job *j, const char *s)
{
    char *end;
    long k = strtol(s, &end, 10);
    if (!strcmp(s, "predicted"))
        j->target = TARGET_PREDICTED;
    else if (!strcmp(s, "all"))
        j->target = TARGET_ALL;
    else if (*end == '\0' && end != s) {
        if (k < 0)
            return GLRP_ERR_INPUT;
        j->target = TARGET_INDEX, j->target_index = (int)k;
    } else
        j->target = TARGET_NAME, j->target_name = s;
    return 0;
}


static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

double run_now(void)
{
    return now();
}

static void warn(run_state *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(run_state *st, const char *fmt, ...)
{
    char buf[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (!st->job->quiet)
        fprintf(stderr, "geolrp: warning: %s\n", buf);
    if (st->n_warnings < RUN_MAX_WARNINGS)
        st->warnings[st->n_warnings++] = glrp_strdup(buf);
}

/* ------------------------------------------------------------ set-up --- */

static void rules_text(const run_state *st, char *buf, size_t size);

static int refuse_existing(const scene_job *j, glrp_error *err)
{
    const char *outs[] = {j->output, j->class_map, j->scores, j->report, j->bands_json,
                          j->bands_csv, j->bands_svg, j->part};
    for (int k = 0; k < 8; k++)
        if (outs[k] && !j->overwrite && path_exists(outs[k]))
            return glrp_fail(err, GLRP_ERR_INPUT, "%s exists; use --overwrite to replace it",
                             outs[k]);
    return 0;
}

/* Every output folder writable before the work starts. */
static int check_output_folders(const scene_job *j, glrp_error *err)
{
    const char *outs[] = {j->output, j->class_map, j->scores, j->report, j->bands_json,
                          j->bands_csv, j->bands_svg, j->part};
    int rc = 0;
    for (int k = 0; k < 8 && !rc; k++)
        if (outs[k])
            rc = output_folder_check(outs[k], err);
    return rc;
}

/* Class names from the ONNX metadata (the QGIS plugin's {"0": "name", ...} or a list). */
static int load_class_names(run_state *st, glrp_error *err)
{
    st->class_names = glrp_alloc((size_t)st->n_classes, sizeof *st->class_names);
    if (!st->class_names)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    const char *meta = glrp_model_metadata(st->m, "class_names");
    json_t *v = meta ? json_loads(meta, JSON_DECODE_ANY, NULL) : NULL;
    for (int k = 0; k < st->n_classes; k++) {
        char key[16], fallback[32];
        snprintf(key, sizeof key, "%d", k);
        snprintf(fallback, sizeof fallback, "class_%d", k);
        json_t *e = json_is_object(v) ? json_object_get(v, key)
                    : json_is_array(v) ? json_array_get(v, (size_t)k) : NULL;
        st->class_names[k] = glrp_strdup(json_is_string(e) ? json_string_value(e) : fallback);
        if (!st->class_names[k]) {
            json_decref(v);
            return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
        }
    }
    json_decref(v);
    return 0;
}

static int check_bands(run_state *st, glrp_error *err)
{
    int rank = glrp_model_input_rank(st->m);
    const int64_t *d = glrp_model_input_dims(st->m);
    if (rank != 3)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: the model takes (N, %lld) vectors; scenes "
                         "need an image model (N, C, H, W)", st->job->model, (long long)d[0]);
    if (d[0] == st->sc.n_bands)
        return 0;
    char have[1024] = "", want[1024] = "";
    for (int k = 0; k < st->sc.n_bands; k++)
        snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", k ? ", " : "",
                 st->sc.band_name[k]);
    const char *names = glrp_model_metadata(st->m, "band_names");
    snprintf(want, sizeof want, "%s", names ? names : "(no band_names in its metadata)");
    return glrp_fail(err, GLRP_ERR_INPUT, "%s: %d bands selected (%s) but the model %s takes "
                     "%lld channels %s; choose bands with --bands", st->job->scene,
                     st->sc.n_bands, have, st->job->model, (long long)d[0], want);
}

static int resolve_target(run_state *st, glrp_error *err)
{
    scene_job *j = st->job;
    if (j->target == TARGET_NAME) {
        for (int k = 0; k < st->n_classes; k++)
            if (!strcmp(st->class_names[k], j->target_name)) {
                j->target = TARGET_INDEX;
                j->target_index = k;
                return 0;
            }
        return glrp_fail(err, GLRP_ERR_INPUT, "--target: '%s' is not a class of the model "
                         "(classes: %s%s)", j->target_name, st->class_names[0],
                         st->n_classes > 1 ? ", ..." : "");
    }
    if (j->target == TARGET_INDEX && (j->target_index < 0 || j->target_index >= st->K))
        return glrp_fail(err, GLRP_ERR_INPUT, "--target: %d is not a class index (0 to %d)",
                         j->target_index, st->K - 1);
    return 0;
}

/* zbox bounds, per band, in model units: config, else the model's valid_min/valid_max
 * metadata, else the bands' minimum and maximum (GDAL statistics) normalised. The fill
 * value of masked pixels is always inside. */
static int zbox_bounds(run_state *st, glrp_error *err)
{
    const int C = st->C;
    if (st->cfg.has_zbox) {
        if (st->cfg.n_zbox != 1 && st->cfg.n_zbox != C)
            return glrp_fail(err, GLRP_ERR_INPUT, "%s: zbox has %d values for %d bands",
                             st->job->config, st->cfg.n_zbox, C);
        for (int k = 0; k < C; k++) {
            st->zlow[k] = st->cfg.zbox_low[st->cfg.n_zbox == 1 ? 0 : k];
            st->zhigh[k] = st->cfg.zbox_high[st->cfg.n_zbox == 1 ? 0 : k];
        }
        snprintf(st->zbox_source, sizeof st->zbox_source, "config");
    } else {
        const char *lo = glrp_model_metadata(st->m, "valid_min");
        const char *hi = glrp_model_metadata(st->m, "valid_max");
        json_t *jl = lo ? json_loads(lo, JSON_DECODE_ANY, NULL) : NULL;
        json_t *jh = hi ? json_loads(hi, JSON_DECODE_ANY, NULL) : NULL;
        int ok = json_is_array(jl) && json_is_array(jh) && json_array_size(jl) == (size_t)C &&
                 json_array_size(jh) == (size_t)C;
        for (int k = 0; ok && k < C; k++) {
            json_t *a = json_array_get(jl, (size_t)k), *b = json_array_get(jh, (size_t)k);
            ok = json_is_number(a) && json_is_number(b);
            if (ok) {
                st->zlow[k] = (float)json_number_value(a);
                st->zhigh[k] = (float)json_number_value(b);
            }
        }
        json_decref(jl);
        json_decref(jh);
        if (ok) {
            snprintf(st->zbox_source, sizeof st->zbox_source, "ONNX metadata valid_min/max");
        } else {
            /* Exact: a box that misses the extremes would break zbox's assumption. A band
             * without any valid pixel keeps the fill value as its range. */
            double mn[SCENE_MAX_BANDS], mx[SCENE_MAX_BANDS];
            int rc = scene_band_ranges(&st->sc, mn, mx, err);
            if (rc)
                return rc;
            for (int k = 0; k < C; k++) {
                double a = normalize_value(&st->norm, &st->sc, k,
                                           mn[k] * st->sc.scale[k] + st->sc.offset[k]);
                double bb = normalize_value(&st->norm, &st->sc, k,
                                            mx[k] * st->sc.scale[k] + st->sc.offset[k]);
                if (isnan(a) || isnan(bb))
                    a = bb = st->norm.fill_value;
                st->zlow[k] = (float)(a < bb ? a : bb);
                st->zhigh[k] = (float)(a < bb ? bb : a);
            }
            snprintf(st->zbox_source, sizeof st->zbox_source, "band minimum and maximum");
        }
    }
    for (int k = 0; k < C; k++) {
        float fill = st->norm.fill_value;
        if (fill < st->zlow[k]) st->zlow[k] = fill;
        if (fill > st->zhigh[k]) st->zhigh[k] = fill;
    }
    st->job->rules.low = st->zlow;
    st->job->rules.high = st->zhigh;
    st->job->rules.n_bounds = C;
    return 0;
}

/* The value a band is replaced with for occlusion: its scene mean (GDAL statistics,
 * approximate), or the given value, in both cases normalised like the data. */
static void occlusion_baseline(run_state *st)
{
    for (int k = 0; k < st->C; k++) {
        double raw = st->job->baseline;
        if (!st->job->baseline_set) {
            GDALRasterBandH b = GDALGetRasterBand(st->sc.ds, st->sc.band_index[k]);
            double mn, mx, mean, sd;
            CPLPushErrorHandler(CPLQuietErrorHandler);
            CPLErr e = GDALComputeRasterStatistics(b, TRUE, &mn, &mx, &mean, &sd, NULL, NULL);
            CPLPopErrorHandler();
            if (e != CE_None) { /* no valid pixel: the fill value stands in */
                st->baseline[k] = st->norm.fill_value;
                continue;
            }
            raw = mean * st->sc.scale[k] + st->sc.offset[k];
        }
        st->baseline[k] = (float)normalize_value(&st->norm, &st->sc, k, raw);
    }
}

static int setup(run_state *st, glrp_error *err)
{
    scene_job *j = st->job;
    int rc;
    config_init(&st->cfg);
    if (j->config && (rc = config_load(j->config, &st->cfg, err)))
        return rc;
    /* Command line > config > built-in defaults. */
    if (!j->composite_set && st->cfg.composite)
        snprintf(j->rules.composite, sizeof j->rules.composite, "%s", st->cfg.composite);
    if (!j->tile)
        j->tile = st->cfg.tile;
    if (!j->stride)
        j->stride = st->cfg.stride;
    if (!j->min_valid_set && st->cfg.has_min_valid)
        j->min_valid = st->cfg.min_valid;
    if (!j->blend_set && st->cfg.blend) {
        if (!strcmp(st->cfg.blend, "hann")) j->blend = BLEND_HANN;
        else if (!strcmp(st->cfg.blend, "uniform")) j->blend = BLEND_UNIFORM;
        else if (!strcmp(st->cfg.blend, "center")) j->blend = BLEND_CENTER;
        else return glrp_fail(err, GLRP_ERR_INPUT, "%s: blend '%s' is not hann, uniform or "
                              "center", j->config, st->cfg.blend);
    }
    if (!j->target_set && st->cfg.target && scene_target_parse(j, st->cfg.target))
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: target %s is negative", j->config,
                         st->cfg.target);
    if (!j->init_set && st->cfg.init) {
        if (glrp_init_parse(st->cfg.init, &j->init))
            return glrp_fail(err, GLRP_ERR_INPUT, "%s: init '%s' is not one, logit or prob",
                             j->config, st->cfg.init);
    }
    if ((rc = scene_open(j->scene, j->bands ? j->bands : st->cfg.bands, &st->sc, err)))
        return rc;
    if (j->loaded_model)
        st->m = j->loaded_model;
    else if ((rc = glrp_model_load(j->model, j->batch, &st->m, err)))
        return rc;
    if ((rc = check_bands(st, err)))
        return rc;
    const int64_t *d = glrp_model_input_dims(st->m);
    st->C = (int)d[0], st->th = (int)d[1], st->tw = (int)d[2];
    st->K = glrp_model_num_outputs(st->m);
    st->n_classes = st->K == 1 ? 2 : st->K;
    if (j->tile && (j->tile != st->th || j->tile != st->tw))
        return glrp_fail(err, GLRP_ERR_INPUT, "--tile %d: the model takes %d x %d tiles; the "
                         "tile must equal the model's input size", j->tile, st->th, st->tw);
    if (j->stride < 0 || (j->stride && (j->stride > st->th || j->stride > st->tw)))
        return glrp_fail(err, GLRP_ERR_INPUT, "--stride %d: must be from 1 to the tile size "
                         "(%d)", j->stride, st->th < st->tw ? st->th : st->tw);
    st->stride_y = j->stride ? j->stride : (st->th / 2 > 0 ? st->th / 2 : 1);
    st->stride_x = j->stride ? j->stride : (st->tw / 2 > 0 ? st->tw / 2 : 1);
    if ((rc = load_class_names(st, err)) || (rc = resolve_target(st, err)))
        return rc;

    st->norm = st->cfg.norm;
    if (st->norm.mode == NORM_NONE && !st->norm.has_scale && !st->norm.has_clip &&
        (rc = config_norm_from_model(st->m, st->C, &st->norm, err)))
        return rc;
    if (st->norm.n > 1 && st->norm.n != st->C)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: per-band lists have %d values for %d "
                         "bands", j->config, st->norm.n, st->C);
    st->norm.fill_value = st->cfg.norm.fill_value;

    st->want_bands = j->bands_json || j->bands_csv || j->bands_svg;
    st->need_rel = j->output || st->want_bands || j->part_count;
    if (st->want_bands && j->target == TARGET_ALL)
        return glrp_fail(err, GLRP_ERR_INPUT, "--target all gives one relevance per class and "
                         "no per-band relevance; band importance needs one target");
    if (j->occlusion)
        occlusion_baseline(st);
    if (st->need_rel) {
        if (glrp_rules_need_bounds(st->m, &j->rules) && !j->rules.low &&
            (rc = zbox_bounds(st, err)))
            return rc;
        if ((rc = glrp_rules_check(st->m, &j->rules, err)))
            return rc;
        for (int k = 0; k < glrp_model_num_linear(st->m); k++) {
            glrp_rule r = glrp_rule_for_linear(st->m, &j->rules, k);
            if (glrp_model_linear_is_first(st->m, k) &&
                (r.kind == GLRP_RULE_FLAT || r.kind == GLRP_RULE_WSQUARE))
                warn(st, "the first layer uses the %s rule, which gives every band of a pixel "
                     "the same share: the per-band relevance layers say nothing about bands "
                     "(use epsilon-gamma-box for band importance)",
                     r.kind == GLRP_RULE_FLAT ? "flat" : "wsquare");
        }
    }
    if (!st->sc.has_geotransform)
        warn(st, "%s has no georeferencing; the outputs keep its pixel grid without a CRS",
             j->scene);
    if (st->sc.striped && st->sc.height > st->th) /* else one read takes it all */
        warn(st, "%s is striped, not tiled: windowed reads are slow (gdal_translate -co "
             "TILED=YES makes a tiled copy)", j->scene);
    if (st->sc.width < st->tw || st->sc.height < st->th)
        warn(st, "%s (%d x %d) is smaller than a tile (%d x %d): padded with the fill value",
             j->scene, st->sc.width, st->sc.height, st->tw, st->th);
    glrp_set_threads(j->threads);
    /* What the finishing stage needs, so that merge can give it without scene or model. */
    out_grid_of_scene(&st->sc, &st->grid);
    st->band_names = st->sc.band_name;
    char buf[4096] = "";
    if (st->need_rel)
        rules_text(st, buf, sizeof buf);
    if (!(st->rules_str = glrp_strdup(buf)))
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    if (j->model_sha256) {
        snprintf(st->sha, sizeof st->sha, "%s", j->model_sha256);
        return 0;
    }
    return sha256_file(j->model, st->sha, err);
}

int run_layout(run_state *st, glrp_error *err)
{
    scene_job *j = st->job;
    st->want_classes = j->class_map || j->scores || !st->need_rel || st->want_bands;
    /* Class maps are Byte with 255 for nodata; run_batch keeps probabilities per class in
     * a buffer of MAX_CLASSES. */
    if (st->want_classes && st->n_classes > MAX_CLASSES)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: %d classes; class maps, scores and band "
                         "importance take at most %d (explain without --class-map and "
                         "--scores has no limit)", j->model, st->n_classes, MAX_CLASSES);
    st->n_rel = !st->need_rel ? 0 : j->target == TARGET_ALL ? st->n_classes : 1 + st->C;
    /* A part always carries the class probabilities: merge decides about class maps. */
    st->n_acc = st->n_rel + (st->want_classes || j->part_count ? st->n_classes : 0);
    if (st->want_bands &&
        band_stats_init(&st->bs, st->C, st->n_classes, st->band_names, st->class_names,
                        j->occlusion))
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    if (st->need_rel) {
        st->rel_names = glrp_alloc((size_t)st->n_rel, sizeof *st->rel_names);
        if (!st->rel_names)
            return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
        for (int b = 0; b < st->n_rel; b++) {
            if (j->target == TARGET_ALL)
                st->rel_names[b] = glrp_concat("relevance_", st->class_names[b], "");
            else
                st->rel_names[b] = b == 0 ? glrp_concat("relevance_", "total", "")
                                          : glrp_concat("relevance_", st->band_names[b - 1], "");
            if (!st->rel_names[b])
                return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
        }
    }
    return 0;
}

int run_open_outputs(run_state *st, glrp_error *err)
{
    scene_job *j = st->job;
    const out_options opt = {j->creation_options, j->n_creation_options, j->threads};
    int rc;
    if (j->output) {
        if ((rc = out_create(&st->rel_out, j->output, &st->grid, st->n_rel, GDT_Float32,
                             st->rel_names, "AVERAGE", &opt, err)))
            return rc;
        st->rel_open = 1;
    }
    if (j->class_map) {
        char *name = "class";
        if ((rc = out_create(&st->cls_out, j->class_map, &st->grid, 1, GDT_Byte, &name, "MODE",
                             &opt, err)))
            return rc;
        st->cls_open = 1;
        out_set_color_table(&st->cls_out, st->n_classes, st->class_names);
    }
    if (j->scores) {
        char *name = "probability";
        if ((rc = out_create(&st->sc_out, j->scores, &st->grid, 1, GDT_Float32, &name,
                             "AVERAGE", &opt, err)))
            return rc;
        st->sc_open = 1;
    }
    return 0;
}

int run_alloc_rows(run_state *st, int window, glrp_error *err)
{
    const size_t W = (size_t)st->grid.width;
    const int rows = window < st->grid.height ? window : st->grid.height;
    for (int k = 0; k < 2; k++)
        st->rows[k] = glrp_alloc((size_t)st->n_acc * (size_t)rows * W, sizeof(float));
    st->cls_rows = glrp_alloc((size_t)rows * W, sizeof(float));
    st->score_rows = glrp_alloc((size_t)rows * W, sizeof(float));
    st->class_pixels = glrp_alloc((size_t)st->n_classes, sizeof(long long));
    if (!st->rows[0] || !st->rows[1] || !st->cls_rows || !st->score_rows || !st->class_pixels ||
        accum_init(&st->acc, st->grid.width, st->grid.height, window, st->n_acc))
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory for a stripe of %d rows x %d "
                         "columns x %d bands", rows, st->grid.width, st->n_acc);
    return 0;
}

static int alloc_buffers(run_state *st, glrp_error *err)
{
    const size_t tile = (size_t)st->th * st->tw, W = (size_t)st->sc.width;
    const size_t in = (size_t)st->C * tile, B = (size_t)st->job->batch;
    const int rows = st->th < st->sc.height ? st->th : st->sc.height;
    int rc = run_alloc_rows(st, st->th, err);
    if (rc)
        return rc;
    st->weights = glrp_alloc(tile, sizeof(float));
    for (int k = 0; k < 2; k++) {
        st->stripe[k] = glrp_alloc((size_t)st->C * (size_t)rows * W, sizeof(float));
        st->stripe_valid[k] = glrp_alloc((size_t)rows * W, 1);
    }
    st->batch_x = glrp_alloc(B * in, sizeof(float));
    st->batch_r = glrp_alloc(B * in, sizeof(float));
    st->batch_s = glrp_alloc(B * (size_t)st->K, sizeof(float));
    st->batch_x0 = glrp_alloc(B, sizeof(int));
    st->batch_valid = glrp_alloc(B * tile, 1);
    st->tile_rp = glrp_alloc(tile, sizeof(float));
    st->tile_vals = glrp_alloc((size_t)st->n_acc * tile, sizeof(float));
    if (st->job->occlusion) {
        st->occl_x = glrp_alloc(B * in, sizeof(float));
        st->occl_s = glrp_alloc(B * (size_t)st->K, sizeof(float));
        if (!st->occl_x || !st->occl_s)
            return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    }
    if (!st->weights || !st->stripe[0] || !st->stripe[1] || !st->stripe_valid[0] ||
        !st->stripe_valid[1] || !st->batch_x || !st->batch_r ||
        !st->batch_s || !st->batch_x0 || !st->batch_valid || !st->tile_rp || !st->tile_vals)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory for a stripe of %d rows x %d "
                         "columns x %d bands", rows, st->sc.width, st->n_acc);
    blend_weights(st->job->blend, st->th, st->tw, st->stride_y, st->stride_x, st->weights);
    return 0;
}

/* ------------------------------------------------------------- tiles --- */

/* Class probabilities of one tile's scores (softmax; a single output is a logit). */
static void class_probs(const run_state *st, const float *z, float *p)
{
    if (st->K == 1) {
        p[1] = 1.0f / (1.0f + expf(-z[0]));
        p[0] = 1.0f - p[1];
        return;
    }
    float mx = z[0];
    for (int k = 1; k < st->K; k++)
        mx = z[k] > mx ? z[k] : mx;
    double sum = 0;
    for (int k = 0; k < st->K; k++)
        sum += exp(z[k] - mx);
    for (int k = 0; k < st->K; k++)
        p[k] = (float)(exp(z[k] - mx) / sum);
}

/* Per tile: does relevance pile up at the tile border (padding), avoid inputs equal to 0
 * (rules that multiply by the input), or land on nodata-filled pixels? */
static void artifact_indicators(run_state *st, int s)
{
    const size_t tile = (size_t)st->th * st->tw, in = (size_t)st->C * tile;
    const float *R = st->batch_r + (size_t)s * in, *x = st->batch_x + (size_t)s * in;
    const uint8_t *valid = st->batch_valid + (size_t)s * tile;
    relevance_per_pixel(R, st->C, tile, st->tile_rp);
    int k = st->th / 16 > 1 ? st->th / 16 : 1;
    stat_add(&st->row.border, metric_border_ratio(st->tile_rp, st->th, st->tw, k));
    stat_add(&st->row.zero, metric_zero_input_share(R, x, in));
    double filled = 0, all = 0;
    size_t n_filled = 0;
    for (size_t e = 0; e < tile; e++) {
        all += fabsf(st->tile_rp[e]);
        if (!valid[e]) {
            filled += fabsf(st->tile_rp[e]);
            n_filled++;
        }
    }
    stat_add(&st->row.filled, n_filled && all > 0
                                  ? (filled / all) / ((double)n_filled / (double)tile) : NAN);
}

/* Occlusion: each band in turn replaced by its baseline in every tile of the batch; the
 * drop of the explained target's score is accumulated per band. */
static int occlude(run_state *st, const glrp_sample_stats *stats, glrp_error *err)
{
    const size_t tile = (size_t)st->th * st->tw, in = (size_t)st->C * tile;
    const int n = st->n_batch;
    for (int c = 0; c < st->C; c++) {
        memcpy(st->occl_x, st->batch_x, (size_t)n * in * sizeof(float));
        for (int s = 0; s < n; s++) {
            float *plane = st->occl_x + (size_t)s * in + (size_t)c * tile;
            for (size_t e = 0; e < tile; e++)
                plane[e] = st->baseline[c];
        }
        if (glrp_forward(st->m, st->occl_x, n, st->occl_s, err))
            return err->code;
        for (int s = 0; s < n; s++)
            st->bs.occl_sum[c] += stats[s].score - st->occl_s[(size_t)s * st->K + stats[s].target];
    }
    st->bs.occl_tiles += n;
    return 0;
}

static int run_batch(run_state *st, int y0, glrp_error *err)
{
    scene_job *j = st->job;
    if (st->n_batch == 0)
        return 0;
    const size_t tile = (size_t)st->th * st->tw, in = (size_t)st->C * tile;
    const int n = st->n_batch;
    double t0 = now();
    int passes = st->need_rel ? (j->target == TARGET_ALL ? st->n_classes : 1) : 0;
    glrp_sample_stats stats[n];
    float probs[MAX_CLASSES] = {0};
    if (passes == 0 && glrp_forward(st->m, st->batch_x, n, st->batch_s, err))
        return err->code;
    /* Relevance bands are filled pass by pass; keep them per tile in tile_vals order. */
    float *rel = passes > 1 ? glrp_alloc((size_t)n * passes * tile, sizeof *rel) : NULL;
    if (passes > 1 && !rel)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    for (int p = 0; p < passes; p++) {
        int target = j->target == TARGET_ALL ? (st->K == 1 ? 0 : p)
                     : j->target == TARGET_INDEX ? (st->K == 1 ? 0 : j->target_index)
                                                 : GLRP_TARGET_PREDICTED;
        if (glrp_explain(st->m, &j->rules, target, j->init, st->batch_x, n, st->batch_r,
                         st->batch_s, stats, err)) {
            free(rel);
            return err->code;
        }
        for (int s = 0; s < n; s++) {
            double ratio = stats[s].relevance_start != 0
                               ? stats[s].relevance_input / stats[s].relevance_start : NAN;
            if (isfinite(ratio)) {
                st->row.cons_sum += ratio;
                st->cons_min = st->cons_n ? fmin(st->cons_min, ratio) : ratio;
                st->cons_max = st->cons_n ? fmax(st->cons_max, ratio) : ratio;
                st->cons_n++;
            }
            if (p == 0)
                artifact_indicators(st, s);
            if (rel) { /* total relevance of class p for tile s */
                relevance_per_pixel(st->batch_r + (size_t)s * in, st->C, tile,
                            rel + ((size_t)s * passes + p) * tile);
            }
        }
    }
    if (j->occlusion && passes == 1) {
        int rc = occlude(st, stats, err);
        if (rc) {
            free(rel);
            return rc;
        }
    }
    double t1 = now();
    st->t_explain += t1 - t0;
    for (int s = 0; s < n; s++) {
        float *v = st->tile_vals;
        if (passes == 1 && j->target != TARGET_ALL) {
            const float *r = st->batch_r + (size_t)s * in;
            relevance_per_pixel(r, st->C, tile, v);
            memcpy(v + tile, r, in * sizeof *v);
        } else if (passes >= 1) {
            if (rel)
                memcpy(v, rel + (size_t)s * passes * tile, (size_t)passes * tile * sizeof *v);
            else /* target all with one class: its total */
                relevance_per_pixel(st->batch_r + (size_t)s * in, st->C, tile, v);
        }
        if (st->n_acc > st->n_rel) { /* class probabilities accumulated */
            class_probs(st, st->batch_s + (size_t)s * st->K, probs);
            for (int k = 0; k < st->n_classes; k++)
                for (size_t e = 0; e < tile; e++)
                    v[(size_t)(st->n_rel + k) * tile + e] = probs[k];
        }
        int x0 = st->batch_x0[s];
        int w = st->sc.width - x0 < st->tw ? st->sc.width - x0 : st->tw;
        int h = st->sc.height - y0 < st->th ? st->sc.height - y0 : st->th;
        /* A part's tile over rows that earlier parts cover too goes to the part file as
         * it is: merge adds it after theirs, as a single run would. */
        if (st->pw && y0 < st->part_a) {
            int rc = part_run_seam_tile(st, v, x0, y0, w, h, err);
            if (rc) {
                free(rel);
                return rc;
            }
        }
        accum_add(&st->acc, v, st->weights, st->th, st->tw, x0, y0, w, h);
    }
    free(rel);
    st->tiles_explained += n;
    st->n_batch = 0;
    st->t_mosaic += now() - t1;
    return 0;
}

/* Finished rows go to the outputs: relevance bands as they are, class probabilities as
 * the argmax class and its probability. Runs on the writer thread, which alone touches
 * the outputs, the class counts and the band statistics until run_flush_wait. */
static int write_rows(void *arg)
{
    write_job *job = arg;
    run_state *st = job->st;
    glrp_error *err = &job->err;
    const float *rows = job->rows;
    const int n = job->n;
    double t0 = now();
    const size_t W = (size_t)st->grid.width, plane = (size_t)n * W;
    int rc = 0;
    if (st->rel_open)
        rc = out_write_rows(&st->rel_out, rows, n, err);
    if (!rc && st->want_classes) {
        for (size_t e = 0; e < plane; e++) {
            int best = -1;
            float bp = -1;
            for (int k = 0; k < st->n_classes; k++) {
                float p = rows[(size_t)(st->n_rel + k) * plane + e];
                if (!isnan(p) && p > bp)
                    bp = p, best = k;
            }
            st->cls_rows[e] = best < 0 ? 255.0f : (float)best;
            st->score_rows[e] = best < 0 ? NAN : bp;
            if (best >= 0)
                st->class_pixels[best]++;
            if (st->want_bands && best >= 0 && !isnan(rows[e]))
                band_stats_add_pixel(&st->bs, best, rows + plane + e, plane);
        }
        if (st->cls_open)
            rc = out_write_rows(&st->cls_out, st->cls_rows, n, err);
        if (!rc && st->sc_open)
            rc = out_write_rows(&st->sc_out, st->score_rows, n, err);
    }
    st->t_write += now() - t0;
    return rc;
}

/* A part run hands the raw sums to its part file instead. */
int run_flush_rows(run_state *st, int until, glrp_error *err)
{
    if (st->pw)
        return part_run_flush(st, until, err);
    double t0 = now();
    float *rows = st->rows[st->rows_next];
    int n = accum_take(&st->acc, until, rows);
    st->t_mosaic += now() - t0;
    if (n <= 0)
        return 0;
    /* The writer has had the previous rows since the last flush, a row of tiles ago. */
    int rc = run_flush_wait(st, err);
    if (rc)
        return rc;
    st->wjob = (write_job){.st = st, .rows = rows, .n = n};
    bg_submit(&st->writer, write_rows, &st->wjob);
    st->rows_next ^= 1;
    return 0;
}

/* Waits for the job handed to b, counting the wait; its error (job_err) into err. */
static int collect(run_state *st, background *b, const glrp_error *job_err, glrp_error *err)
{
    double t0 = now();
    int rc = bg_wait(b);
    st->t_wait += now() - t0;
    if (rc)
        *err = *job_err;
    return rc;
}

int run_flush_wait(run_state *st, glrp_error *err)
{
    return collect(st, &st->writer, &st->wjob.err, err);
}

int run_flush_end(run_state *st, int rc, glrp_error *err)
{
    /* On an error too: the writer may not go on using a buffer or an output. */
    glrp_error ignored; /* the first error is the one reported */
    int wrc = run_flush_wait(st, rc ? &ignored : err);
    bg_stop(&st->writer);
    return rc ? rc : wrc;
}

/* Reads the stripe of rows [y0, y0 + h), counts its broken values (rows that overlapping
 * stripes share, once) and normalises it. Runs on the reader thread, which alone touches
 * the scene until process waits for it. */
static int read_stripe(void *arg)
{
    read_job *job = arg;
    run_state *st = job->st;
    double t0 = now();
    const size_t W = (size_t)st->sc.width, plane = (size_t)job->h * W;
    int rc = scene_read(&st->sc, 0, job->y0, (int)W, job->h, job->values, job->valid,
                        &job->err);
    if (!rc) {
        int first = st->rows_scanned > job->y0 ? st->rows_scanned - job->y0 : 0;
        if (first < job->h) {
            st->nonfinite_pixels += scene_count_nonfinite(&st->sc, job->values, plane,
                                                          (size_t)first * W,
                                                          (size_t)(job->h - first) * W);
            st->rows_scanned = job->y0 + job->h;
        }
        normalize_apply(&st->norm, &st->sc, job->values, job->valid, plane);
    }
    st->t_read += now() - t0;
    return rc;
}

/* Hands the stripe of tile row ty to the reader, into buffer ty % 2. */
static void read_ahead(run_state *st, int ty)
{
    const int y0 = st->ys[ty], H = st->sc.height;
    st->rjob = (read_job){.st = st, .y0 = y0, .h = H - y0 < st->th ? H - y0 : st->th,
                          .values = st->stripe[ty % 2], .valid = st->stripe_valid[ty % 2]};
    bg_submit(&st->reader, read_stripe, &st->rjob);
}

int run_tile_grid(run_state *st, glrp_error *err)
{
    st->ys = glrp_alloc(MAX_TILES_PER_AXIS, sizeof *st->ys);
    st->xs = glrp_alloc(MAX_TILES_PER_AXIS, sizeof *st->xs);
    if (!st->ys || !st->xs)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    st->ny = tile_positions(st->grid.height, st->th, st->stride_y, st->ys, MAX_TILES_PER_AXIS);
    st->nx = tile_positions(st->grid.width, st->tw, st->stride_x, st->xs, MAX_TILES_PER_AXIS);
    st->tiles_total = (long)st->ny * st->nx;
    return 0;
}

/* Copies the tile at column x0 of the stripe (w x h of it inside the scene) into x
 * (C, th, tw), with the fill value outside the scene, and its validity into valid (th,
 * tw); returns the number of valid pixels. */
static size_t cut_tile(const run_state *st, const float *stripe, const uint8_t *stripe_valid,
                       size_t plane, int x0, int w, int h, float *x, uint8_t *valid)
{
    const size_t W = (size_t)st->sc.width, th = (size_t)st->th, tw = (size_t)st->tw;
    const float fill = st->norm.fill_value;
    size_t n_valid = 0;
    memset(valid, 0, th * tw);
    for (size_t y = 0; y < (size_t)h; y++) {
        const uint8_t *v = stripe_valid + y * W + (size_t)x0;
        memcpy(valid + y * tw, v, (size_t)w);
        for (int xx = 0; xx < w; xx++)
            n_valid += v[xx];
    }
    for (int c = 0; c < st->C; c++) {
        float *dst = x + (size_t)c * th * tw;
        for (size_t y = 0; y < th; y++) {
            size_t inside = y < (size_t)h ? (size_t)w : 0;
            if (inside)
                memcpy(dst + y * tw, stripe + (size_t)c * plane + y * W + (size_t)x0,
                       inside * sizeof *dst);
            for (size_t xx = inside; xx < tw; xx++)
                dst[y * tw + xx] = fill;
        }
    }
    return n_valid;
}

/* Tile rows [row_begin, row_end): all of them, or those of a part. */
static int process(run_state *st, int row_begin, int row_end, glrp_error *err)
{
    scene_job *j = st->job;
    const int W = st->sc.width, H = st->sc.height, nx = st->nx;
    const int *ys = st->ys, *xs = st->xs;
    const size_t tile = (size_t)st->th * st->tw;
    const long tiles_here = (long)(row_end - row_begin) * nx;
    int rc = 0;
    st->prog.quiet = j->quiet;
    progress_update(&st->prog, 0);
    /* The reader fetches the next stripe and the writer writes the rows finished before
     * this one while the LRP runs; both threads mostly wait on I/O and compression. */
    bg_start(&st->reader);
    bg_start(&st->writer);
    if (row_begin < row_end)
        read_ahead(st, row_begin);
    for (int ty = row_begin; ty < row_end && !rc; ty++) {
        const int y0 = ys[ty], h = H - y0 < st->th ? H - y0 : st->th;
        if ((rc = collect(st, &st->reader, &st->rjob.err, err)))
            break;
        const float *stripe = st->stripe[ty % 2];
        const uint8_t *stripe_valid = st->stripe_valid[ty % 2];
        if (ty + 1 < row_end)
            read_ahead(st, ty + 1);
        if ((rc = run_flush_rows(st, y0, err)))
            break;
        const size_t plane = (size_t)h * W;
        accum_set_valid(&st->acc, stripe_valid, 0, y0, W, h);
        for (int tx = 0; tx < nx && !rc; tx++) {
            const int x0 = xs[tx], w = W - x0 < st->tw ? W - x0 : st->tw;
            float *x = st->batch_x + (size_t)st->n_batch * st->C * tile;
            uint8_t *tv = st->batch_valid + (size_t)st->n_batch * tile;
            const size_t n_valid = cut_tile(st, stripe, stripe_valid, plane, x0, w, h, x, tv);
            st->tiles_done++;
            if (n_valid == 0) {
                st->skipped_empty++;
                continue;
            }
            if ((double)n_valid / (double)tile < j->min_valid) {
                st->skipped_min_valid++;
                continue;
            }
            st->batch_x0[st->n_batch++] = x0;
            if (st->n_batch == j->batch)
                rc = run_batch(st, y0, err);
        }
        if (!rc)
            rc = run_batch(st, y0, err);
        if (!rc) {
            run_add_row_stats(st, &st->row);
            if (st->pw)
                rc = part_run_row_stats(st, &st->row, err);
            memset(&st->row, 0, sizeof st->row);
        }
        progress_update(&st->prog, (double)st->tiles_done / (double)tiles_here);
    }
    if (!rc)
        rc = run_flush_rows(st, st->pw ? st->part_b : H, err);
    bg_stop(&st->reader);
    rc = run_flush_end(st, rc, err);
    st->valid_pixels = st->acc.valid_taken;
    st->invalid_pixels = (long long)W * H - st->valid_pixels;
    return rc;
}

static void stat_acc_add(stat_acc *into, const stat_acc *from)
{
    into->sum += from->sum;
    into->sum2 += from->sum2;
    into->n += from->n;
    into->undefined += from->undefined;
}

void run_add_row_stats(run_state *st, const row_stats *r)
{
    st->cons_sum += r->cons_sum;
    stat_acc_add(&st->art_border, &r->border);
    stat_acc_add(&st->art_zero, &r->zero);
    stat_acc_add(&st->art_filled, &r->filled);
}

/* ---------------------------------------------------------- finishing --- */

static void rules_text(const run_state *st, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int k = 0; k < glrp_model_num_linear(st->m) && n < size; k++) {
        glrp_rule r = glrp_rule_for_linear(st->m, &st->job->rules, k);
        char name[64];
        n += (size_t)snprintf(buf + n, size - n, "%s#%d=%s", k ? "," : "", k,
                              glrp_rule_name(&r, name, sizeof name));
    }
}

static void bounds_text(const float *v, int n, char *buf, size_t size)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int k = 0; k < n && at < size; k++)
        at += (size_t)snprintf(buf + at, size - at, "%s%.6g", k ? "," : "", v[k]);
}

static const char *target_text(const run_state *st, char *buf, size_t size)
{
    const scene_job *j = st->job;
    if (j->target == TARGET_ALL)
        return "all";
    if (j->target == TARGET_INDEX) {
        snprintf(buf, size, "%d (%s)", j->target_index, st->class_names[j->target_index]);
        return buf;
    }
    return "predicted";
}

static void set_run_metadata(run_state *st, out_raster *o)
{
    scene_job *j = st->job;
    static const char *blends[] = {"hann", "uniform", "center"};
    char buf[4096];
    const char *slash = strrchr(j->model, '/');
    out_set_meta(o, "GEOLRP_VERSION", GEOLRP_VERSION);
    out_set_meta(o, "GEOLRP_INPUT", j->scene);
    out_set_meta(o, "GEOLRP_MODEL", slash ? slash + 1 : j->model);
    out_set_meta(o, "GEOLRP_MODEL_SHA256", st->sha);
    snprintf(buf, sizeof buf, "%d", st->th);
    out_set_meta(o, "GEOLRP_TILE", buf);
    snprintf(buf, sizeof buf, "%d", st->stride_y);
    out_set_meta(o, "GEOLRP_STRIDE", buf);
    out_set_meta(o, "GEOLRP_BLEND", blends[j->blend]);
    out_set_meta(o, "GEOLRP_NORMALIZATION", st->norm.source);
    if (st->need_rel) {
        out_set_meta(o, "GEOLRP_COMPOSITE", j->rules.composite);
        snprintf(buf, sizeof buf, "epsilon=%g gamma=%g alpha=%g beta=%g maxpool=%s",
                 j->rules.eps, j->rules.gamma, j->rules.alpha, j->rules.beta,
                 j->rules.maxpool == GLRP_MAXPOOL_PROPORTIONAL ? "proportional" : "wta");
        out_set_meta(o, "GEOLRP_RULE_PARAMETERS", buf);
        out_set_meta(o, "GEOLRP_RULES", st->rules_str);
        out_set_meta(o, "GEOLRP_TARGET", target_text(st, buf, sizeof buf));
        out_set_meta(o, "GEOLRP_INIT", glrp_init_name(j->init));
        if (j->rules.low) {
            bounds_text(j->rules.low, j->rules.n_bounds, buf, sizeof buf);
            out_set_meta(o, "GEOLRP_ZBOX_LOW", buf);
            bounds_text(j->rules.high, j->rules.n_bounds, buf, sizeof buf);
            out_set_meta(o, "GEOLRP_ZBOX_HIGH", buf);
            out_set_meta(o, "GEOLRP_ZBOX_SOURCE", st->zbox_source[0] ? st->zbox_source
                                                                     : "command line");
        }
    }
}

static json_t *indicator_json(const stat_acc *a)
{
    double m = stat_mean(a), sd = stat_std(a);
    return json_pack("{s:o, s:o, s:I, s:I}", "mean", isfinite(m) ? json_real(m) : json_null(),
                     "std", isfinite(sd) ? json_real(sd) : json_null(), "tiles",
                     (json_int_t)a->n, "undefined", (json_int_t)a->undefined);
}

static json_t *report_json(run_state *st, double t_total)
{
    scene_job *j = st->job;
    char buf[4096];
    json_t *root = json_object();
    json_object_set_new(root, "geolrp_version", json_string(GEOLRP_VERSION));
    json_object_set_new(root, "scene", json_string(j->scene));
    json_object_set_new(root, "model", json_string(j->model));
    json_object_set_new(root, "model_sha256", json_string(st->sha));
    json_t *outs = json_object();
    if (j->output) json_object_set_new(outs, "relevance", json_string(j->output));
    if (j->class_map) json_object_set_new(outs, "class_map", json_string(j->class_map));
    if (j->scores) json_object_set_new(outs, "scores", json_string(j->scores));
    json_object_set_new(root, "outputs", outs);
    json_object_set_new(root, "size", json_pack("{s:i, s:i, s:i}", "width", st->grid.width,
                                                "height", st->grid.height, "bands", st->C));
    json_object_set_new(root, "tiling", json_pack("{s:i, s:i, s:s}", "tile", st->th, "stride",
                                                  st->stride_y, "blend",
                                                  j->blend == BLEND_HANN ? "hann"
                                                  : j->blend == BLEND_UNIFORM ? "uniform"
                                                                              : "center"));
    json_object_set_new(root, "tiles", json_pack("{s:I, s:I, s:I, s:I}", "total",
                                                 (json_int_t)st->tiles_total, "explained",
                                                 (json_int_t)st->tiles_explained,
                                                 "skipped_no_valid_pixel",
                                                 (json_int_t)st->skipped_empty,
                                                 "skipped_min_valid",
                                                 (json_int_t)st->skipped_min_valid));
    json_object_set_new(root, "pixels", json_pack("{s:I, s:I, s:I}", "valid",
                                                  (json_int_t)st->valid_pixels, "invalid",
                                                  (json_int_t)st->invalid_pixels, "nonfinite",
                                                  (json_int_t)st->nonfinite_pixels));
    json_object_set_new(root, "time_seconds",
                        json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "setup",
                                  st->t_setup, "read", st->t_read, "explain", st->t_explain,
                                  "mosaic", st->t_mosaic, "write", st->t_write, "finish",
                                  st->t_finish, "wait", st->t_wait, "total", t_total));
    json_t *classes = json_object();
    for (int k = 0; k < st->n_classes && st->want_classes; k++)
        json_object_set_new(classes, st->class_names[k], json_integer(st->class_pixels[k]));
    json_object_set_new(root, "class_pixels", classes);
    json_object_set_new(root, "normalization", json_string(st->norm.source));
    if (st->need_rel) {
        json_t *rules = json_pack("{s:s, s:f, s:f, s:f, s:f}", "composite", j->rules.composite,
                                  "epsilon", (double)j->rules.eps, "gamma",
                                  (double)j->rules.gamma, "alpha", (double)j->rules.alpha,
                                  "beta", (double)j->rules.beta);
        json_object_set_new(rules, "per_layer", json_string(st->rules_str));
        if (j->rules.low) {
            json_t *lo = json_array(), *hi = json_array();
            for (int k = 0; k < j->rules.n_bounds; k++) {
                json_array_append_new(lo, json_real(j->rules.low[k]));
                json_array_append_new(hi, json_real(j->rules.high[k]));
            }
            json_object_set_new(rules, "zbox_low", lo);
            json_object_set_new(rules, "zbox_high", hi);
            json_object_set_new(rules, "zbox_source",
                                json_string(st->zbox_source[0] ? st->zbox_source
                                                               : "command line"));
        }
        json_object_set_new(root, "rules", rules);
        json_object_set_new(root, "target", json_string(target_text(st, buf, sizeof buf)));
            json_object_set_new(root, "init", json_string(glrp_init_name(j->init)));
        json_object_set_new(root, "conservation",
                            st->cons_n ? json_pack("{s:f, s:f, s:f, s:I}", "mean",
                                                   st->cons_sum / (double)st->cons_n, "min",
                                                   st->cons_min, "max", st->cons_max, "tiles",
                                                   (json_int_t)st->cons_n)
                                       : json_null());
    }
    if (st->need_rel) {
        json_t *a = json_object();
        json_object_set_new(a, "border_ratio", indicator_json(&st->art_border));
        json_object_set_new(a, "zero_input_share", indicator_json(&st->art_zero));
        json_object_set_new(a, "nodata_fill_share", indicator_json(&st->art_filled));
        json_object_set_new(a, "conservation", st->cons_n ? json_real(st->cons_sum /
                                                                       (double)st->cons_n)
                                                          : json_null());
        json_object_set_new(root, "artifacts", a);
    }
    json_t *w = json_array();
    for (int k = 0; k < st->n_warnings; k++)
        json_array_append_new(w, json_string(st->warnings[k]));
    json_object_set_new(root, "warnings", w);
    return root;
}


static int write_band_outputs(run_state *st, glrp_error *err)
{
    scene_job *j = st->job;
    int rc = 0;
    double rho;
    json_t *doc = band_stats_json(&st->bs, &rho);
    if (!doc)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    if (j->occlusion && isfinite(rho) && rho < 0.5)
        warn(st, "LRP and occlusion rank the bands differently (Spearman %.2f): the band "
             "ranking may be an artifact of the model or the rule", rho);
    char buf[4096];
    json_object_set_new(doc, "scene", json_string(j->scene));
    json_object_set_new(doc, "model", json_string(j->model));
    json_object_set_new(doc, "model_sha256", json_string(st->sha));
    json_object_set_new(doc, "composite", json_string(j->rules.composite));
    json_object_set_new(doc, "rules", json_string(st->rules_str));
    json_object_set_new(doc, "target", json_string(target_text(st, buf, sizeof buf)));
    if (j->occlusion) {
        json_t *b = json_array();
        for (int k = 0; k < st->C; k++)
            json_array_append_new(b, json_real(st->baseline[k]));
        json_object_set_new(doc, "occlusion_baseline", b);
        json_object_set_new(doc, "occlusion_baseline_source",
                            json_string(j->baseline_set ? "given value" : "scene mean"));
    }
    json_t *w = json_array();
    for (int k = 0; k < st->n_warnings; k++)
        json_array_append_new(w, json_string(st->warnings[k]));
    json_object_set_new(doc, "warnings", w);
    if (j->bands_json)
        rc = json_write_atomic(j->bands_json, doc, &st->staged, err);
    json_decref(doc);
    if (!rc && j->bands_csv)
        rc = band_stats_write_csv(&st->bs, j->bands_csv, &st->staged, err);
    if (!rc && j->bands_svg) {
        const char *slash = strrchr(j->scene, '/');
        snprintf(buf, sizeof buf, "Band importance: %s (%s)", slash ? slash + 1 : j->scene,
                 j->rules.composite);
        rc = band_stats_write_svg(&st->bs, j->bands_svg, buf, &st->staged, err);
    }
    return rc;
}

/* Thresholds of docs/artifacts.md ("Diagnostics in real runs"). */
#define ART_BORDER_HIGH 1.5
#define ART_ZERO_LOW 0.2
#define ART_FILLED_HIGH 0.5
#define ART_CONSERVATION_LOW 0.5
#define ART_CONSERVATION_HIGH 2.0

static void artifact_warnings(run_state *st)
{
    double b = stat_mean(&st->art_border), z = stat_mean(&st->art_zero);
    double f = stat_mean(&st->art_filled);
    double c = st->cons_n ? st->cons_sum / (double)st->cons_n : NAN;
    if (b > ART_BORDER_HIGH)
        warn(st, "relevance piles up at tile borders (border ratio %.2f > %.1f): likely a "
             "padding artifact; overlapping tiles with the hann blend hide it in the mosaic, "
             "a model with valid padding avoids it", b, ART_BORDER_HIGH);
    if (z < ART_ZERO_LOW)
        warn(st, "inputs equal to 0 get almost no relevance (zero-input share %.2f < %.1f): "
             "the rules multiply by the input, so 0 can never be relevant; shift the input "
             "range or use a flat/wsquare first layer to see such pixels", z, ART_ZERO_LOW);
    if (f > ART_FILLED_HIGH)
        warn(st, "nodata-filled pixels receive relevance (share ratio %.2f > %.1f): the fill "
             "value is read as data by the model; use --min-valid or a fill value the model "
             "treats as neutral", f, ART_FILLED_HIGH);
    if (isfinite(c) && (c < ART_CONSERVATION_LOW || c > ART_CONSERVATION_HIGH))
        warn(st, "relevance reaching the input / put in is %.2f on average: biases (or the "
             "rule) absorb or inject relevance, so totals are not comparable across tiles", c);
}

int run_finish(run_state *st, double t_start, glrp_error *err)
{
    scene_job *j = st->job;
    int rc = 0;
    if (st->need_rel)
        artifact_warnings(st);
    if (st->valid_pixels == 0)
        warn(st, "%s has no valid pixel: every output is nodata", j->scene);
    if (st->nonfinite_pixels > 0)
        warn(st, "%s: %lld pixels hold NaN or Inf in a selected band (not declared as nodata); "
             "they are treated as nodata", j->scene, st->nonfinite_pixels);
    double t0 = now();
    double limit = st->rel_open ? out_abs_quantile(&st->rel_out, 0.99) : 0;
    struct {
        int open;
        out_raster *o;
    } outs[3] = {{st->rel_open, &st->rel_out}, {st->cls_open, &st->cls_out},
                 {st->sc_open, &st->sc_out}};
    /* Every output is finished under a temporary name first and all are renamed together
     * at the end: a failure on any of them (a full disk) leaves none behind. */
    for (int k = 0; k < 3; k++) {
        if (!outs[k].open)
            continue;
        set_run_metadata(st, outs[k].o);
        if ((rc = out_finish(outs[k].o, j->quiet, err)))
            return rc;
    }
    for (int k = 0; k < 3; k++) {
        if (!outs[k].open)
            continue;
        rc = out_stage(outs[k].o, &st->staged, err);
        *(k == 0 ? &st->rel_open : k == 1 ? &st->cls_open : &st->sc_open) = 0;
        if (rc)
            return rc;
    }
    if ((j->output && (rc = qml_write_relevance(j->output, limit, &st->staged, err))) ||
        (j->class_map && (rc = qml_write_classes(j->class_map, st->n_classes,
                                                 st->class_names, &st->staged, err))))
        return rc;
    if (st->want_bands && (rc = write_band_outputs(st, err)))
        return rc;
    st->t_finish += now() - t0;
    if (j->report) {
        json_t *root = report_json(st, now() - t_start);
        rc = root ? json_write_atomic(j->report, root, &st->staged, err)
                  : glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
        json_decref(root);
        if (rc)
            return rc;
    }
    return outset_commit(&st->staged, err);
}

void run_cleanup(run_state *st)
{
    bg_stop(&st->reader);
    bg_stop(&st->writer);
    part_run_abort(st);
    if (st->rel_open) out_abort(&st->rel_out);
    if (st->cls_open) out_abort(&st->cls_out);
    if (st->sc_open) out_abort(&st->sc_out);
    outset_discard(&st->staged);
    accum_free(&st->acc);
    for (int k = 0; st->class_names && k < st->n_classes; k++)
        free(st->class_names[k]);
    for (int k = 0; st->rel_names && k < st->n_rel; k++)
        free(st->rel_names[k]);
    for (int k = 0; k < st->n_warnings; k++)
        free(st->warnings[k]);
    free(st->class_names), free(st->rel_names), free(st->weights), free(st->stripe[0]),
        free(st->stripe[1]), free(st->stripe_valid[0]), free(st->stripe_valid[1]),
        free(st->rows[0]), free(st->rows[1]), free(st->batch_x), free(st->batch_r), free(st->batch_s),
        free(st->batch_x0), free(st->batch_valid), free(st->tile_rp), free(st->tile_vals), free(st->cls_rows),
        free(st->score_rows), free(st->class_pixels), free(st->occl_x), free(st->occl_s);
    band_stats_free(&st->bs);
    if (st->m != st->job->loaded_model)
        glrp_model_free(st->m);
    scene_close(&st->sc);
    config_free(&st->cfg);
    free(st->rules_str), free(st->ys), free(st->xs);
    if (st->own_band_names)
        for (int k = 0; k < st->C; k++)
            free(st->band_names[k]);
    if (st->own_band_names)
        free(st->band_names);
    if (st->own_srs)
        OSRDestroySpatialReference(st->own_srs);
}

int scene_job_run(scene_job *j, glrp_error *err)
{
    run_state st;
    memset(&st, 0, sizeof st);
    st.job = j;
    double t_start = now();
    /* Bound GDAL's block cache: memory must not grow with the scene. GDAL's default (5% of
     * RAM) let the COG copy alone reach 1.1 GiB on a 4096 x 4096 x 14 output; 64 MiB keeps
     * it near 0.4 GiB at no measured cost (bench/scene_bench.sh, docs/benchmarks.md). */
    GDALAllRegister();
    GDALSetCacheMax64((GIntBig)64 << 20);
    int rc = refuse_existing(j, err);
    if (!rc && j->batch < 1)
        rc = glrp_fail(err, GLRP_ERR_INPUT, "--batch must be at least 1");
    if (!rc && (j->min_valid < 0 || j->min_valid > 1))
        rc = glrp_fail(err, GLRP_ERR_INPUT, "--min-valid must be a fraction from 0 to 1");
    if (!rc && j->part_count &&
        (j->part_index < 0 || j->part_index >= j->part_count || !j->part || j->output ||
         j->class_map || j->scores || j->report || j->bands_json || j->bands_csv ||
         j->bands_svg || j->occlusion))
        rc = glrp_fail(err, GLRP_ERR_INPUT, "--part: a part run writes one part file only "
                       "(geolrp merge writes the outputs)");
    if (!rc)
        rc = setup(&st, err);
    if (!rc)
        rc = run_layout(&st, err);
    if (!rc)
        rc = run_tile_grid(&st, err);
    if (!rc)
        rc = check_output_folders(j, err);
    if (!rc && !j->part_count)
        rc = run_open_outputs(&st, err);
    if (!rc)
        rc = alloc_buffers(&st, err);
    st.t_setup = now() - t_start;
    if (!rc && j->part_count) {
        rc = part_run_open(&st, err);
        if (!rc)
            rc = process(&st, st.part_t0, st.part_t1, err);
        if (!rc)
            rc = part_run_commit(&st, t_start, err);
    } else if (!rc) {
        rc = process(&st, 0, st.ny, err);
        if (!rc)
            rc = run_finish(&st, t_start, err);
    }
    if (!rc && !j->quiet)
        fprintf(stderr, "%ld tiles explained, %ld skipped (no valid pixel), %ld skipped "
                "(--min-valid); %.1f s\n", st.tiles_explained, st.skipped_empty,
                st.skipped_min_valid, now() - t_start);
    run_cleanup(&st);
    return rc;
}
