#include "analysis/eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

typedef struct {
    const eval_job *j;
    glrp_model *m, *m_top, *m_all;
    float low[EVAL_MAX_BANDS], high[EVAL_MAX_BANDS], baseline[EVAL_MAX_BANDS];
    float *R, *Rr, *scores, *xk, *sk, *rp, *rpr;
    int *targets;
    glrp_sample_stats *st;
    int K;
} eval_ctx;

static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* f[k] for k = 1..steps: the target score with the first k/steps * fraction of the pixels
 * in `order` replaced by the baseline (all channels). One forward per step for the batch. */
static int flip_curve(eval_ctx *e, const float *x, int n, int **orders, double *f,
                      glrp_error *err)
{
    const eval_job *j = e->j;
    const size_t plane = (size_t)j->h * j->w, in = (size_t)j->c * plane;
    for (int k = 1; k <= j->steps; k++) {
        size_t flip = (size_t)llround(j->flip_fraction * (double)plane * k / j->steps);
        memcpy(e->xk, x, (size_t)n * in * sizeof(float));
        for (int s = 0; s < n; s++)
            for (size_t q = 0; q < flip; q++)
                for (int b = 0; b < j->c; b++)
                    e->xk[(size_t)s * in + (size_t)b * plane + (size_t)orders[s][q]] =
                        e->baseline[b];
        if (glrp_forward(e->m, e->xk, n, e->sk, err))
            return err->code;
        for (int s = 0; s < n; s++)
            f[(size_t)s * (j->steps + 1) + k] = e->sk[(size_t)s * e->K + e->st[s].target];
    }
    return 0;
}

static int run_batch(eval_ctx *e, glrp_rules *rules, int at, int n, eval_row *row,
                     glrp_error *err)
{
    const eval_job *j = e->j;
    const size_t plane = (size_t)j->h * j->w, in = (size_t)j->c * plane;
    const float *x = j->x + (size_t)at * in;
    int rc = 0;
    for (int s = 0; s < n; s++)
        e->targets[s] = !j->target_label ? GLRP_TARGET_PREDICTED
                        : e->K == 1      ? 0
                                         : (int)j->labels[at + s];
    if ((rc = glrp_explain_targets(e->m, rules, e->targets, j->init, x, n, e->R, e->scores,
                                   e->st, err)))
        return rc;
    double *f = malloc((size_t)n * (j->steps + 1) * sizeof *f);
    double *fr = malloc((size_t)n * (j->steps + 1) * sizeof *fr);
    int **orders = malloc((size_t)n * sizeof *orders), **rorders = malloc((size_t)n * sizeof *rorders);
    int *order_mem = malloc((size_t)n * 2 * plane * sizeof *order_mem);
    if (!f || !fr || !orders || !rorders || !order_mem) {
        rc = glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
        goto done;
    }
    for (int s = 0; s < n; s++) {
        const float *R = e->R + s * in, *xs = x + s * in, *mask = j->masks + (size_t)(at + s) * plane;
        relevance_per_pixel(R, j->c, plane, e->rp);
        stat_add(&row->mass, metric_mass_accuracy(e->rp, mask, plane));
        if (j->labels) {
            int lab = j->labels[at + s] > 0.5f;
            stat_add(&row->mass_by_label[lab], metric_mass_accuracy(e->rp, mask, plane));
            int pred = e->K == 1 ? e->scores[(size_t)s * e->K] > 0
                                 : e->st[s].target; /* predicted when explaining predictions */
            if (!j->target_label)
                stat_add(&row->accuracy, pred == lab ? 1.0 : 0.0);
        }
        stat_add(&row->rank, metric_rank_accuracy(e->rp, mask, plane));
        stat_add(&row->border, metric_border_ratio(e->rp, j->h, j->w, j->border));
        stat_add(&row->zero, metric_zero_input_share(R, xs, in));
        stat_add(&row->conservation, e->st[s].relevance_start != 0
                                         ? e->st[s].relevance_input / e->st[s].relevance_start
                                         : NAN);
        double tot = 0;
        for (size_t q = 0; q < in; q++)
            tot += fabs(R[q]);
        for (int b = 0; b < j->c && b < EVAL_MAX_BANDS; b++) {
            double band = 0;
            for (size_t p = 0; p < plane; p++)
                band += fabs(R[(size_t)b * plane + p]);
            stat_add(&row->band_share[b], tot > 0 ? band / tot : NAN);
        }
        orders[s] = order_mem + (size_t)s * 2 * plane;
        rorders[s] = orders[s] + plane;
        metric_order_desc(e->rp, plane, orders[s]);
        /* A random order for reference: Fisher-Yates, seeded by the sample index. */
        uint64_t st = j->seed * 1000003ull + (uint64_t)(at + s);
        for (size_t p = 0; p < plane; p++)
            rorders[s][p] = (int)p;
        for (size_t p = plane - 1; p > 0; p--) {
            size_t q = mix(&st) % (p + 1);
            int t = rorders[s][p];
            rorders[s][p] = rorders[s][q];
            rorders[s][q] = t;
        }
        f[(size_t)s * (j->steps + 1)] = fr[(size_t)s * (j->steps + 1)] = e->st[s].score;
    }
    if ((rc = flip_curve(e, x, n, orders, f, err)) || (rc = flip_curve(e, x, n, rorders, fr, err)))
        goto done;
    for (int s = 0; s < n; s++) {
        stat_add(&row->aopc_morf, metric_aopc(f + (size_t)s * (j->steps + 1), j->steps));
        stat_add(&row->aopc_random, metric_aopc(fr + (size_t)s * (j->steps + 1), j->steps));
    }
    /* Randomisation: the same samples and targets through the re-initialised models. */
    glrp_model *rm[2] = {e->m_top, e->m_all};
    stat_acc *dst[2] = {&row->rand_top, &row->rand_all};
    for (int s = 0; s < n; s++)
        e->targets[s] = e->st[s].target;
    for (int v = 0; v < 2 && j->randomization; v++) {
        if ((rc = glrp_explain_targets(rm[v], rules, e->targets, j->init, x, n, e->Rr, NULL,
                                       NULL, err)))
            goto done;
        for (int s = 0; s < n; s++) {
            relevance_per_pixel(e->R + s * in, j->c, plane, e->rp);
            relevance_per_pixel(e->Rr + s * in, j->c, plane, e->rpr);
            for (size_t p = 0; p < plane; p++)
                e->rp[p] = fabsf(e->rp[p]), e->rpr[p] = fabsf(e->rpr[p]);
            stat_add(dst[v], metric_spearman(e->rp, e->rpr, plane));
        }
    }
done:
    free(f), free(fr), free(orders), free(rorders), free(order_mem);
    return rc;
}

static void ctx_free(eval_ctx *e)
{
    glrp_model_free(e->m), glrp_model_free(e->m_top), glrp_model_free(e->m_all);
    free(e->R), free(e->Rr), free(e->scores), free(e->xk), free(e->sk), free(e->rp),
        free(e->rpr), free(e->st), free(e->targets);
}

int eval_run(const eval_job *j, eval_row *rows, glrp_error *err)
{
    eval_ctx e;
    memset(&e, 0, sizeof e);
    e.j = j;
    if (j->c > EVAL_MAX_BANDS)
        return glrp_fail(err, GLRP_ERR_INPUT, "at most %d channels", EVAL_MAX_BANDS);
    const int B = j->batch < j->n ? j->batch : j->n;
    int rc = glrp_model_load(j->model, B, &e.m, err);
    if (!rc && j->randomization) {
        rc = glrp_model_load(j->model, B, &e.m_top, err) ||
             glrp_model_load(j->model, B, &e.m_all, err);
        if (!rc) {
            glrp_model_randomize(e.m_top, 1, j->seed + 11);
            glrp_model_randomize(e.m_all, -1, j->seed + 13);
        } else {
            rc = err->code;
        }
    }
    if (rc) {
        ctx_free(&e);
        return rc;
    }
    const int rank = glrp_model_input_rank(e.m);
    const int64_t *d = glrp_model_input_dims(e.m);
    if (rank != 3 || d[0] != j->c || d[1] != j->h || d[2] != j->w) {
        ctx_free(&e);
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: the model input is not (%d, %d, %d) like "
                         "the samples", j->model, j->c, j->h, j->w);
    }
    e.K = glrp_model_num_outputs(e.m);
    const size_t plane = (size_t)j->h * j->w, in = (size_t)j->c * plane;
    /* zbox bounds and the pixel-flipping baseline: per-channel min, max and mean of X. */
    for (int b = 0; b < j->c; b++) {
        double lo = INFINITY, hi = -INFINITY, sum = 0;
        for (int s = 0; s < j->n; s++)
            for (size_t p = 0; p < plane; p++) {
                float v = j->x[(size_t)s * in + (size_t)b * plane + p];
                lo = v < lo ? v : lo, hi = v > hi ? v : hi, sum += v;
            }
        e.low[b] = (float)lo, e.high[b] = (float)hi;
        e.baseline[b] = (float)(sum / ((double)j->n * (double)plane));
    }
    e.R = glrp_alloc((size_t)B * in, sizeof(float));
    e.Rr = glrp_alloc((size_t)B * in, sizeof(float));
    e.targets = glrp_alloc((size_t)B, sizeof(int));
    e.scores = glrp_alloc((size_t)B * e.K, sizeof(float));
    e.xk = glrp_alloc((size_t)B * in, sizeof(float));
    e.sk = glrp_alloc((size_t)B * e.K, sizeof(float));
    e.rp = glrp_alloc(plane, sizeof(float));
    e.rpr = glrp_alloc(plane, sizeof(float));
    e.st = glrp_alloc((size_t)B, sizeof *e.st);
    if (!e.R || !e.Rr || !e.targets || !e.scores || !e.xk || !e.sk || !e.rp || !e.rpr || !e.st) {
        ctx_free(&e);
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    }
    for (int k = 0; k < j->n_composites && !rc; k++) {
        eval_row *row = &rows[k];
        memset(row, 0, sizeof *row);
        snprintf(row->composite, sizeof row->composite, "%s", j->composites[k]);
        glrp_rules rules = j->rules;
        snprintf(rules.composite, sizeof rules.composite, "%s", j->composites[k]);
        if (!rules.low) {
            rules.low = e.low, rules.high = e.high, rules.n_bounds = j->c;
        }
        for (int at = 0; at < j->n && !rc; at += B) {
            int n = j->n - at < B ? j->n - at : B;
            rc = run_batch(&e, &rules, at, n, row, err);
        }
    }
    ctx_free(&e);
    return rc;
}

static json_t *stat_json(const stat_acc *s)
{
    double m = stat_mean(s), sd = stat_std(s);
    return json_pack("{s:o, s:o, s:I, s:I}", "mean", isfinite(m) ? json_real(m) : json_null(),
                     "std", isfinite(sd) ? json_real(sd) : json_null(), "samples",
                     (json_int_t)s->n, "undefined", (json_int_t)s->undefined);
}

json_t *eval_row_json(const eval_row *r, int bands)
{
    json_t *o = json_object();
    json_object_set_new(o, "composite", json_string(r->composite));
    json_object_set_new(o, "relevance_mass_accuracy", stat_json(&r->mass));
    json_object_set_new(o, "mass_accuracy_class_0", stat_json(&r->mass_by_label[0]));
    json_object_set_new(o, "mass_accuracy_class_1", stat_json(&r->mass_by_label[1]));
    json_object_set_new(o, "relevance_rank_accuracy", stat_json(&r->rank));
    json_object_set_new(o, "border_ratio", stat_json(&r->border));
    json_object_set_new(o, "zero_input_share", stat_json(&r->zero));
    json_object_set_new(o, "aopc_morf", stat_json(&r->aopc_morf));
    json_object_set_new(o, "aopc_random", stat_json(&r->aopc_random));
    json_object_set_new(o, "randomization_top_spearman", stat_json(&r->rand_top));
    json_object_set_new(o, "randomization_all_spearman", stat_json(&r->rand_all));
    json_object_set_new(o, "conservation", stat_json(&r->conservation));
    json_object_set_new(o, "accuracy", stat_json(&r->accuracy));
    json_t *b = json_array();
    for (int k = 0; k < bands && k < EVAL_MAX_BANDS; k++)
        json_array_append_new(b, stat_json(&r->band_share[k]));
    json_object_set_new(o, "band_share", b);
    return o;
}

static void cell(FILE *f, const stat_acc *s)
{
    double m = stat_mean(s);
    if (isfinite(m))
        fprintf(f, " %.3f ± %.3f |", m, stat_std(s));
    else
        fprintf(f, " n/a |");
}

void eval_markdown_header(FILE *f, int with_prefix)
{
    if (with_prefix)
        fprintf(f, "| variant | model ");
    fprintf(f, "| composite | mass acc. | mass acc. class 0 | rank acc. | border ratio | "
               "zero-input share | AOPC MoRF | AOPC random | rand. top (ρ) | rand. all (ρ) | "
               "conservation |\n");
    if (with_prefix)
        fprintf(f, "|---|---");
    fprintf(f, "|---|---|---|---|---|---|---|---|---|---|---|\n");
}

void eval_markdown_row(FILE *f, const char *prefix, const eval_row *r)
{
    fprintf(f, "%s| %s |", prefix ? prefix : "", r->composite);
    cell(f, &r->mass);
    cell(f, &r->mass_by_label[0]);
    cell(f, &r->rank);
    cell(f, &r->border);
    cell(f, &r->zero);
    cell(f, &r->aopc_morf);
    cell(f, &r->aopc_random);
    cell(f, &r->rand_top);
    cell(f, &r->rand_all);
    cell(f, &r->conservation);
    fprintf(f, "\n");
}
