/*
 * geolrp merge: the part files of one `explain --part I/N` split -> the outputs a single
 * `explain` gives, bit for bit.
 *
 * The parts are checked first (same scene, model, options and split; each of 0..N-1 once)
 * and nothing is written unless they belong together. Then the accumulator of a single
 * run is rebuilt row by row, top to bottom: a part's own rows are set to its partial sums,
 * its seam tiles are added after the earlier parts' sums, in tile order, as a single run
 * adds them; rows that no later part touches are final and go through the same
 * normalise-and-write code as a single run (run_flush_rows, run_finish). Neither the scene
 * nor the model is read: everything the outputs need is in the part files.
 */
#include <cpl_conv.h>
#include <gdal.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/tmpfile.h"
#include "pipeline/part_file.h"
#include "pipeline/run_state.h"
#include "raster/tiling.h"
#include "util/error.h"

/* The first key path where a and b differ ("" when they are equal or not objects).
 * Recursion is bounded by the nesting jansson accepts when parsing (2048 levels). */
static void first_diff( /* NOLINT(misc-no-recursion) */const json_t *a, const json_t *b, char *path, size_t size)
{
    if (!json_is_object(a) || !json_is_object(b))
        return;
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)a, key, v) {
        const json_t *w = json_object_get(b, key);
        if (!w || !json_equal((json_t *)v, (json_t *)w)) {
            size_t n = strlen(path);
            snprintf(path + n, size - n, ".%s", key);
            if (w)
                first_diff(v, w, path, size);
            return;
        }
    }
    json_object_foreach((json_t *)b, key, v) {
        if (!json_object_get(a, key)) {
            size_t n = strlen(path);
            snprintf(path + n, size - n, ".%s", key);
            return;
        }
    }
}

static void value_text(const json_t *v, char *buf, size_t size)
{
    char *s = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    snprintf(buf, size, "%.90s%s", s ? s : "(absent)", s && strlen(s) > 90 ? "..." : "");
    free(s);
}

static const json_t *get_path(const json_t *doc, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const json_t *v = doc;
    for (char *k = strtok(buf, "."); k && v; k = strtok(NULL, "."))
        v = json_object_get(v, k);
    return v;
}

static int part_int(const json_t *doc, const char *key, int k)
{
    const json_t *v = json_object_get(json_object_get(doc, "part"), key);
    v = k < 0 ? v : json_array_get(v, (size_t)k);
    return json_is_integer(v) ? (int)json_integer_value(v) : -1;
}

/* Same split, same run: everything that decides the values must be equal. */
static int check_set(part_reader *r, int n, int *order, glrp_error *err)
{
    static const char *same[] = {"format_version", "geolrp_version", "part.count",
                                 "model_sha256", "scene", "options", "run"};
    const json_t *d0 = r[0].doc;
    int N = part_int(d0, "count", -1);
    if (N < 1)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: part document: 'part.count' is missing or "
                         "invalid", r[0].path);
    for (int k = 0; k < N; k++)
        order[k] = -1;
    for (int p = 0; p < n; p++) {
        for (size_t s = 0; s < sizeof same / sizeof *same; s++) {
            const json_t *a = get_path(d0, same[s]), *b = get_path(r[p].doc, same[s]);
            if (p == 0 && !a)
                return glrp_fail(err, GLRP_ERR_INPUT, "%s: part document: '%s' is missing",
                                 r[0].path, same[s]);
            if (a && b && json_equal((json_t *)a, (json_t *)b))
                continue;
            char where[256], va[128], vb[128];
            snprintf(where, sizeof where, "%s", same[s]);
            first_diff(a, b, where, sizeof where);
            value_text(get_path(r[p].doc, where), vb, sizeof vb);
            value_text(get_path(d0, where), va, sizeof va);
            if (!strcmp(same[s], "part.count"))
                return glrp_fail(err, GLRP_ERR_INPUT, "%s is a part of %s, %s of %s: they come "
                                 "from different splits", r[p].path, vb, r[0].path, va);
            return glrp_fail(err, GLRP_ERR_INPUT, "%s does not belong with %s: %s is %s there "
                             "and %s here", r[p].path, r[0].path, where, va, vb);
        }
        int i = part_int(r[p].doc, "index", -1);
        if (i < 0 || i >= N)
            return glrp_fail(err, GLRP_ERR_INPUT, "%s: part document: 'part.index' is missing "
                             "or invalid", r[p].path);
        if (order[i] >= 0)
            return glrp_fail(err, GLRP_ERR_INPUT, "%s and %s are both part %d of %d",
                             r[order[i]].path, r[p].path, i, N);
        order[i] = p;
    }
    char missing[512] = "";
    int n_missing = 0;
    for (int i = 0; i < N; i++)
        if (order[i] < 0) {
            size_t len = strlen(missing);
            if (len < sizeof missing - 16)
                snprintf(missing + len, sizeof missing - len, "%s%d", n_missing ? ", " : "", i);
            n_missing++;
        }
    if (n_missing)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s %s of %d %s missing (parts of %s's split: "
                         "%d given)", n_missing > 1 ? "parts" : "part", missing, N,
                         n_missing > 1 ? "are" : "is", r[0].path, n);
    return 0;
}

typedef struct {
    int t0, t1, seam, a, b;
} part_geom;

/* Where each part's rows must be, from the grid; each part file must agree. */
static int check_geometry(run_state *st, part_reader *r, const int *order, int N,
                          part_geom *g, glrp_error *err)
{
    const int H = st->grid.height, W = st->grid.width;
    const json_t *grid = json_object_get(json_object_get(r[order[0]].doc, "run"), "tile_grid");
    if (json_integer_value(json_array_get(grid, 0)) != st->ny ||
        json_integer_value(json_array_get(grid, 1)) != st->nx)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: its tile grid does not follow from its "
                         "size, tile and stride", r[order[0]].path);
    int covered = 0;
    for (int i = 0; i < N; i++) {
        part_reader *p = &r[order[i]];
        part_geom *q = &g[i];
        part_tile_rows(st->ny, i, N, &q->t0, &q->t1);
        q->seam = q->a = q->b = 0;
        if (q->t0 < q->t1) {
            q->seam = st->ys[q->t0];
            q->a = covered;
            q->b = st->ys[q->t1 - 1] + st->th < H ? st->ys[q->t1 - 1] + st->th : H;
            if (q->b < q->a)
                q->b = q->a;
            covered = q->b;
        }
        int want[6] = {q->t0, q->t1, q->a, q->b, q->seam, q->a};
        const char *keys[3] = {"tile_rows", "rows", "seam_rows"};
        for (int k = 0; k < 6; k++)
            if (part_int(p->doc, keys[k / 2], k % 2) != want[k])
                return glrp_fail(err, GLRP_ERR_INPUT, "%s: part.%s does not match part %d of "
                                 "%d of this scene", p->path, keys[k / 2], i, N);
        if (p->rows != q->b - q->a || p->row_floats != (st->n_acc + 2) * W)
            return glrp_fail(err, GLRP_ERR_INPUT, "%s: its rows array does not match its "
                             "part of the scene", p->path);
        const json_t *tiles = get_path(p->doc, "data.seam.tiles");
        uint64_t count = 0;
        for (size_t k = 0; k < json_array_size(tiles); k++) {
            const json_t *t = json_array_get(tiles, k);
            int v[4];
            for (int e = 0; e < 4; e++) {
                const json_t *x = json_array_get(t, (size_t)e);
                v[e] = json_is_integer(x) ? (int)json_integer_value(x) : -1;
            }
            if (json_array_size(t) != 4 || v[0] < 0 || v[2] < 1 || v[2] > st->tw ||
                v[0] + v[2] > W || v[3] < 1 || v[3] > st->th || v[1] < q->seam ||
                v[1] + v[3] > q->a)
                return glrp_fail(err, GLRP_ERR_INPUT, "%s: seam tile %zu lies outside the "
                                 "rows it may cover", p->path, k);
            count += (uint64_t)st->n_acc * (uint64_t)v[3] * (uint64_t)st->tw;
        }
        if (count != p->seam_count)
            return glrp_fail(err, GLRP_ERR_INPUT, "%s: its seam array does not match its "
                             "tiles", p->path);
    }
    return 0;
}

/* Part i into the accumulator: its seam tiles after what is there, then its rows. */
static int replay_part(run_state *st, part_reader *p, const part_geom *q, int next_seam,
                       float *tile, float *row, glrp_error *err)
{
    accum *acc = &st->acc;
    const int W = st->grid.width, B = st->n_acc;
    int rc = part_reader_begin(p, err);
    if (!rc && q->t0 < q->t1)
        rc = run_flush_rows(st, q->seam, err);
    const json_t *tiles = get_path(p->doc, "data.seam.tiles");
    for (size_t k = 0; !rc && k < json_array_size(tiles); k++) {
        const json_t *t = json_array_get(tiles, k);
        int x0 = (int)json_integer_value(json_array_get(t, 0));
        int y0 = (int)json_integer_value(json_array_get(t, 1));
        int w = (int)json_integer_value(json_array_get(t, 2));
        int h = (int)json_integer_value(json_array_get(t, 3));
        if (y0 < acc->base || y0 + h > acc->base + acc->rows)
            return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: seam tile %zu outside the window "
                             "(internal error)", p->path, k);
        rc = part_reader_seam(p, tile, (size_t)B * h * st->tw, err);
        if (!rc)
            accum_add(acc, tile, st->weights, h, st->tw, x0, y0, w, h);
    }
    if (!rc)
        rc = part_reader_rows_begin(p, err);
    for (int r = q->a; !rc && r < q->b;) {
        int until = r < next_seam ? r : next_seam;
        if ((rc = run_flush_rows(st, until, err)))
            break;
        int end = acc->base + acc->rows < q->b ? acc->base + acc->rows : q->b;
        if (end <= r)
            return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: rows do not fit the window "
                             "(internal error)", p->path);
        for (; !rc && r < end; r++) {
            rc = part_reader_row(p, row, err);
            if (!rc)
                accum_put_row(acc, r, row, row + (size_t)B * W, row + (size_t)(B + 1) * W);
        }
    }
    return rc ? rc : part_reader_verify(p, err);
}

static int refuse_existing(const merge_job *mj, glrp_error *err)
{
    const char *outs[] = {mj->output, mj->class_map, mj->scores, mj->report, mj->bands_json};
    for (int k = 0; k < 5; k++)
        if (outs[k] && !mj->overwrite && path_exists(outs[k]))
            return glrp_fail(err, GLRP_ERR_INPUT, "%s exists; use --overwrite to replace it",
                             outs[k]);
    return 0;
}

static int merge_parts(run_state *st, const merge_job *mj, part_reader *r, int *order,
                       double t_start, glrp_error *err)
{
    scene_job *j = st->job;
    int rc = check_set(r, mj->n_parts, order, err);
    const int N = mj->n_parts;
    if (!rc)
        rc = part_meta_restore(st, r[order[0]].doc, r[order[0]].path, err);
    j->output = mj->output, j->class_map = mj->class_map, j->scores = mj->scores;
    j->report = mj->report, j->bands_json = mj->bands_json;
    j->overwrite = mj->overwrite, j->quiet = mj->quiet;
    for (int k = 0; k < mj->n_creation_options; k++)
        j->creation_options[k] = mj->creation_options[k];
    j->n_creation_options = mj->n_creation_options;
    j->threads = mj->threads > 0 ? mj->threads : 1;
    j->part_count = N; /* the parts carry class probabilities */
    st->want_bands = mj->bands_json != NULL;
    if (!rc && st->want_bands && j->target == TARGET_ALL)
        rc = glrp_fail(err, GLRP_ERR_INPUT, "--bands-report: the parts explain every class "
                       "(--target all); band importance needs one target");
    if (!rc)
        rc = run_layout(st, err);
    const json_t *run = json_object_get(r[order[0]].doc, "run");
    if (!rc && (json_integer_value(json_object_get(run, "relevance_bands")) != st->n_rel ||
                json_integer_value(json_object_get(run, "accumulated_bands")) != st->n_acc))
        rc = glrp_fail(err, GLRP_ERR_INPUT, "%s: its band layout is not the one its options "
                       "give", r[order[0]].path);
    if (!rc)
        rc = run_tile_grid(st, err);
    part_geom *g = glrp_alloc((size_t)N, sizeof *g);
    if (!rc && !g)
        rc = glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    if (!rc)
        rc = check_geometry(st, r, order, N, g, err);
    double parts_total = 0;
    for (int i = 0; !rc && i < N; i++)
        rc = part_meta_add_stats(st, r[order[i]].doc, r[order[i]].path, &parts_total, err);
    if (!rc)
        rc = run_open_outputs(st, err);
    if (!rc)
        rc = run_alloc_rows(st, st->th, err);
    size_t tile = (size_t)st->th * st->tw;
    float *tbuf = glrp_alloc((size_t)st->n_acc * tile, sizeof *tbuf);
    float *rbuf = glrp_alloc((size_t)(st->n_acc + 2) * (size_t)st->grid.width, sizeof *rbuf);
    st->weights = glrp_alloc(tile, sizeof *st->weights);
    if (!rc && (!tbuf || !rbuf || !st->weights))
        rc = glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    if (!rc)
        blend_weights(j->blend, st->th, st->tw, st->stride_y, st->stride_x, st->weights);
    st->prog.quiet = j->quiet;
    bg_start(&st->writer); /* rows replayed so far are written while the next part is read */
    for (int i = 0; !rc && i < N; i++) {
        int next_seam = st->grid.height;
        for (int k = i + 1; k < N; k++)
            if (g[k].t0 < g[k].t1) {
                next_seam = g[k].seam;
                break;
            }
        double t0 = run_now();
        rc = replay_part(st, &r[order[i]], &g[i], next_seam, tbuf, rbuf, err);
        st->t_mosaic += run_now() - t0;
        progress_update(&st->prog, (double)(i + 1) / N);
    }
    if (!rc)
        rc = run_flush_rows(st, st->grid.height, err);
    rc = run_flush_end(st, rc, err);
    st->valid_pixels = st->acc.valid_taken;
    st->invalid_pixels = (long long)st->grid.width * st->grid.height - st->valid_pixels;
    if (!rc)
        rc = run_finish(st, t_start - parts_total, err);
    free(g), free(tbuf), free(rbuf);
    return rc;
}

int merge_run(const merge_job *mj, glrp_error *err)
{
    double t_start = run_now();
    GDALAllRegister();
    GDALSetCacheMax64((GIntBig)64 << 20);
    int rc = refuse_existing(mj, err);
    if (rc)
        return rc;
    part_reader *r = glrp_alloc((size_t)mj->n_parts, sizeof *r);
    int *order = glrp_alloc((size_t)mj->n_parts, sizeof *order);
    scene_job j;
    scene_job_init(&j);
    run_state st;
    memset(&st, 0, sizeof st);
    st.job = &j;
    if (!r || !order)
        rc = glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    int opened = 0;
    for (; !rc && opened < mj->n_parts; opened++)
        rc = part_reader_open(&r[opened], mj->parts[opened], err);
    if (!rc) {
        /* order[i]: the reader of part i; the checks name what is missing or doubled */
        int N = part_int(r[0].doc, "count", -1);
        if (N < 1 || N > 1000000)
            rc = glrp_fail(err, GLRP_ERR_INPUT, "%s: part document: 'part.count' is missing "
                           "or invalid", r[0].path);
        int *o2 = rc ? NULL : realloc(order, (size_t)(N > mj->n_parts ? N : mj->n_parts) *
                                                 sizeof *o2);
        if (!rc && !o2)
            rc = glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
        else if (o2)
            order = o2;
    }
    if (!rc)
        rc = merge_parts(&st, mj, r, order, t_start, err);
    if (!rc && !mj->quiet)
        fprintf(stderr, "%d parts merged: %ld tiles explained, %ld skipped (no valid pixel), "
                "%ld skipped (--min-valid); %.1f s\n", mj->n_parts, st.tiles_explained,
                st.skipped_empty, st.skipped_min_valid, run_now() - t_start);
    run_cleanup(&st);
    for (int k = 0; r && k < opened; k++)
        part_reader_close(&r[k]);
    free(r), free(order);
    return rc;
}
