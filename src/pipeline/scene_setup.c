/*
 * Setting a scene run up: config over defaults, the scene and the model, bands, classes,
 * target, zbox bounds, the outputs under temporary names and the buffers. All of it
 * happens before the first tile is read, so bad input fails before any work.
 */
#include "pipeline/run_state.h"

#include <cpl_conv.h>
#include <cpl_error.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/tmpfile.h"
#include "mosaic/output.h"
#include "raster/config.h"
#include "raster/scene.h"
#include "util/error.h"
#include "util/sha256.h"

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

int run_setup(run_state *st, glrp_error *err)
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
                run_warn(st, "the first layer uses the %s rule, which gives every band of a pixel "
                     "the same share: the per-band relevance layers say nothing about bands "
                     "(use epsilon-gamma-box for band importance)",
                     r.kind == GLRP_RULE_FLAT ? "flat" : "wsquare");
        }
    }
    if (!st->sc.has_geotransform)
        run_warn(st, "%s has no georeferencing; the outputs keep its pixel grid without a CRS",
             j->scene);
    if (st->sc.striped && st->sc.height > st->th) /* else one read takes it all */
        run_warn(st, "%s is striped, not tiled: windowed reads are slow (gdal_translate -co "
             "TILED=YES makes a tiled copy)", j->scene);
    if (st->sc.width < st->tw || st->sc.height < st->th)
        run_warn(st, "%s (%d x %d) is smaller than a tile (%d x %d): padded with the fill value",
             j->scene, st->sc.width, st->sc.height, st->tw, st->th);
    glrp_set_threads(j->threads);
    /* What the finishing stage needs, so that merge can give it without scene or model. */
    out_grid_of_scene(&st->sc, &st->grid);
    st->band_names = st->sc.band_name;
    char buf[4096] = "";
    if (st->need_rel)
        run_rules_text(st, buf, sizeof buf);
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
     * a buffer of RUN_MAX_CLASSES. */
    if (st->want_classes && st->n_classes > RUN_MAX_CLASSES)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: %d classes; class maps, scores and band "
                         "importance take at most %d (explain without --class-map and "
                         "--scores has no limit)", j->model, st->n_classes, RUN_MAX_CLASSES);
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

int run_alloc_buffers(run_state *st, glrp_error *err)
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
