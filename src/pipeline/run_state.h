/*
 * The state of one scene run, shared inside src/pipeline/ by the three ways a run can
 * go (not a public interface):
 *
 *   explain            setup -> process all tile rows -> flush rows -> finish
 *   explain --part I/N setup -> process tile rows of part I -> part file (part_run.c)
 *   merge              part files -> the same accumulator -> flush rows -> finish (merge.c)
 *
 * Everything after the accumulator (normalising sums by weights, class maps, band
 * statistics, COGs, .qml, report, warnings) is one code path: run_flush_rows and
 * run_finish. That is what makes a merged run equal a single one bit for bit.
 */
#ifndef GLRP_PIPELINE_RUN_STATE_H
#define GLRP_PIPELINE_RUN_STATE_H

#include <jansson.h>

#include "analysis/band_stats.h"
#include "analysis/metrics.h"
#include "mosaic/accum.h"
#include "mosaic/output.h"
#include "pipeline/scene_job.h"
#include "raster/config.h"
#include "raster/scene.h"
#include "util/background.h"
#include "util/progress.h"

#define RUN_MAX_WARNINGS 16
/* Class maps are Byte with 255 for nodata; per-tile class probabilities use a buffer of
 * this many classes. */
#define RUN_MAX_CLASSES 255
#define RUN_MAX_TILES_PER_AXIS 65536

struct part_writer;
struct run_state;

/* A stripe of the scene read (and normalised) by the reader thread. */
typedef struct {
    struct run_state *st;
    int y0, h;
    float *values;     /* (C, h, width), normalised; invalid pixels hold the fill value */
    uint8_t *valid;    /* (h, width) */
    glrp_error err;
} read_job;

/* Finished rows handed to the writer thread. */
typedef struct {
    struct run_state *st;
    float *rows;       /* (n_acc, n, width), blended */
    int n;
    glrp_error err;
} write_job;

/* Per-tile statistics whose floating-point sums must not depend on how the scene is
 * split: they are summed per tile row, and the tile-row sums are added in tile-row order
 * (here, or by merge from the part files). */
typedef struct {
    double cons_sum;
    stat_acc border, zero, filled;
} row_stats;

typedef struct run_state {
    scene_job *job;
    scene sc;                 /* closed (ds NULL) in merge */
    scene_config cfg;
    normalization norm;
    glrp_model *m;            /* NULL in merge */
    out_grid grid;            /* the scene's grid: from sc, or from a part file */
    OGRSpatialReferenceH own_srs; /* merge: the CRS read from a part file */
    char **band_names;        /* C names: sc.band_name, or owned (merge) */
    int own_band_names;
    char *rules_str;          /* rule per linear layer, "#0=zbox,#1=gamma(0.25),..." */
    int C, th, tw, stride_y, stride_x, K, n_classes;
    char **class_names;
    int n_rel, n_acc; /* relevance bands; all accumulated bands (relevance + class probs) */
    int want_classes, need_rel, want_bands;
    band_stats bs;
    float baseline[SCENE_MAX_BANDS]; /* occlusion value per band, model units */
    float *occl_x, *occl_s;
    char **rel_names;
    accum acc;
    out_raster rel_out, cls_out, sc_out;
    int rel_open, cls_open, sc_open;
    outset staged; /* finished outputs, renamed together at the very end */
    float *weights, *batch_x, *batch_r, *batch_s, *tile_vals, *cls_rows, *score_rows;
    /* Two of each: the main thread uses one while the reader fills, or the writer empties,
     * the other. */
    float *stripe[2], *rows[2];
    uint8_t *stripe_valid[2];
    int rows_next;            /* which rows buffer the next flush fills */
    background reader, writer; /* threads while tiles are processed; inline otherwise */
    read_job rjob;
    write_job wjob;
    int *batch_x0, n_batch;
    float zlow[SCENE_MAX_BANDS], zhigh[SCENE_MAX_BANDS];
    char zbox_source[64];
    long tiles_total, tiles_explained, skipped_empty, skipped_min_valid, tiles_done;
    double cons_sum, cons_min, cons_max;
    long cons_n;
    /* artifact indicators over explained tiles (docs/artifacts.md) */
    stat_acc art_border, art_zero, art_filled;
    row_stats row;            /* the tile row being explained */
    uint8_t *batch_valid;
    float *tile_rp;
    long long *class_pixels, valid_pixels, invalid_pixels;
    long long nonfinite_pixels; /* NaN or Inf in the data (not declared nodata) */
    int rows_scanned;           /* rows counted for nonfinite_pixels so far */
    /* Seconds: of setting up (model, bounds, outputs); of reading stripes and writing rows
     * into the temporaries, on whichever thread did them; of the LRP; of mosaicking; of
     * finishing (COG copies, side-cars); of the main thread waiting for the reader or
     * the writer. */
    double t_setup, t_read, t_explain, t_mosaic, t_write, t_finish, t_wait;
    char *warnings[RUN_MAX_WARNINGS];
    int n_warnings;
    char sha[65];
    progress prog;
    /* explain --part: tile rows [t0, t1); rows [part_seam, part_a) of its tiles are also
     * covered by earlier parts (their tiles go to the part file one by one), rows
     * [part_a, part_b) are first covered here (their sums go to the part file). */
    int part_t0, part_t1, part_seam, part_a, part_b;
    int *ys, *xs, ny, nx;     /* the tile grid */
    struct part_writer *pw;
    json_t *part_rows;        /* row_stats of each tile row, in order */
} run_state;

/* scene_job.c */
double run_now(void);
/* A warning on stderr (unless quiet) and in the report. */
void run_warn(run_state *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* scene_setup.c: config over defaults, scene, model, bands, classes, target, bounds. */
int run_setup(run_state *st, glrp_error *err);
/* Stripes, batches and the row buffers of a whole or part run. */
int run_alloc_buffers(run_state *st, glrp_error *err);

/* scene_tiles.c: tile rows [row_begin, row_end) read, explained and blended. */
int run_process(run_state *st, int row_begin, int row_end, glrp_error *err);

/* scene_rows.c: waits for the job handed to b, counting the wait; its error (job_err)
 * into err. */
int run_collect(run_state *st, background *b, const glrp_error *job_err, glrp_error *err);

/* scene_report.c: the rule of every linear layer, "#0=zbox,#1=gamma(0.25),...". */
void run_rules_text(const run_state *st, char *buf, size_t size);

/* Band counts and names of the accumulated layers; band statistics. */
int run_layout(run_state *st, glrp_error *err);
/* The COGs the job asks for (relevance, class map, scores), under temporary names. */
int run_open_outputs(run_state *st, glrp_error *err);
/* The tile grid (ys, xs, ny, nx, tiles_total) from the grid and tile geometry. */
int run_tile_grid(run_state *st, glrp_error *err);
/* The accumulator and the row buffers (window: rows held, normally one tile height). */
int run_alloc_rows(run_state *st, int window, glrp_error *err);
/* Rows before `until` are final: normalise them, then (on the writer thread when it runs)
 * write them, count classes and band statistics. */
int run_flush_rows(run_state *st, int until, glrp_error *err);
/* Waits until the writer has written every row handed to it; its error, if any. */
int run_flush_wait(run_state *st, glrp_error *err);
/* After the last flush (rc: the run's status so far): waits for the writer and ends its
 * thread. Returns rc, or the writer's error when rc is 0. */
int run_flush_end(run_state *st, int rc, glrp_error *err);
/* Adds one tile row's statistics to the run's (in tile-row order). */
void run_add_row_stats(run_state *st, const row_stats *r);
/* Warnings from the statistics, COGs renamed into place, .qml, band outputs, report. */
int run_finish(run_state *st, double t_start, glrp_error *err);
void run_cleanup(run_state *st);

/* part_run.c: the part file of `geolrp explain --part`. */
int part_run_open(run_state *st, glrp_error *err);
int part_run_seam_tile(run_state *st, const float *values, int x0, int y0, int w, int h,
                       glrp_error *err);
int part_run_flush(run_state *st, int until, glrp_error *err);
int part_run_row_stats(run_state *st, const row_stats *r, glrp_error *err);
int part_run_commit(run_state *st, double t_start, glrp_error *err);
void part_run_abort(run_state *st);

/* part_meta.c: what a part file says about its run, and back. */
json_t *part_meta_describe(const run_state *st, double t_total);
/* Fills st (job, grid, names, rules, bounds, setup warnings) from a part's document. */
int part_meta_restore(run_state *st, const json_t *doc, const char *path, glrp_error *err);
/* Adds a part's statistics (counts, times, tile-row sums in order) to st's; *t_total gets
 * the part's run time added. */
int part_meta_add_stats(run_state *st, const json_t *doc, const char *path, double *t_total,
                        glrp_error *err);
json_t *row_stats_json(const row_stats *r);
int row_stats_from_json(const json_t *v, row_stats *r);

/* The split of ny tile rows into n parts: part i has tile rows [*t0, *t1). */
void part_tile_rows(int ny, int i, int n, int *t0, int *t1);

#endif
