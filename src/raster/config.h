/*
 * How scene values become model input, and run defaults, from a JSON config file
 * (documented examples in config/). Every key is optional; unknown keys are errors that
 * name the file and line, so a typo never silently changes a result.
 */
#ifndef GLRP_RASTER_CONFIG_H
#define GLRP_RASTER_CONFIG_H

#include "geolrp/geolrp.h"
#include "raster/scene.h"

typedef enum { NORM_NONE = 0, NORM_STANDARDIZE, NORM_MINMAX } norm_mode;

/* Per band: v = raw * scale + offset (GDAL's, or the config's); then capped to
 * [clip_min, clip_max]; then standardised ((v - mean) / std) or stretched from
 * [min, max] to [range_lo, range_hi]. Masked pixels get fill_value after all that. */
typedef struct {
    int n;                     /* bands described, 0 when nothing is set */
    int has_scale, has_clip;
    double scale[SCENE_MAX_BANDS], offset[SCENE_MAX_BANDS];
    double clip_min[SCENE_MAX_BANDS], clip_max[SCENE_MAX_BANDS];
    norm_mode mode;
    double a[SCENE_MAX_BANDS], b[SCENE_MAX_BANDS]; /* mean/std or min/max */
    double range_lo, range_hi;
    float fill_value;
    char source[64];           /* "config FILE", "ONNX metadata" or "none" */
} normalization;

typedef struct {
    char *bands;               /* same syntax as --bands, or NULL */
    normalization norm;
    int has_zbox;
    float zbox_low[SCENE_MAX_BANDS], zbox_high[SCENE_MAX_BANDS];
    int n_zbox;
    /* Run defaults that command-line options override (0 / NULL when unset). */
    int tile, stride;
    char *blend, *composite, *target, *init;
    double min_valid;
    int has_min_valid;
} scene_config;

void config_init(scene_config *c);
void config_free(scene_config *c);
int config_load(const char *path, scene_config *c, glrp_error *err);

/* Normalisation from the QGIS-plugin keys in the ONNX metadata, when present. */
int config_norm_from_model(const glrp_model *m, int n_bands, normalization *norm,
                           glrp_error *err);

/* Applies scale/offset override, clipping and normalisation to (n_bands, plane) values;
 * sets masked pixels to the fill value. */
void normalize_apply(const normalization *norm, const scene *s, float *v, const uint8_t *valid,
                     size_t plane);
/* Maps one raw (after GDAL scale/offset) value of band k to model units. */
double normalize_value(const normalization *norm, const scene *s, int k, double raw);

#endif
