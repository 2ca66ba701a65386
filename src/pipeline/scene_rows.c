/*
 * Finished rows: taken from the accumulator and handed to the writer thread, which writes
 * the relevance bands, turns class probabilities into the class map and scores, and counts
 * classes and band statistics. Also the tile-row statistics, summed in tile-row order.
 */
#include "pipeline/run_state.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "analysis/band_stats.h"
#include "mosaic/accum.h"
#include "mosaic/output.h"
#include "util/background.h"

/* Finished rows go to the outputs: relevance bands as they are, class probabilities as
 * the argmax class and its probability. Runs on the writer thread, which alone touches
 * the outputs, the class counts and the band statistics until run_flush_wait. */
static int write_rows(void *arg)
{
    write_job *job = arg;
    run_state *st = job->st;
    glrp_error *err = &job->err;
    const float *rows = job->rows;
    const int n = job->n;
    double t0 = run_now();
    const size_t W = (size_t)st->grid.width, plane = (size_t)n * W;
    int rc = 0;
    if (st->rel_open)
        rc = out_write_rows(&st->rel_out, rows, n, err);
    if (!rc && st->want_classes) {
        for (size_t e = 0; e < plane; e++) {
            int best = -1;
            float bp = -1;
            for (int k = 0; k < st->n_classes; k++) {
                float p = rows[(size_t)(st->n_rel + k) * plane + e];
                if (!isnan(p) && p > bp)
                    bp = p, best = k;
            }
            st->cls_rows[e] = best < 0 ? 255.0f : (float)best;
            st->score_rows[e] = best < 0 ? NAN : bp;
            if (best >= 0)
                st->class_pixels[best]++;
            if (st->want_bands && best >= 0 && !isnan(rows[e]))
                band_stats_add_pixel(&st->bs, best, rows + plane + e, plane);
        }
        if (st->cls_open)
            rc = out_write_rows(&st->cls_out, st->cls_rows, n, err);
        if (!rc && st->sc_open)
            rc = out_write_rows(&st->sc_out, st->score_rows, n, err);
    }
    st->t_write += run_now() - t0;
    return rc;
}

/* A part run hands the raw sums to its part file instead. */
int run_flush_rows(run_state *st, int until, glrp_error *err)
{
    if (st->pw)
        return part_run_flush(st, until, err);
    double t0 = run_now();
    float *rows = st->rows[st->rows_next];
    int n = accum_take(&st->acc, until, rows);
    st->t_mosaic += run_now() - t0;
    if (n <= 0)
        return 0;
    /* The writer has had the previous rows since the last flush, a row of tiles ago. */
    int rc = run_flush_wait(st, err);
    if (rc)
        return rc;
    st->wjob = (write_job){.st = st, .rows = rows, .n = n};
    bg_submit(&st->writer, write_rows, &st->wjob);
    st->rows_next ^= 1;
    return 0;
}

/* Waits for the job handed to b, counting the wait; its error (job_err) into err. */
int run_collect(run_state *st, background *b, const glrp_error *job_err, glrp_error *err)
{
    double t0 = run_now();
    int rc = bg_wait(b);
    st->t_wait += run_now() - t0;
    if (rc)
        *err = *job_err;
    return rc;
}

int run_flush_wait(run_state *st, glrp_error *err)
{
    return run_collect(st, &st->writer, &st->wjob.err, err);
}

int run_flush_end(run_state *st, int rc, glrp_error *err)
{
    /* On an error too: the writer may not go on using a buffer or an output. */
    glrp_error ignored; /* the first error is the one reported */
    int wrc = run_flush_wait(st, rc ? &ignored : err);
    bg_stop(&st->writer);
    return rc ? rc : wrc;
}


static void stat_acc_add(stat_acc *into, const stat_acc *from)
{
    into->sum += from->sum;
    into->sum2 += from->sum2;
    into->n += from->n;
    into->undefined += from->undefined;
}

void run_add_row_stats(run_state *st, const row_stats *r)
{
    st->cons_sum += r->cons_sum;
    stat_acc_add(&st->art_border, &r->border);
    stat_acc_add(&st->art_zero, &r->zero);
    stat_acc_add(&st->art_filled, &r->filled);
}
