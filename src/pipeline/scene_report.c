/*
 * Finishing a scene run: artifact warnings from the statistics, run metadata on the COGs,
 * the COGs and QGIS styles staged, band importance outputs, the JSON report, and all of
 * them renamed into place together.
 */
#include "pipeline/run_state.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "analysis/band_stats.h"
#include "analysis/metrics.h"
#include "io/json_file.h"
#include "io/tmpfile.h"
#include "mosaic/output.h"
#include "mosaic/qml.h"
#include "util/error.h"

void run_rules_text(const run_state *st, char *buf, size_t size)
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
        run_warn(st, "LRP and occlusion rank the bands differently (Spearman %.2f): the band "
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
        run_warn(st, "relevance piles up at tile borders (border ratio %.2f > %.1f): likely a "
             "padding artifact; overlapping tiles with the hann blend hide it in the mosaic, "
             "a model with valid padding avoids it", b, ART_BORDER_HIGH);
    if (z < ART_ZERO_LOW)
        run_warn(st, "inputs equal to 0 get almost no relevance (zero-input share %.2f < %.1f): "
             "the rules multiply by the input, so 0 can never be relevant; shift the input "
             "range or use a flat/wsquare first layer to see such pixels", z, ART_ZERO_LOW);
    if (f > ART_FILLED_HIGH)
        run_warn(st, "nodata-filled pixels receive relevance (share ratio %.2f > %.1f): the fill "
             "value is read as data by the model; use --min-valid or a fill value the model "
             "treats as neutral", f, ART_FILLED_HIGH);
    if (isfinite(c) && (c < ART_CONSERVATION_LOW || c > ART_CONSERVATION_HIGH))
        run_warn(st, "relevance reaching the input / put in is %.2f on average: biases (or the "
             "rule) absorb or inject relevance, so totals are not comparable across tiles", c);
}

int run_finish(run_state *st, double t_start, glrp_error *err)
{
    scene_job *j = st->job;
    int rc = 0;
    if (st->need_rel)
        artifact_warnings(st);
    if (st->valid_pixels == 0)
        run_warn(st, "%s has no valid pixel: every output is nodata", j->scene);
    if (st->nonfinite_pixels > 0)
        run_warn(st, "%s: %lld pixels hold NaN or Inf in a selected band (not declared as nodata); "
             "they are treated as nodata", j->scene, st->nonfinite_pixels);
    double t0 = run_now();
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
    st->t_finish += run_now() - t0;
    if (j->report) {
        json_t *root = report_json(st, run_now() - t_start);
        rc = root ? json_write_atomic(j->report, root, &st->staged, err)
                  : glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
        json_decref(root);
        if (rc)
            return rc;
    }
    return outset_commit(&st->staged, err);
}
