/* The forward pass: layers in topological order over the activation buffers. */
#include <string.h>

#include "engine/engine.h"

static void forward_layer(struct glrp_model *m, const glrp_layer *L, int n, float *col)
{
    const float *x = m->act[L->in[0]];
    float *y = m->act[L->out];
    const size_t in_numel = m->tensors[L->in[0]].numel;
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
        add_forward(x, m->act[L->in[1]], y, (size_t)n * in_numel);
        break;
    case OP_CONCAT:
        concat_forward(m, L, n);
        break;
    case OP_RESHAPE:
        memcpy(y, x, (size_t)n * in_numel * sizeof *y);
        break;
    case OP_PAD:
        pad_forward(m, L, x, y, n);
        break;
    }
}

void engine_forward(struct glrp_model *m, int n, int upto)
{
    for (int k = 0; k < upto; k++)
        forward_layer(m, &m->layers[k], n, m->col);
}
