/*
 * geolrp eval: metrics that separate facts from artifacts, for one model over labelled
 * samples with ground-truth masks, for several composites. See docs/eval.md.
 */
#ifndef GLRP_ANALYSIS_EVAL_H
#define GLRP_ANALYSIS_EVAL_H

#include <jansson.h>

#include "analysis/metrics.h"
#include "geolrp/geolrp.h"

#define EVAL_MAX_BANDS 64

typedef struct {
    const char *model;
    const float *x, *masks, *labels; /* (N, C, H, W), (N, H, W), (N) or NULL */
    int n, c, h, w;
    const char *const *composites;
    int n_composites;
    glrp_rules rules;       /* parameters and overrides; composite replaced per run */
    int target_label;       /* explain the label instead of the prediction */
    glrp_init init;
    int border;             /* k of the border ratio */
    int steps;              /* pixel-flipping steps */
    double flip_fraction;   /* share of pixels flipped at the last step */
    int randomization;
    int batch;
    uint64_t seed;
} eval_job;

typedef struct {
    char composite[64];
    stat_acc mass, rank, border, zero, aopc_morf, aopc_random, rand_top, rand_all,
        conservation, accuracy;
    stat_acc band_share[EVAL_MAX_BANDS];
    /* mass accuracy split by label (the absence variant's class 0 shows the artifact) */
    stat_acc mass_by_label[2];
} eval_row;

/* rows: n_composites entries. */
int eval_run(const eval_job *j, eval_row *rows, glrp_error *err);
json_t *eval_row_json(const eval_row *r, int bands);
/* One Markdown table row per eval row; prefix cells (e.g. "| noise | cnn |") optional. */
void eval_markdown_header(FILE *f, int with_prefix);
void eval_markdown_row(FILE *f, const char *prefix, const eval_row *r);

#endif
