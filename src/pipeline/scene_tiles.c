/*
 * The tile loop: stripes of tile rows read (and normalised) on the reader thread, tiles cut
 * from them, explained in batches and blended into the streaming mosaic.
 */
#include "pipeline/run_state.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/band_stats.h"
#include "analysis/metrics.h"
#include "mosaic/accum.h"
#include "raster/config.h"
#include "raster/scene.h"
#include "raster/tiling.h"
#include "util/error.h"
#include "util/progress.h"

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
    double t0 = run_now();
    int passes = st->need_rel ? (j->target == TARGET_ALL ? st->n_classes : 1) : 0;
    glrp_sample_stats stats[n];
    float probs[RUN_MAX_CLASSES] = {0};
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
    double t1 = run_now();
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
    st->t_mosaic += run_now() - t1;
    return 0;
}

/* Reads the stripe of rows [y0, y0 + h), counts its broken values (rows that overlapping
 * stripes share, once) and normalises it. Runs on the reader thread, which alone touches
 * the scene until run_process waits for it. */
static int read_stripe(void *arg)
{
    read_job *job = arg;
    run_state *st = job->st;
    double t0 = run_now();
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
    st->t_read += run_now() - t0;
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
    st->ys = glrp_alloc(RUN_MAX_TILES_PER_AXIS, sizeof *st->ys);
    st->xs = glrp_alloc(RUN_MAX_TILES_PER_AXIS, sizeof *st->xs);
    if (!st->ys || !st->xs)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    st->ny = tile_positions(st->grid.height, st->th, st->stride_y, st->ys, RUN_MAX_TILES_PER_AXIS);
    st->nx = tile_positions(st->grid.width, st->tw, st->stride_x, st->xs, RUN_MAX_TILES_PER_AXIS);
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
int run_process(run_state *st, int row_begin, int row_end, glrp_error *err)
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
        if ((rc = run_collect(st, &st->reader, &st->rjob.err, err)))
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
