/*
 * The public entry points: forward and explain. explain runs the forward pass, seeds the
 * relevance at the explained output, and walks the layers backwards, each layer turning
 * the relevance at its output into relevance at its inputs.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "util/error.h"
#include "util/parallel.h"

int glrp_model_input_rank(const glrp_model *m) { return m->tensors[m->input].rank; }
const int64_t *glrp_model_input_dims(const glrp_model *m) { return m->tensors[m->input].dims; }
size_t glrp_model_input_size(const glrp_model *m) { return m->tensors[m->input].numel; }
int glrp_model_num_outputs(const glrp_model *m) { return (int)m->tensors[m->output].numel; }
int glrp_model_max_batch(const glrp_model *m) { return m->max_batch; }
void glrp_model_free(glrp_model *m) { glrp_graph_free(m); }

const char *glrp_model_metadata(const glrp_model *m, const char *key)
{
    for (int k = 0; k < m->n_meta; k++)
        if (!strcmp(m->meta[k].key, key))
            return m->meta[k].value;
    return NULL;
}

static const char *const INIT_NAMES[] = {"logit", "one", "prob"};

int glrp_init_parse(const char *name, glrp_init *out)
{
    for (int k = 0; k < 3; k++)
        if (!strcmp(name, INIT_NAMES[k])) {
            *out = (glrp_init)k;
            return 0;
        }
    return GLRP_ERR_INPUT;
}

const char *glrp_init_name(glrp_init init)
{
    return INIT_NAMES[init];
}

void glrp_set_threads(int n)
{
    /* geolrp parallelises over samples itself; BLAS stays single-threaded so that results
     * do not depend on the thread count. */
    openblas_set_num_threads(1);
    parallel_set_threads(n);
}

/* Convolution scratch: m->col_floats floats for every thread. */
static int ensure_scratch(glrp_model *m, glrp_error *err)
{
    size_t per_thread = m->col_floats, need;
    if (!per_thread) /* once per model: the largest layer's need */
        for (int k = 0; k < m->n_layers; k++) {
            size_t c = rule_col_floats(&m->layers[k]);
            per_thread = c > per_thread ? c : per_thread;
        }
    if (!glrp_mul_ok(per_thread, (size_t)parallel_threads(), &need) ||
        (double)need * sizeof(float) > GLRP_MAX_PLAN_BYTES)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: convolution scratch for %d threads exceeds "
                         "%.0f GiB", m->path, parallel_threads(),
                         GLRP_MAX_PLAN_BYTES / (1 << 30));
    m->col_floats = per_thread;
    if (need <= m->col_capacity && m->col)
        return 0;
    float *col = realloc(m->col, (need ? need : 1) * sizeof *col);
    if (!col)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory for convolution scratch");
    m->col = col;
    m->col_capacity = need;
    return 0;
}

static int check_batch(const glrp_model *m, int n, glrp_error *err)
{
    if (n < 1 || n > m->max_batch)
        return glrp_fail(err, GLRP_ERR_INPUT, "batch of %d samples; the model was planned for "
                         "1 to %d", n, m->max_batch);
    return 0;
}

int glrp_forward(glrp_model *m, const float *x, int n, float *scores, glrp_error *err)
{
    if (check_batch(m, n, err) || ensure_scratch(m, err))
        return err->code;
    memcpy(m->act[m->input], x, (size_t)n * m->tensors[m->input].numel * sizeof *x);
    engine_forward(m, n, m->n_layers);
    memcpy(scores, m->act[m->output], (size_t)n * m->tensors[m->output].numel * sizeof *scores);
    return 0;
}

/* ---------------------------------------------------------- zbox bounds --- */

/* Bounds at the input of each zbox layer: the user's bounds live on the model input, and
 * the ops before a first layer (normalisation, padding, ...) are monotone element-wise, so
 * pushing low and high through them and taking the element-wise min and max gives the
 * bounds the layer sees. */
typedef struct {
    float **low, **high; /* per layer index, NULL where not zbox */
} layer_bounds;

static void bounds_free(layer_bounds *b, int n_layers)
{
    if (b->low)
        for (int k = 0; k < n_layers; k++) {
            free(b->low[k]);
            free(b->high[k]);
        }
    free(b->low);
    free(b->high);
}

static int bounds_at_layers(glrp_model *m, const glrp_rules *r, const glrp_rule *rules,
                            layer_bounds *b, glrp_error *err)
{
    const glrp_tensor *in = &m->tensors[m->input];
    int last = -1;
    for (int k = 0; k < m->n_layers; k++)
        if (rules[k].kind == GLRP_RULE_ZBOX)
            last = k;
    if (last < 0)
        return 0;
    b->low = glrp_alloc((size_t)m->n_layers, sizeof *b->low);
    b->high = glrp_alloc((size_t)m->n_layers, sizeof *b->high);
    if (!b->low || !b->high)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    const size_t per_channel = in->rank == 3 ? (size_t)(in->dims[1] * in->dims[2]) : 1;
    for (int pass = 0; pass < 2; pass++) {
        const float *v = pass ? r->high : r->low;
        float *x = m->act[m->input];
        for (size_t e = 0; e < in->numel; e++)
            x[e] = r->n_bounds == 1 ? v[0] : v[e / per_channel];
        engine_forward(m, 1, last);
        for (int k = 0; k <= last; k++) {
            if (rules[k].kind != GLRP_RULE_ZBOX)
                continue;
            const glrp_tensor *t = &m->tensors[m->layers[k].in[0]];
            float **dst = pass ? &b->high[k] : &b->low[k];
            *dst = glrp_dup(m->act[m->layers[k].in[0]], t->numel * sizeof(float));
            if (!*dst)
                return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
        }
    }
    for (int k = 0; k <= last; k++) {
        if (!b->low[k])
            continue;
        size_t numel = m->tensors[m->layers[k].in[0]].numel;
        for (size_t e = 0; e < numel; e++) {
            float lo = b->low[k][e], hi = b->high[k][e];
            b->low[k][e] = lo < hi ? lo : hi;
            b->high[k][e] = lo < hi ? hi : lo;
        }
    }
    return 0;
}

/* ------------------------------------------------------ relevance pass --- */

/* Relevance for input k of layer L on samples [s0, s0 + n), written to Rin. */
static int layer_relevance(glrp_model *m, const glrp_layer *L, int k, const glrp_rule *rule,
                           const layer_bounds *b, int s0, int n, float *Rin, float *col)
{
    const size_t in_numel = m->tensors[L->in[k]].numel, out_numel = m->tensors[L->out].numel;
    const float *x = m->act[L->in[k]] + (size_t)s0 * in_numel;
    const float *y = m->act[L->out] + (size_t)s0 * out_numel;
    const float *R = m->rel[L->out] + (size_t)s0 * out_numel;
    const size_t count = (size_t)n * in_numel;
    switch (L->kind) {
    case OP_DENSE:
    case OP_CONV: {
        int idx = (int)(L - m->layers);
        rule_ctx c = {m, L, *rule, n, x, y, R, Rin, b->low ? b->low[idx] : NULL,
                      b->high ? b->high[idx] : NULL, col};
        return rule_apply(&c);
    }
    case OP_AFFINE:
    case OP_RELU:
    case OP_LEAKYRELU:
    case OP_SIGMOID:
    case OP_TANH:
    case OP_RESHAPE:
        memcpy(Rin, R, count * sizeof *Rin);
        return 0;
    case OP_MAXPOOL:
        if (rule->kind == GLRP_RULE_DEFAULT) { /* winner takes all */
            maxpool_relevance_wta(&L->pool, x, R, Rin, n);
            return 0;
        } else {
            /* Proportional: the norm rule of an average pool over the same windows. */
            glrp_pool p = L->pool;
            p.count_include_pad = 1;
            float *avg = glrp_alloc((size_t)n * out_numel, sizeof *avg);
            if (!avg)
                return GLRP_ERR_RUNTIME;
            avgpool_forward(&p, x, avg, n);
            avgpool_relevance(&p, x, avg, R, Rin, n);
            free(avg);
            return 0;
        }
    case OP_AVGPOOL:
    case OP_GLOBALAVGPOOL:
        avgpool_relevance(&L->pool, x, y, R, Rin, n);
        return 0;
    case OP_ADD:
        add_relevance(x, y, R, Rin, count);
        return 0;
    case OP_CONCAT:
        concat_relevance(m, L, k, R, Rin, n);
        return 0;
    case OP_PAD:
        pad_relevance(m, L, R, Rin, n);
        return 0;
    }
    return 0;
}

typedef struct {
    glrp_model *m;
    const glrp_rule *rules;
    const layer_bounds *b;
    int n;
    size_t biggest; /* floats per sample of the largest tensor: the summing buffer */
    int *rc, *failed_layer; /* per chunk */
} relevance_job;

/* One chunk of samples through every layer, last to first. */
static void relevance_chunk(void *arg, int task, int thread)
{
    const relevance_job *j = arg;
    glrp_model *m = j->m;
    const int s0 = task * ENGINE_CHUNK;
    const int n = j->n - s0 < ENGINE_CHUNK ? j->n - s0 : ENGINE_CHUNK;
    float *col = m->col + (size_t)thread * m->col_floats;
    float *tmp = glrp_alloc((size_t)n * j->biggest, sizeof *tmp);
    j->failed_layer[task] = -1;
    if (!tmp) {
        j->rc[task] = GLRP_ERR_RUNTIME;
        return;
    }
    for (int k = m->n_layers - 1; k >= 0; k--) {
        const glrp_layer *L = &m->layers[k];
        for (int q = 0; q < L->n_in; q++) {
            int t = L->in[q];
            size_t count = (size_t)n * m->tensors[t].numel;
            float *rel = m->rel[t] + (size_t)s0 * m->tensors[t].numel;
            /* A tensor read by one layer receives its relevance directly; one read by
             * several sums their contributions. */
            int writers = m->tensors[t].consumers + (t == m->output);
            float *dst = writers == 1 ? rel : tmp;
            int rc = layer_relevance(m, L, q, &j->rules[k], j->b, s0, n, dst, col);
            if (rc) {
                j->rc[task] = rc;
                j->failed_layer[task] = k;
                free(tmp);
                return;
            }
            if (dst == tmp)
                for (size_t e = 0; e < count; e++)
                    rel[e] += tmp[e];
        }
    }
    free(tmp);
}

static int relevance_pass(glrp_model *m, const glrp_rule *rules, const layer_bounds *b, int n,
                          glrp_error *err)
{
    const int chunks = engine_chunks(n);
    int *rc = glrp_alloc((size_t)chunks, sizeof *rc),
        *failed = glrp_alloc((size_t)chunks, sizeof *failed);
    if (!rc || !failed) {
        free(rc), free(failed);
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    }
    size_t biggest = 0;
    for (int k = 0; k < m->n_tensors; k++)
        biggest = m->tensors[k].numel > biggest ? m->tensors[k].numel : biggest;
    relevance_job j = {m, rules, b, n, biggest, rc, failed};
    parallel_for(chunks, relevance_chunk, &j);
    int status = 0;
    for (int c = 0; c < chunks && !status; c++) {
        if (!rc[c])
            continue;
        if (failed[c] < 0)
            status = glrp_fail(err, rc[c], "relevance pass: out of memory");
        else
            status = glrp_fail(err, rc[c], "layer '%s' (%s): relevance failed (out of memory)",
                               m->layers[failed[c]].name, m->layers[failed[c]].op_type);
    }
    free(rc), free(failed);
    return status;
}

static int seed_relevance(glrp_model *m, int target, const int *targets, glrp_init init, int n,
                          glrp_sample_stats *stats, glrp_error *err)
{
    const int K = (int)m->tensors[m->output].numel;
    const float *z = m->act[m->output];
    float *R = m->rel[m->output];
    for (int s = 0; s < n; s++) {
        const float *zs = z + (size_t)s * K;
        int t = targets ? targets[s] : target;
        if (t == GLRP_TARGET_PREDICTED) {
            t = 0;
            for (int k = 1; k < K; k++)
                if (zs[k] > zs[t])
                    t = k;
        }
        if (t < 0 || t >= K)
            return glrp_fail(err, GLRP_ERR_INPUT, "--target %d: the model has %d outputs "
                             "(0 to %d)", t, K, K - 1);
        float r;
        if (K == 1) {
            r = zs[0]; /* single output: its value, sign kept */
        } else if (init == GLRP_INIT_ONE) {
            r = 1.0f;
        } else if (init == GLRP_INIT_LOGIT) {
            r = zs[t];
        } else {
            double sum = 0, mx = zs[0];
            for (int k = 1; k < K; k++)
                mx = zs[k] > mx ? zs[k] : mx;
            for (int k = 0; k < K; k++)
                sum += exp(zs[k] - mx);
            r = (float)(exp(zs[t] - mx) / sum);
        }
        R[(size_t)s * K + (size_t)t] = r;
        if (stats) {
            stats[s].target = t;
            stats[s].score = zs[t];
            stats[s].relevance_start = r;
        }
    }
    return 0;
}

static int explain(glrp_model *m, const glrp_rules *rules, int target, const int *targets,
                   glrp_init init, const float *x, int n, float *relevance, float *scores,
                   glrp_sample_stats *stats, glrp_error *err)
{
    if (check_batch(m, n, err) || ensure_scratch(m, err) || glrp_rules_check(m, rules, err))
        return err->code;
    glrp_rule *per_layer = glrp_alloc((size_t)m->n_layers, sizeof *per_layer);
    layer_bounds b = {0};
    if (!per_layer)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    for (int k = 0; k < m->n_layers; k++) {
        const glrp_layer *L = &m->layers[k];
        if (L->kind == OP_DENSE || L->kind == OP_CONV)
            per_layer[k] = composite_rule_for(m, rules, L);
        else if (L->kind == OP_MAXPOOL && rules->maxpool == GLRP_MAXPOOL_PROPORTIONAL)
            per_layer[k].kind = GLRP_RULE_PASS; /* marks the proportional mode */
    }
    int rc = bounds_at_layers(m, rules, per_layer, &b, err);
    if (!rc) {
        const glrp_tensor *in = &m->tensors[m->input];
        memcpy(m->act[m->input], x, (size_t)n * in->numel * sizeof *x);
        engine_forward(m, n, m->n_layers);
        for (int k = 0; k < m->n_tensors; k++)
            memset(m->rel[k], 0, (size_t)n * m->tensors[k].numel * sizeof(float));
        rc = seed_relevance(m, target, targets, init, n, stats, err);
    }
    if (!rc)
        rc = relevance_pass(m, per_layer, &b, n, err);
    if (!rc) {
        const size_t in = m->tensors[m->input].numel;
        memcpy(relevance, m->rel[m->input], (size_t)n * in * sizeof *relevance);
        if (scores)
            memcpy(scores, m->act[m->output],
                   (size_t)n * m->tensors[m->output].numel * sizeof *scores);
        for (int s = 0; stats && s < n; s++) {
            double sum = 0;
            for (size_t e = 0; e < in; e++)
                sum += relevance[(size_t)s * in + e];
            stats[s].relevance_input = sum;
        }
    }
    bounds_free(&b, m->n_layers);
    free(per_layer);
    return rc;
}

int glrp_explain(glrp_model *m, const glrp_rules *rules, int target, glrp_init init,
                 const float *x, int n, float *relevance, float *scores,
                 glrp_sample_stats *stats, glrp_error *err)
{
    return explain(m, rules, target, NULL, init, x, n, relevance, scores, stats, err);
}

int glrp_explain_targets(glrp_model *m, const glrp_rules *rules, const int *targets,
                         glrp_init init, const float *x, int n, float *relevance,
                         float *scores, glrp_sample_stats *stats, glrp_error *err)
{
    return explain(m, rules, GLRP_TARGET_PREDICTED, targets, init, x, n, relevance, scores,
                   stats, err);
}
