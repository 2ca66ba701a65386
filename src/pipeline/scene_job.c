/*
 * The scene job's entry point: options checked, the run's stages in order, cleanup.
 * The stages live beside it: scene_setup.c (config, scene, model, bounds, outputs,
 * buffers), scene_tiles.c (read -> normalise -> explain -> blend), scene_rows.c (finished
 * rows to the writer), scene_report.c (warnings, styles, band outputs, report).
 */
#include "pipeline/scene_job.h"
#include "pipeline/run_state.h"

#include <gdal.h>
#include <ogr_srs_api.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/tmpfile.h"
#include "raster/config.h"
#include "raster/scene.h"
#include "util/error.h"

void scene_job_init(scene_job *j)
{
    memset(j, 0, sizeof *j);
    glrp_rules_init(&j->rules);
    snprintf(j->rules.composite, sizeof j->rules.composite, "epsilon-gamma-box");
    j->init = GLRP_INIT_LOGIT;
    j->threads = 1;
    j->batch = 16;
}

int scene_target_parse(scene_job *j, const char *s)
{
    char *end;
    long k = strtol(s, &end, 10);
    if (!strcmp(s, "predicted"))
        j->target = TARGET_PREDICTED;
    else if (!strcmp(s, "all"))
        j->target = TARGET_ALL;
    else if (*end == '\0' && end != s) {
        if (k < 0)
            return GLRP_ERR_INPUT;
        j->target = TARGET_INDEX, j->target_index = (int)k;
    } else
        j->target = TARGET_NAME, j->target_name = s;
    return 0;
}


double run_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void run_warn(run_state *st, const char *fmt, ...)
{
    char buf[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (!st->job->quiet)
        fprintf(stderr, "geolrp: warning: %s\n", buf);
    if (st->n_warnings < RUN_MAX_WARNINGS)
        st->warnings[st->n_warnings++] = glrp_strdup(buf);
}

static int refuse_existing(const scene_job *j, glrp_error *err)
{
    const char *outs[] = {j->output, j->class_map, j->scores, j->report, j->bands_json,
                          j->bands_csv, j->bands_svg, j->part};
    for (int k = 0; k < 8; k++)
        if (outs[k] && !j->overwrite && path_exists(outs[k]))
            return glrp_fail(err, GLRP_ERR_INPUT, "%s exists; use --overwrite to replace it",
                             outs[k]);
    return 0;
}

/* Every output folder writable before the work starts. */
static int check_output_folders(const scene_job *j, glrp_error *err)
{
    const char *outs[] = {j->output, j->class_map, j->scores, j->report, j->bands_json,
                          j->bands_csv, j->bands_svg, j->part};
    int rc = 0;
    for (int k = 0; k < 8 && !rc; k++)
        if (outs[k])
            rc = output_folder_check(outs[k], err);
    return rc;
}


void run_cleanup(run_state *st)
{
    bg_stop(&st->reader);
    bg_stop(&st->writer);
    part_run_abort(st);
    if (st->rel_open) out_abort(&st->rel_out);
    if (st->cls_open) out_abort(&st->cls_out);
    if (st->sc_open) out_abort(&st->sc_out);
    outset_discard(&st->staged);
    accum_free(&st->acc);
    for (int k = 0; st->class_names && k < st->n_classes; k++)
        free(st->class_names[k]);
    for (int k = 0; st->rel_names && k < st->n_rel; k++)
        free(st->rel_names[k]);
    for (int k = 0; k < st->n_warnings; k++)
        free(st->warnings[k]);
    free(st->class_names), free(st->rel_names), free(st->weights), free(st->stripe[0]),
        free(st->stripe[1]), free(st->stripe_valid[0]), free(st->stripe_valid[1]),
        free(st->rows[0]), free(st->rows[1]), free(st->batch_x), free(st->batch_r), free(st->batch_s),
        free(st->batch_x0), free(st->batch_valid), free(st->tile_rp), free(st->tile_vals), free(st->cls_rows),
        free(st->score_rows), free(st->class_pixels), free(st->occl_x), free(st->occl_s);
    band_stats_free(&st->bs);
    if (st->m != st->job->loaded_model)
        glrp_model_free(st->m);
    scene_close(&st->sc);
    config_free(&st->cfg);
    free(st->rules_str), free(st->ys), free(st->xs);
    if (st->own_band_names)
        for (int k = 0; k < st->C; k++)
            free(st->band_names[k]);
    if (st->own_band_names)
        free(st->band_names);
    if (st->own_srs)
        OSRDestroySpatialReference(st->own_srs);
}

int scene_job_run(scene_job *j, glrp_error *err)
{
    run_state st;
    memset(&st, 0, sizeof st);
    st.job = j;
    double t_start = run_now();
    /* Bound GDAL's block cache: memory must not grow with the scene. GDAL's default (5% of
     * RAM) let the COG copy alone reach 1.1 GiB on a 4096 x 4096 x 14 output; 64 MiB keeps
     * it near 0.4 GiB at no measured cost (bench/scene_bench.sh, docs/benchmarks.md). */
    GDALAllRegister();
    GDALSetCacheMax64((GIntBig)64 << 20);
    int rc = refuse_existing(j, err);
    if (!rc && j->batch < 1)
        rc = glrp_fail(err, GLRP_ERR_INPUT, "--batch must be at least 1");
    if (!rc && (j->min_valid < 0 || j->min_valid > 1))
        rc = glrp_fail(err, GLRP_ERR_INPUT, "--min-valid must be a fraction from 0 to 1");
    if (!rc && j->part_count &&
        (j->part_index < 0 || j->part_index >= j->part_count || !j->part || j->output ||
         j->class_map || j->scores || j->report || j->bands_json || j->bands_csv ||
         j->bands_svg || j->occlusion))
        rc = glrp_fail(err, GLRP_ERR_INPUT, "--part: a part run writes one part file only "
                       "(geolrp merge writes the outputs)");
    if (!rc)
        rc = run_setup(&st, err);
    if (!rc)
        rc = run_layout(&st, err);
    if (!rc)
        rc = run_tile_grid(&st, err);
    if (!rc)
        rc = check_output_folders(j, err);
    if (!rc && !j->part_count)
        rc = run_open_outputs(&st, err);
    if (!rc)
        rc = run_alloc_buffers(&st, err);
    st.t_setup = run_now() - t_start;
    if (!rc && j->part_count) {
        rc = part_run_open(&st, err);
        if (!rc)
            rc = run_process(&st, st.part_t0, st.part_t1, err);
        if (!rc)
            rc = part_run_commit(&st, t_start, err);
    } else if (!rc) {
        rc = run_process(&st, 0, st.ny, err);
        if (!rc)
            rc = run_finish(&st, t_start, err);
    }
    if (!rc && !j->quiet)
        fprintf(stderr, "%ld tiles explained, %ld skipped (no valid pixel), %ld skipped "
                "(--min-valid); %.1f s\n", st.tiles_explained, st.skipped_empty,
                st.skipped_min_valid, run_now() - t_start);
    run_cleanup(&st);
    return rc;
}
