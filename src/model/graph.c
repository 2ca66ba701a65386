/* Lifetime of a planned model: finishing touches after import, buffers, freeing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/graph.h"
#include "util/error.h"

void glrp_graph_free(struct glrp_model *m)
{
    if (!m)
        return;
    for (int k = 0; k < m->n_layers; k++) {
        glrp_layer *L = &m->layers[k];
        free(L->name);
        free(L->op_type);
        free(L->in);
        free(L->lin.W);
        free(L->lin.b);
        free(L->lin.Wpos);
        free(L->lin.Wneg);
        free(L->scale);
        free(L->shift);
    }
    for (int k = 0; k < m->n_tensors; k++) {
        free(m->tensors[k].name);
        if (m->act)
            free(m->act[k]);
        if (m->rel)
            free(m->rel[k]);
    }
    for (int k = 0; k < m->n_meta; k++) {
        free(m->meta[k].key);
        free(m->meta[k].value);
    }
    free(m->meta);
    free(m->col);
    free(m->act);
    free(m->rel);
    free(m->tensors);
    free(m->layers);
    free(m->producer);
    free(m->path);
    free(m);
}

int glrp_graph_finish(struct glrp_model *m, glrp_error *err)
{
    /* W+ and W- are what most rules multiply by; they depend only on the model. */
    for (int k = 0; k < m->n_layers; k++) {
        glrp_linear *lin = &m->layers[k].lin;
        if (m->layers[k].kind != OP_DENSE && m->layers[k].kind != OP_CONV)
            continue;
        lin->Wpos = glrp_alloc(lin->wsize, sizeof *lin->Wpos);
        lin->Wneg = glrp_alloc(lin->wsize, sizeof *lin->Wneg);
        if (!lin->Wpos || !lin->Wneg)
            return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
        for (size_t e = 0; e < lin->wsize; e++) {
            lin->Wpos[e] = lin->W[e] > 0 ? lin->W[e] : 0;
            lin->Wneg[e] = lin->W[e] < 0 ? lin->W[e] : 0;
        }
    }
    /* A linear layer is "first" when no linear layer lies between it and the input. */
    int *behind_linear = glrp_alloc((size_t)m->n_tensors, sizeof *behind_linear);
    if (!behind_linear)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    for (int k = 0; k < m->n_layers; k++) {
        glrp_layer *L = &m->layers[k];
        int upstream = 0;
        for (int j = 0; j < L->n_in; j++)
            upstream |= behind_linear[L->in[j]];
        int linear = L->kind == OP_DENSE || L->kind == OP_CONV;
        L->is_first_linear = linear && !upstream;
        behind_linear[L->out] = upstream || linear;
    }
    free(behind_linear);
    return 0;
}

int glrp_graph_alloc_buffers(struct glrp_model *m, glrp_error *err)
{
    m->act = glrp_alloc((size_t)m->n_tensors, sizeof *m->act);
    m->rel = glrp_alloc((size_t)m->n_tensors, sizeof *m->rel);
    if (!m->act || !m->rel)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    /* Convolution scratch of one thread, at least an im2col of the largest convolution:
     * counted here so that absurd kernels are refused before anything runs; the engine
     * sizes and allocates the exact scratch on first use (ensure_scratch, explain.c). */
    double col_floats = 0;
    for (int k = 0; k < m->n_layers; k++) {
        const glrp_layer *L = &m->layers[k];
        if (L->kind != OP_CONV)
            continue;
        double c = (double)L->lin.cin * L->lin.kh * L->lin.kw * L->lin.oh * L->lin.ow;
        if (c > col_floats)
            col_floats = c;
    }
    /* Refuse plans that cannot fit before touching memory: a hostile file may declare
     * shapes whose buffers calloc would promise lazily and the first pass would fault in. */
    double bytes = sizeof(float) * col_floats, largest = 0;
    int big = 0;
    for (int k = 0; k < m->n_tensors; k++) {
        double t = 2.0 * sizeof(float) * (double)m->tensors[k].numel * m->max_batch;
        bytes += t;
        if (t > largest)
            largest = t, big = k;
    }
    if (bytes > GLRP_MAX_PLAN_BYTES) {
        const int producer = m->n_tensors ? m->tensors[big].producer : -1;
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: the model needs %.1f GiB of activations for "
                         "batch %d (limit %.0f GiB; largest: the output of %s '%s', %.1f GiB; "
                         "convolution scratch %.1f GiB); use a smaller --batch or check the "
                         "model's shapes", m->path, bytes / (1 << 30), m->max_batch,
                         GLRP_MAX_PLAN_BYTES / (1 << 30), producer >= 0 ? "node" : "input",
                         producer >= 0 ? m->layers[producer].name : m->tensors[big].name,
                         largest / (1 << 30),
                         sizeof(float) * col_floats / (1 << 30));
    }
    for (int k = 0; k < m->n_tensors; k++) {
        size_t n;
        if (!glrp_mul_ok(m->tensors[k].numel, (size_t)m->max_batch, &n))
            return glrp_fail(err, GLRP_ERR_INPUT, "%s: tensor '%s' too large for batch %d",
                             m->path, m->tensors[k].name, m->max_batch);
        m->act[k] = glrp_alloc(n, sizeof(float));
        m->rel[k] = glrp_alloc(n, sizeof(float));
        if (!m->act[k] || !m->rel[k])
            return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: out of memory for tensor '%s' "
                             "(%zu floats per buffer, batch %d); try a smaller --batch",
                             m->path, m->tensors[k].name, n, m->max_batch);
    }
    return 0;
}

int glrp_model_randomize(glrp_model *m, int count, uint64_t seed)
{
    uint64_t state = seed ? seed : 1;
    int done = 0;
    for (int k = m->n_layers - 1; k >= 0 && (count < 0 || done < count); k--) {
        glrp_layer *L = &m->layers[k];
        if (L->kind != OP_DENSE && L->kind != OP_CONV)
            continue;
        glrp_linear *lin = &L->lin;
        double sum = 0, sum2 = 0;
        for (size_t e = 0; e < lin->wsize; e++)
            sum += lin->W[e], sum2 += (double)lin->W[e] * lin->W[e];
        double mean = sum / (double)lin->wsize, var = sum2 / (double)lin->wsize - mean * mean;
        double a = sqrt(3.0 * (var > 0 ? var : 0)); /* U(-a, a) has variance a^2 / 3 */
        for (size_t e = 0; e < lin->wsize; e++) {
            /* xorshift64*: reproducible, independent of the C library */
            state ^= state >> 12, state ^= state << 25, state ^= state >> 27;
            double u = (double)((state * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
            lin->W[e] = (float)((2 * u - 1) * a);
            lin->Wpos[e] = lin->W[e] > 0 ? lin->W[e] : 0;
            lin->Wneg[e] = lin->W[e] < 0 ? lin->W[e] : 0;
        }
        for (int o = 0; o < lin->cout; o++)
            lin->b[o] = 0;
        done++;
    }
    return 0;
}
