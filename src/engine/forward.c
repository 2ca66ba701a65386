/*
 * The forward pass: layers in topological order over the activation buffers. Each fixed
 * chunk of samples goes through every layer on one thread (see ENGINE_CHUNK).
 */
#include <string.h>

#include "engine/engine.h"
#include "util/parallel.h"

/* Layer L on samples [s0, s0 + n). */
static void forward_layer(struct glrp_model *m, const glrp_layer *L, int s0, int n, float *col)
{
    const size_t in_numel = m->tensors[L->in[0]].numel;
    const float *x = m->act[L->in[0]] + (size_t)s0 * in_numel;
    float *y = m->act[L->out] + (size_t)s0 * m->tensors[L->out].numel;
    switch (L->kind) {
    case OP_DENSE:
    case OP_CONV:
        linear_forward(L, L->lin.W, x, y, n, col);
        linear_add_bias(L, L->lin.b, y, n);
        break;
    case OP_AFFINE:
        affine_forward(L, x, y, in_numel, n);
        break;
    case OP_RELU:
    case OP_LEAKYRELU:
    case OP_SIGMOID:
    case OP_TANH:
        activation_forward(L, x, y, (size_t)n * in_numel);
        break;
    case OP_MAXPOOL:
        maxpool_forward(&L->pool, x, y, n);
        break;
    case OP_AVGPOOL:
    case OP_GLOBALAVGPOOL:
        avgpool_forward(&L->pool, x, y, n);
        break;
    case OP_ADD:
        add_forward(x, m->act[L->in[1]] + (size_t)s0 * in_numel, y, (size_t)n * in_numel);
        break;
    case OP_CONCAT:
        concat_forward(m, L, s0, n);
        break;
    case OP_RESHAPE:
        memcpy(y, x, (size_t)n * in_numel * sizeof *y);
        break;
    case OP_PAD:
        pad_forward(m, L, x, y, n);
        break;
    }
}

typedef struct {
    struct glrp_model *m;
    int n, upto;
} forward_job;

static void forward_chunk(void *arg, int task, int thread)
{
    const forward_job *j = arg;
    const int s0 = task * ENGINE_CHUNK;
    const int n = j->n - s0 < ENGINE_CHUNK ? j->n - s0 : ENGINE_CHUNK;
    float *col = j->m->col + (size_t)thread * j->m->col_floats;
    for (int k = 0; k < j->upto; k++)
        forward_layer(j->m, &j->m->layers[k], s0, n, col);
}

int engine_chunks(int n)
{
    return (n + ENGINE_CHUNK - 1) / ENGINE_CHUNK;
}

void engine_forward(struct glrp_model *m, int n, int upto)
{
    forward_job j = {m, n, upto};
    parallel_for(engine_chunks(n), forward_chunk, &j);
}
