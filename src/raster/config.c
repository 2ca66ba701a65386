#include "raster/config.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/error.h"

void config_init(scene_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->norm.source, sizeof c->norm.source, "none");
}

void config_free(scene_config *c)
{
    free(c->bands), free(c->blend), free(c->composite), free(c->target), free(c->init);
    memset(c, 0, sizeof *c);
}

/* jansson does not keep positions of keys; find the line where "key" first appears. */
static int line_of_key(const char *path, const char *key)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[4096], quoted[256];
    snprintf(quoted, sizeof quoted, "\"%s\"", key);
    int n = 0, found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        n++;
        found = strstr(line, quoted) != NULL;
    }
    fclose(f);
    return found ? n : 0;
}

static int bad_key(const char *path, const char *key, const char *why, glrp_error *err)
{
    return glrp_fail(err, GLRP_ERR_INPUT, "%s:%d: \"%s\": %s", path, line_of_key(path, key),
                     key, why);
}

static int read_numbers(const char *path, const char *key, json_t *v, double *out, int max,
                        int *n, glrp_error *err)
{
    if (json_is_number(v)) {
        out[0] = json_number_value(v);
        *n = 1;
        return 0;
    }
    const size_t len = json_is_array(v) ? json_array_size(v) : 0;
    if (len == 0 || len > (size_t)max)
        return bad_key(path, key, "expected a number or a list of numbers", err);
    *n = (int)len;
    for (int k = 0; k < *n; k++) {
        json_t *e = json_array_get(v, (size_t)k);
        if (!json_is_number(e))
            return bad_key(path, key, "expected a list of numbers", err);
        out[k] = json_number_value(e);
    }
    return 0;
}

static int read_string(const char *path, const char *key, json_t *v, char **out,
                       glrp_error *err)
{
    if (json_is_integer(v)) {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        *out = glrp_strdup(buf);
    } else if (json_is_string(v)) {
        *out = glrp_strdup(json_string_value(v));
    } else {
        return bad_key(path, key, "expected a string", err);
    }
    return *out ? 0 : glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
}

/* Keeps per-band arrays consistent: a single value applies to every band. */
static int set_band_count(normalization *n, int count, const char *path, const char *key,
                          glrp_error *err)
{
    if (count == 1)
        return 0;
    if (n->n && n->n != count)
        return bad_key(path, key, "list length differs from other per-band lists", err);
    n->n = count;
    return 0;
}

static void broadcast(double *v, int count)
{
    for (int k = count; k < SCENE_MAX_BANDS; k++)
        v[k] = v[0];
}

static int read_pair_lists(const char *path, json_t *obj, const char *k1, const char *k2,
                           double *a, double *b, normalization *n, glrp_error *err)
{
    json_t *va = json_object_get(obj, k1), *vb = json_object_get(obj, k2);
    int na = 0, nb = 0;
    if (!va || !vb)
        return bad_key(path, va ? k2 : k1, "missing (it goes with its pair)", err);
    int rc;
    if ((rc = read_numbers(path, k1, va, a, SCENE_MAX_BANDS, &na, err)) ||
        (rc = read_numbers(path, k2, vb, b, SCENE_MAX_BANDS, &nb, err)) ||
        (rc = set_band_count(n, na, path, k1, err)) ||
        (rc = set_band_count(n, nb, path, k2, err)))
        return rc;
    if (na == 1)
        broadcast(a, 1);
    if (nb == 1)
        broadcast(b, 1);
    return 0;
}

static int read_normalization(const char *path, json_t *obj, normalization *n, glrp_error *err)
{
    if (!json_is_object(obj))
        return bad_key(path, "normalization", "expected an object", err);
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        if (strcmp(key, "mode") && strcmp(key, "mean") && strcmp(key, "std") &&
            strcmp(key, "min") && strcmp(key, "max") && strcmp(key, "range"))
            return bad_key(path, key, "unknown key in \"normalization\" (known: mode, mean, "
                           "std, min, max, range)", err);
    }
    json_t *mode = json_object_get(obj, "mode");
    const char *m = json_is_string(mode) ? json_string_value(mode) : NULL;
    if (!m)
        return bad_key(path, "mode", "expected \"standardize\", \"minmax\" or \"none\"", err);
    if (!strcmp(m, "standardize")) {
        n->mode = NORM_STANDARDIZE;
        if (read_pair_lists(path, obj, "mean", "std", n->a, n->b, n, err))
            return err->code;
        for (int k = 0; k < (n->n ? n->n : 1); k++)
            if (n->b[k] == 0)
                return bad_key(path, "std", "a standard deviation is 0", err);
    } else if (!strcmp(m, "minmax")) {
        n->mode = NORM_MINMAX;
        if (read_pair_lists(path, obj, "min", "max", n->a, n->b, n, err))
            return err->code;
        double r[2] = {0, 1};
        int nr = 2;
        json_t *range = json_object_get(obj, "range");
        if (range && (read_numbers(path, "range", range, r, 2, &nr, err) || nr != 2))
            return err->code ? err->code : bad_key(path, "range", "expected [low, high]", err);
        n->range_lo = r[0], n->range_hi = r[1];
    } else if (!strcmp(m, "none")) {
        n->mode = NORM_NONE;
    } else {
        return bad_key(path, "mode", "expected \"standardize\", \"minmax\" or \"none\"", err);
    }
    return 0;
}

int config_load(const char *path, scene_config *c, glrp_error *err)
{
    json_error_t je;
    struct stat sb;
    /* A folder opens and reads as an empty file: say what it is. */
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: is a folder, not a config file", path);
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root && je.line < 1) /* not a syntax error: the file could not be read */
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: %s", path, je.text);
    if (!root)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s:%d:%d: %s", path, je.line, je.column,
                         je.text);
    int rc = 0;
    normalization *n = &c->norm;
    if (!json_is_object(root)) {
        rc = glrp_fail(err, GLRP_ERR_INPUT, "%s:1: expected a JSON object", path);
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        int nn = 0;
        if (!strcmp(key, "description") || !strcmp(key, "comment")) {
            continue;
        } else if (!strcmp(key, "bands")) {
            if (json_is_array(v)) {
                char buf[4096] = "";
                for (size_t k = 0; k < json_array_size(v); k++) {
                    json_t *e = json_array_get(v, k);
                    char item[256];
                    if (json_is_integer(e))
                        snprintf(item, sizeof item, "%lld", (long long)json_integer_value(e));
                    else if (json_is_string(e))
                        snprintf(item, sizeof item, "%s", json_string_value(e));
                    else {
                        rc = bad_key(path, key, "expected band names or indices", err);
                        goto done;
                    }
                    size_t len = strlen(buf);
                    snprintf(buf + len, sizeof buf - len, "%s%s", k ? "," : "", item);
                }
                c->bands = glrp_strdup(buf);
            } else if ((rc = read_string(path, key, v, &c->bands, err))) {
                goto done;
            }
        } else if (!strcmp(key, "scale") || !strcmp(key, "offset")) {
            json_t *other = json_object_get(root, !strcmp(key, "scale") ? "offset" : "scale");
            double *dst = !strcmp(key, "scale") ? n->scale : n->offset;
            if ((rc = read_numbers(path, key, v, dst, SCENE_MAX_BANDS, &nn, err)) ||
                (rc = set_band_count(n, nn, path, key, err)))
                goto done;
            if (nn == 1)
                broadcast(dst, 1);
            if (!other) { /* the missing partner defaults to identity */
                double *o = dst == n->scale ? n->offset : n->scale;
                o[0] = dst == n->scale ? 0.0 : 1.0;
                broadcast(o, 1);
            }
            n->has_scale = 1;
        } else if (!strcmp(key, "clip")) {
            if (!json_is_object(v)) {
                rc = bad_key(path, key, "expected {\"min\": ..., \"max\": ...}", err);
                goto done;
            }
            const char *k2;
            json_t *v2;
            json_object_foreach(v, k2, v2) {
                if (strcmp(k2, "min") && strcmp(k2, "max")) {
                    rc = bad_key(path, k2, "unknown key in \"clip\" (known: min, max)", err);
                    goto done;
                }
            }
            if ((rc = read_pair_lists(path, v, "min", "max", n->clip_min, n->clip_max, n, err)))
                goto done;
            n->has_clip = 1;
        } else if (!strcmp(key, "normalization")) {
            if ((rc = read_normalization(path, v, n, err)))
                goto done;
        } else if (!strcmp(key, "fill_value")) {
            if (!json_is_number(v)) {
                rc = bad_key(path, key, "expected a number", err);
                goto done;
            }
            n->fill_value = (float)json_number_value(v);
        } else if (!strcmp(key, "zbox")) {
            double lo[SCENE_MAX_BANDS], hi[SCENE_MAX_BANDS];
            normalization tmp = {0};
            if (!json_is_object(v) ||
                (rc = read_pair_lists(path, v, "low", "high", lo, hi, &tmp, err))) {
                rc = rc ? rc : bad_key(path, key, "expected {\"low\": ..., \"high\": ...}", err);
                goto done;
            }
            c->n_zbox = tmp.n ? tmp.n : 1;
            for (int k = 0; k < c->n_zbox; k++)
                c->zbox_low[k] = (float)lo[k], c->zbox_high[k] = (float)hi[k];
            c->has_zbox = 1;
        } else if (!strcmp(key, "tile") || !strcmp(key, "stride")) {
            if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                json_integer_value(v) > 1 << 16) {
                rc = bad_key(path, key, "expected a positive integer", err);
                goto done;
            }
            *(!strcmp(key, "tile") ? &c->tile : &c->stride) = (int)json_integer_value(v);
        } else if (!strcmp(key, "min_valid")) {
            if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1) {
                rc = bad_key(path, key, "expected a fraction from 0 to 1", err);
                goto done;
            }
            c->min_valid = json_number_value(v);
            c->has_min_valid = 1;
        } else if (!strcmp(key, "blend") || !strcmp(key, "composite") ||
                   !strcmp(key, "target") || !strcmp(key, "init")) {
            char **dst = !strcmp(key, "blend") ? &c->blend
                         : !strcmp(key, "composite") ? &c->composite
                         : !strcmp(key, "target") ? &c->target : &c->init;
            if ((rc = read_string(path, key, v, dst, err)))
                goto done;
        } else {
            rc = bad_key(path, key, "unknown key (known: description, bands, scale, offset, "
                         "clip, normalization, fill_value, zbox, tile, stride, blend, "
                         "composite, target, init, min_valid)", err);
            goto done;
        }
    }
    snprintf(n->source, sizeof n->source, "config");
done:
    json_decref(root);
    return rc;
}

/* The QGIS ONNX plugin's keys: standardization_mean and standardization_std as JSON lists
 * (or a single number). */
int config_norm_from_model(const glrp_model *m, int n_bands, normalization *norm,
                           glrp_error *err)
{
    const char *mean = glrp_model_metadata(m, "standardization_mean");
    const char *std = glrp_model_metadata(m, "standardization_std");
    if (!mean || !std)
        return 0;
    const char *keys[2] = {"standardization_mean", "standardization_std"};
    const char *texts[2] = {mean, std};
    double *dst[2] = {norm->a, norm->b};
    for (int k = 0; k < 2; k++) {
        json_error_t je;
        json_t *v = json_loads(texts[k], JSON_DECODE_ANY, &je);
        int count = json_is_array(v) ? (int)json_array_size(v) : json_is_number(v) ? 1 : 0;
        if (count != 1 && count != n_bands) {
            json_decref(v);
            return glrp_fail(err, GLRP_ERR_INPUT, "ONNX metadata %s: expected a number or a "
                             "list of %d numbers", keys[k], n_bands);
        }
        for (int j = 0; j < count; j++) {
            json_t *e = json_is_array(v) ? json_array_get(v, (size_t)j) : v;
            if (!json_is_number(e)) {
                json_decref(v);
                return glrp_fail(err, GLRP_ERR_INPUT, "ONNX metadata %s: not a number", keys[k]);
            }
            dst[k][j] = json_number_value(e);
        }
        if (count == 1)
            broadcast(dst[k], 1);
        json_decref(v);
    }
    for (int j = 0; j < n_bands; j++)
        if (norm->b[j] == 0)
            return glrp_fail(err, GLRP_ERR_INPUT, "ONNX metadata standardization_std: band %d "
                             "has std 0", j + 1);
    norm->mode = NORM_STANDARDIZE;
    norm->n = n_bands;
    snprintf(norm->source, sizeof norm->source, "ONNX metadata");
    return 0;
}

double normalize_value(const normalization *n, const scene *s, int k, double raw)
{
    double v = raw;
    if (n->has_scale) /* undo GDAL's scale/offset, apply the config's */
        v = (raw - s->offset[k]) / s->scale[k] * n->scale[k] + n->offset[k];
    if (n->has_clip)
        v = v < n->clip_min[k] ? n->clip_min[k] : v > n->clip_max[k] ? n->clip_max[k] : v;
    switch (n->mode) {
    case NORM_STANDARDIZE:
        return (v - n->a[k]) / n->b[k];
    case NORM_MINMAX:
        return n->range_lo + (v - n->a[k]) / (n->b[k] - n->a[k]) * (n->range_hi - n->range_lo);
    default:
        return v;
    }
}

void normalize_apply(const normalization *n, const scene *s, float *v, const uint8_t *valid,
                     size_t plane)
{
    for (int k = 0; k < s->n_bands; k++) {
        float *p = v + (size_t)k * plane;
        for (size_t e = 0; e < plane; e++)
            p[e] = valid[e] ? (float)normalize_value(n, s, k, p[e]) : n->fill_value;
    }
}
