/*
 * `geolrp explain --part I/N`: the tile rows of part I go through the same pipeline as a
 * whole run (scene_job.c); what would become output rows becomes a part file instead.
 *
 * Float sums are not associative, so the split must not change the order in which a
 * pixel's tile contributions are added. A single run adds them in tile order (tile row by
 * tile row, left to right) to a zero accumulator. Rows that only this part and later ones
 * cover hold, here, exactly the sums a single run has after this part's tiles: they go to
 * the part file as they are. Rows that earlier parts cover too would need this part's
 * tiles added after the earlier parts' ones: those tiles go to the part file one by one
 * (the "seam"), and merge adds them in order. Statistics are kept per tile row for the
 * same reason (run_add_row_stats).
 */
#include <stdlib.h>
#include <string.h>

#include "pipeline/part_file.h"
#include "pipeline/run_state.h"
#include "util/error.h"

void part_tile_rows(int ny, int i, int n, int *t0, int *t1)
{
    *t0 = (int)((long long)i * ny / n);
    *t1 = (int)((long long)(i + 1) * ny / n);
}

int part_run_open(run_state *st, glrp_error *err)
{
    const scene_job *j = st->job;
    const int H = st->grid.height;
    part_tile_rows(st->ny, j->part_index, j->part_count, &st->part_t0, &st->part_t1);
    int t0 = st->part_t0, t1 = st->part_t1;
    if (t0 < t1) {
        st->part_seam = st->ys[t0];
        st->part_a = t0 > 0 ? (st->ys[t0 - 1] + st->th < H ? st->ys[t0 - 1] + st->th : H) : 0;
        st->part_b = st->ys[t1 - 1] + st->th < H ? st->ys[t1 - 1] + st->th : H;
        if (st->part_b < st->part_a)
            st->part_b = st->part_a; /* all its rows covered before: only seam tiles */
    } else if (!j->quiet) {
        fprintf(stderr, "geolrp: part %d of %d has no tile row (the scene has %d): its part "
                "file only records the run\n", j->part_index, j->part_count, st->ny);
    }
    accum_start_at(&st->acc, st->part_seam);
    st->pw = calloc(1, sizeof *st->pw);
    st->part_rows = json_array();
    if (!st->pw || !st->part_rows)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    int rc = part_writer_create(st->pw, j->part, st->n_acc, st->grid.width,
                                st->part_b - st->part_a, err);
    if (rc) {
        free(st->pw);
        st->pw = NULL;
    }
    return rc;
}

int part_run_seam_tile(run_state *st, const float *values, int x0, int y0, int w, int h,
                       glrp_error *err)
{
    int hs = st->part_a - y0 < h ? st->part_a - y0 : h;
    return part_writer_seam(st->pw, values, st->th, st->tw, hs, x0, y0, w, err);
}

int part_run_flush(run_state *st, int until, glrp_error *err)
{
    double t0 = run_now();
    accum *a = &st->acc;
    int n = accum_final_rows(a, until);
    const size_t W = (size_t)a->width;
    for (int r = 0; r < n; r++) {
        if (a->base + r < st->part_a)
            continue; /* merge gets these rows from earlier parts and the seam tiles */
        int rc = part_writer_row(st->pw, a->sum + (size_t)r * a->bands * W,
                                 a->weight + (size_t)r * W, a->valid + (size_t)r * W, err);
        if (rc)
            return rc;
    }
    accum_slide(a, until);
    st->t_write += run_now() - t0;
    return 0;
}

int part_run_row_stats(run_state *st, const row_stats *r, glrp_error *err)
{
    json_t *v = row_stats_json(r);
    if (!v || json_array_append_new(st->part_rows, v))
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    return 0;
}

int part_run_commit(run_state *st, double t_start, glrp_error *err)
{
    json_t *doc = part_meta_describe(st, run_now() - t_start);
    if (!doc)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    int rc = part_writer_commit(st->pw, doc, err);
    json_decref(doc);
    free(st->pw);
    st->pw = NULL;
    return rc;
}

void part_run_abort(run_state *st)
{
    if (st->pw) {
        part_writer_abort(st->pw);
        free(st->pw);
        st->pw = NULL;
    }
    json_decref(st->part_rows);
    st->part_rows = NULL;
}
