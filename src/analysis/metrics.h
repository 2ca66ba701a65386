/*
 * Metrics that tell facts from artifacts in relevance maps, on one sample at a time.
 * r is the per-pixel relevance (summed over channels), mask the ground truth (1 inside).
 * Each returns NaN when it is undefined for the sample (e.g. no positive relevance).
 */
#ifndef GLRP_ANALYSIS_METRICS_H
#define GLRP_ANALYSIS_METRICS_H

#include <stddef.h>

/* Per-pixel relevance: the sum over the C channel planes of R (C, plane). */
void relevance_per_pixel(const float *R, int C, size_t plane, float *out);

/* Positive relevance inside the mask / all positive relevance (negatives clamped to 0). */
double metric_mass_accuracy(const float *r, const float *mask, size_t n);
/* With K = mask size: the share of the K highest-relevance pixels that are in the mask. */
double metric_rank_accuracy(const float *r, const float *mask, size_t n);
/* Share of |r| within k pixels of the image border, over that band's share of the area
 * (1 = no border bias). */
double metric_border_ratio(const float *r, int h, int w, int k);
/* Share of |R| on input elements whose value is exactly 0, over their share of elements
 * (0 = zero inputs never get relevance, 1 = no difference). R and x per element. */
double metric_zero_input_share(const float *R, const float *x, size_t n);
/* Pixel order by relevance, highest first (ties: lower index first). */
void metric_order_desc(const float *r, size_t n, int *order);
/* Area over the perturbation curve: mean over k = 0..steps of (f[0] - f[k]). */
double metric_aopc(const double *f, int steps);
/* Spearman rank correlation of two maps (average ranks for ties). */
double metric_spearman(const float *a, const float *b, size_t n);
/* The same on doubles; NaN when undefined (n < 2 or a constant side). */
double spearman_d(const double *a, const double *b, size_t n);
/* Ranks with 1 = largest, ties sharing their average rank; -1 when out of memory. */
int ranks_desc_d(const double *v, size_t n, double *rank);

/* Running mean and standard deviation, skipping NaN. */
typedef struct {
    double sum, sum2;
    long n, undefined;
} stat_acc;
void stat_add(stat_acc *s, double v);
double stat_mean(const stat_acc *s);
double stat_std(const stat_acc *s);

#endif
