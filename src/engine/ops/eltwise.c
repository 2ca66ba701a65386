/*
 * Element-wise and data-movement layers. Their relevance is simple: activations and
 * affine maps pass it through unchanged (the "pass" rule), reshapes move it back, Add
 * splits it in proportion to its inputs (the norm rule), Concat and Pad cut it back.
 */
#include <math.h>
#include <string.h>

#include "engine/engine.h"

void activation_forward(const glrp_layer *L, const float *x, float *y, size_t count)
{
    switch (L->kind) {
    case OP_RELU:
        for (size_t e = 0; e < count; e++)
            y[e] = x[e] > 0.0f ? x[e] : 0.0f;
        break;
    case OP_LEAKYRELU:
        for (size_t e = 0; e < count; e++)
            y[e] = x[e] >= 0.0f ? x[e] : L->alpha * x[e];
        break;
    case OP_SIGMOID:
        for (size_t e = 0; e < count; e++)
            y[e] = 1.0f / (1.0f + expf(-x[e]));
        break;
    case OP_TANH:
        for (size_t e = 0; e < count; e++)
            y[e] = tanhf(x[e]);
        break;
    default:
        break;
    }
}

void affine_forward(const glrp_layer *L, const float *x, float *y, size_t numel, int n)
{
    const size_t *d = L->aff_dims, *st = L->aff_stride;
    for (int s = 0; s < n; s++) {
        const float *xs = x + (size_t)s * numel;
        float *ys = y + (size_t)s * numel;
        size_t e = 0;
        for (size_t i = 0; i < d[0]; i++)
            for (size_t j = 0; j < d[1]; j++) {
                const float *a = L->scale + i * st[0] + j * st[1];
                const float *b = L->shift + i * st[0] + j * st[1];
                for (size_t k = 0; k < d[2]; k++, e++)
                    ys[e] = xs[e] * a[k * st[2]] + b[k * st[2]];
            }
    }
}

void add_forward(const float *a, const float *b, float *y, size_t count)
{
    for (size_t e = 0; e < count; e++)
        y[e] = a[e] + b[e];
}

/* Norm rule for a sum of activations: input k gets x_k * R / stab(x_1 + x_2). */
void add_relevance(const float *xk, const float *y, const float *R, float *Rin, size_t count)
{
    for (size_t e = 0; e < count; e++)
        Rin[e] = xk[e] * glrp_stab_div(R[e], y[e], GLRP_NORM_EPS);
}

/* Concat along per-sample axis: data is [outer][axis][inner] per sample. */
static void concat_geometry(const struct glrp_model *m, const glrp_layer *L, size_t *outer,
                            size_t *inner)
{
    const glrp_tensor *t = &m->tensors[L->out];
    *outer = 1;
    *inner = 1;
    for (int k = 0; k < L->axis; k++)
        *outer *= (size_t)t->dims[k];
    for (int k = L->axis + 1; k < t->rank; k++)
        *inner *= (size_t)t->dims[k];
}

void concat_forward(const struct glrp_model *m, const glrp_layer *L, int s0, int n)
{
    size_t outer, inner, at = 0;
    concat_geometry(m, L, &outer, &inner);
    const size_t out_row = (size_t)m->tensors[L->out].dims[L->axis] * inner;
    float *y = m->act[L->out] + (size_t)s0 * m->tensors[L->out].numel;
    for (int k = 0; k < L->n_in; k++) {
        const size_t row = (size_t)m->tensors[L->in[k]].dims[L->axis] * inner;
        const float *x = m->act[L->in[k]] + (size_t)s0 * m->tensors[L->in[k]].numel;
        for (size_t o = 0; o < (size_t)n * outer; o++)
            memcpy(y + o * out_row + at, x + o * row, row * sizeof *y);
        at += row;
    }
}

void concat_relevance(const struct glrp_model *m, const glrp_layer *L, int k, const float *R,
                      float *Rin, int n)
{
    size_t outer, inner, at = 0;
    concat_geometry(m, L, &outer, &inner);
    const size_t out_row = (size_t)m->tensors[L->out].dims[L->axis] * inner;
    for (int j = 0; j < k; j++)
        at += (size_t)m->tensors[L->in[j]].dims[L->axis] * inner;
    const size_t row = (size_t)m->tensors[L->in[k]].dims[L->axis] * inner;
    for (size_t o = 0; o < (size_t)n * outer; o++)
        memcpy(Rin + o * row, R + o * out_row + at, row * sizeof *Rin);
}

/* Offset of input element e (per sample) inside the padded output. */
static size_t pad_target(const glrp_tensor *in, const glrp_tensor *out, const glrp_layer *L,
                         size_t e)
{
    size_t off = 0, stride = 1;
    for (int k = in->rank - 1; k >= 0; k--) {
        size_t coord = e % (size_t)in->dims[k];
        e /= (size_t)in->dims[k];
        off += (coord + (size_t)L->pad_begin[k]) * stride;
        stride *= (size_t)out->dims[k];
    }
    return off;
}

void pad_forward(const struct glrp_model *m, const glrp_layer *L, const float *x, float *y,
                 int n)
{
    const glrp_tensor *in = &m->tensors[L->in[0]], *out = &m->tensors[L->out];
    for (size_t e = 0; e < (size_t)n * out->numel; e++)
        y[e] = L->pad_value;
    for (int s = 0; s < n; s++)
        for (size_t e = 0; e < in->numel; e++)
            y[s * out->numel + pad_target(in, out, L, e)] = x[s * in->numel + e];
}

/* Relevance that landed on padding has no input to go to: it is dropped (a leak that the
 * conservation numbers show). */
void pad_relevance(const struct glrp_model *m, const glrp_layer *L, const float *R, float *Rin,
                   int n)
{
    const glrp_tensor *in = &m->tensors[L->in[0]], *out = &m->tensors[L->out];
    for (int s = 0; s < n; s++)
        for (size_t e = 0; e < in->numel; e++)
            Rin[s * in->numel + e] = R[s * out->numel + pad_target(in, out, L, e)];
}
