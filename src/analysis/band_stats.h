/*
 * Band importance: per input band, over all valid pixels and per predicted class, the
 * sum of relevance, of |R|, of its positive and negative parts, the share of total |R|,
 * the mean per valid pixel and the rank; optionally the occlusion drop (the mean fall of
 * the target score when the band is replaced by a baseline) and the Spearman correlation
 * of the two rankings, which says whether the LRP ranking can be trusted.
 */
#ifndef GLRP_ANALYSIS_BAND_STATS_H
#define GLRP_ANALYSIS_BAND_STATS_H

#include <jansson.h>

#include "geolrp/geolrp.h"
#include "io/tmpfile.h"

typedef struct {
    double sum, abs, pos, neg;
} band_acc;

typedef struct {
    int C, K;
    char **band_names;  /* borrowed */
    char **class_names; /* borrowed */
    band_acc *all;      /* C */
    band_acc *per_class; /* K x C */
    long long pixels, *class_pixels;
    int occlusion;
    double *occl_sum;   /* C: sum over tiles of the score drop */
    long occl_tiles;
} band_stats;

int band_stats_init(band_stats *b, int C, int K, char **band_names, char **class_names,
                    int occlusion);
void band_stats_free(band_stats *b);
/* One valid pixel: its class and per-band relevance r[c * stride]. */
void band_stats_add_pixel(band_stats *b, int cls, const float *r, size_t stride);

/* The JSON document (caller adds run details); the Spearman value is stored in *rho. */
json_t *band_stats_json(const band_stats *b, double *rho);
/* Both stage the file in set (io/tmpfile.h), or rename it into place when set is NULL. */
int band_stats_write_csv(const band_stats *b, const char *path, outset *set, glrp_error *err);
int band_stats_write_svg(const band_stats *b, const char *path, const char *title,
                         outset *set, glrp_error *err);

#endif
