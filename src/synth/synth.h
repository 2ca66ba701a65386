/*
 * Synthetic samples with known ground truth, for measuring whether relevance maps are
 * facts about the data or artifacts of the model or the rule.
 *
 * Base task (binary): a noisy background, two distractor squares identical in both
 * classes, and one class square whose sign (+0.5 / -0.5) decides the class; the ground
 * truth mask is that square. Variants expose known artifacts (see synth_variants).
 */
#ifndef GLRP_SYNTH_SYNTH_H
#define GLRP_SYNTH_SYNTH_H

#include <stdint.h>

#include "geolrp/geolrp.h"

typedef struct {
    const char *name;
    const char *what;
    int bands;          /* channels */
    float bg_level;     /* background mean */
    float bg_noise;     /* background uniform noise half-width */
    int absence;        /* class 1: square present; class 0: absent (fixed location) */
    int at_border;      /* the class square touches the image border */
    int signal_bands;   /* bit mask of bands carrying the class square */
} synth_variant;

extern const synth_variant synth_variants[];
const synth_variant *synth_find(const char *name);

typedef struct {
    int size;     /* H = W */
    int square;   /* side of every square */
    uint64_t seed;
} synth_params;

/* Fills one sample: x (bands, size, size), mask (size, size); returns its label. */
int synth_sample(const synth_variant *v, const synth_params *p, uint64_t index, float *x,
                 float *mask);

/* Writes DIR/X.npy, DIR/masks.npy, DIR/labels.npy, DIR/meta.json and the first n_tiff
 * samples as DIR/sample_NNN.tif. */
int synth_write(const synth_variant *v, const synth_params *p, int count, int n_tiff,
                const char *dir, glrp_error *err);

#endif
