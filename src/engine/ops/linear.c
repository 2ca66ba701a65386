/*
 * Dense and convolution layers as GEMMs through OpenBLAS. Rules call these with modified
 * weights (W+, W-, W^2, ones) and modified inputs (x+, x-, bounds), so one forward and one
 * transposed pass serve every rule.
 *
 * Convolution: im2col of one sample gives col [Cin*kh*kw, OH*OW] (rows grouped by
 * convolution group), then per group Z_g = W_g col_g. The transposed pass computes
 * col_g = W_g^T S_g and scatters col back with col2im, which is exactly the gradient of
 * the convolution with respect to its input (zero padding drops out).
 *
 * Samples (and chunks of dense rows) run in parallel; col is scratch of
 * linear_col_floats(L) floats per thread.
 */
#include <cblas.h>
#include <string.h>

#include "engine/engine.h"
#include "util/parallel.h"

/* Dense layers are split into fixed chunks of rows, so a sample's arithmetic does not
 * depend on the thread count. */
#define DENSE_CHUNK 8

size_t linear_in_numel(const glrp_layer *L)
{
    const glrp_linear *l = &L->lin;
    return L->kind == OP_DENSE ? (size_t)l->cin : (size_t)l->cin * l->ih * l->iw;
}

size_t linear_out_numel(const glrp_layer *L)
{
    const glrp_linear *l = &L->lin;
    return L->kind == OP_DENSE ? (size_t)l->cout : (size_t)l->cout * l->oh * l->ow;
}

size_t linear_col_floats(const glrp_layer *L)
{
    const glrp_linear *l = &L->lin;
    return L->kind == OP_DENSE ? 0 : (size_t)l->cin * l->kh * l->kw * l->oh * l->ow;
}

static void im2col(const glrp_linear *l, const float *x, float *col)
{
    const int ohw = l->oh * l->ow;
    for (int c = 0; c < l->cin; c++)
        for (int ki = 0; ki < l->kh; ki++)
            for (int kj = 0; kj < l->kw; kj++) {
                float *row = col + ((size_t)(c * l->kh + ki) * l->kw + kj) * ohw;
                const float *plane = x + (size_t)c * l->ih * l->iw;
                for (int oy = 0; oy < l->oh; oy++) {
                    int iy = oy * l->stride[0] - l->pad[0] + ki * l->dil[0];
                    float *dst = row + (size_t)oy * l->ow;
                    if (iy < 0 || iy >= l->ih) {
                        memset(dst, 0, (size_t)l->ow * sizeof *dst);
                        continue;
                    }
                    const float *src = plane + (size_t)iy * l->iw;
                    for (int ox = 0; ox < l->ow; ox++) {
                        int ix = ox * l->stride[1] - l->pad[1] + kj * l->dil[1];
                        dst[ox] = ix >= 0 && ix < l->iw ? src[ix] : 0.0f;
                    }
                }
            }
}

static void col2im(const glrp_linear *l, const float *col, float *x)
{
    const int ohw = l->oh * l->ow;
    memset(x, 0, (size_t)l->cin * l->ih * l->iw * sizeof *x);
    for (int c = 0; c < l->cin; c++)
        for (int ki = 0; ki < l->kh; ki++)
            for (int kj = 0; kj < l->kw; kj++) {
                const float *row = col + ((size_t)(c * l->kh + ki) * l->kw + kj) * ohw;
                float *plane = x + (size_t)c * l->ih * l->iw;
                for (int oy = 0; oy < l->oh; oy++) {
                    int iy = oy * l->stride[0] - l->pad[0] + ki * l->dil[0];
                    if (iy < 0 || iy >= l->ih)
                        continue;
                    const float *src = row + (size_t)oy * l->ow;
                    float *dst = plane + (size_t)iy * l->iw;
                    for (int ox = 0; ox < l->ow; ox++) {
                        int ix = ox * l->stride[1] - l->pad[1] + kj * l->dil[1];
                        if (ix >= 0 && ix < l->iw)
                            dst[ix] += src[ox];
                    }
                }
            }
}

typedef struct {
    const glrp_layer *L;
    const float *W, *in;
    float *out, *col;
    int n;
} linear_job;

static void dense_forward_task(void *arg, int task, int thread)
{
    (void)thread;
    const linear_job *j = arg;
    const glrp_linear *l = &j->L->lin;
    int r0 = task * DENSE_CHUNK, rows = j->n - r0 < DENSE_CHUNK ? j->n - r0 : DENSE_CHUNK;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, l->cout, l->cin, 1.0f,
                j->in + (size_t)r0 * l->cin, l->cin, j->W, l->cin, 0.0f,
                j->out + (size_t)r0 * l->cout, l->cout);
}

static void dense_transpose_task(void *arg, int task, int thread)
{
    (void)thread;
    const linear_job *j = arg;
    const glrp_linear *l = &j->L->lin;
    int r0 = task * DENSE_CHUNK, rows = j->n - r0 < DENSE_CHUNK ? j->n - r0 : DENSE_CHUNK;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, l->cin, l->cout, 1.0f,
                j->in + (size_t)r0 * l->cout, l->cout, j->W, l->cin, 0.0f,
                j->out + (size_t)r0 * l->cin, l->cin);
}

/* One sample: im2col, then per group Z_g = W_g col_g. */
static void conv_forward_task(void *arg, int s, int thread)
{
    const linear_job *j = arg;
    const glrp_layer *L = j->L;
    const glrp_linear *l = &L->lin;
    const int ohw = l->oh * l->ow, g = l->groups;
    const int cout_g = l->cout / g, kg = l->cin / g * l->kh * l->kw;
    float *col = j->col + (size_t)thread * linear_col_floats(L);
    im2col(l, j->in + s * linear_in_numel(L), col);
    float *z = j->out + s * linear_out_numel(L);
    for (int q = 0; q < g; q++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cout_g, ohw, kg, 1.0f,
                    j->W + (size_t)q * cout_g * kg, kg, col + (size_t)q * kg * ohw, ohw, 0.0f,
                    z + (size_t)q * cout_g * ohw, ohw);
}

/* One sample: per group col_g = W_g^T S_g, then col2im. */
static void conv_transpose_task(void *arg, int s, int thread)
{
    const linear_job *j = arg;
    const glrp_layer *L = j->L;
    const glrp_linear *l = &L->lin;
    const int ohw = l->oh * l->ow, g = l->groups;
    const int cout_g = l->cout / g, kg = l->cin / g * l->kh * l->kw;
    float *col = j->col + (size_t)thread * linear_col_floats(L);
    const float *sv = j->in + s * linear_out_numel(L);
    for (int q = 0; q < g; q++)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kg, ohw, cout_g, 1.0f,
                    j->W + (size_t)q * cout_g * kg, kg, sv + (size_t)q * cout_g * ohw, ohw, 0.0f,
                    col + (size_t)q * kg * ohw, ohw);
    col2im(l, col, j->out + s * linear_in_numel(L));
}

void linear_forward(const glrp_layer *L, const float *W, const float *x, float *z, int n,
                    float *col)
{
    linear_job j = {L, W, x, z, col, n};
    if (L->kind == OP_DENSE)
        parallel_for((n + DENSE_CHUNK - 1) / DENSE_CHUNK, dense_forward_task, &j);
    else
        parallel_for(n, conv_forward_task, &j);
}

void linear_transpose(const glrp_layer *L, const float *W, const float *sv, float *gv, int n,
                      float *col)
{
    linear_job j = {L, W, sv, gv, col, n};
    if (L->kind == OP_DENSE)
        parallel_for((n + DENSE_CHUNK - 1) / DENSE_CHUNK, dense_transpose_task, &j);
    else
        parallel_for(n, conv_transpose_task, &j);
}

void linear_add_bias(const glrp_layer *L, const float *b, float *z, int n)
{
    const glrp_linear *l = &L->lin;
    const size_t per_channel = L->kind == OP_DENSE ? 1 : (size_t)l->oh * l->ow;
    const size_t out = linear_out_numel(L);
    for (int s = 0; s < n; s++)
        for (int c = 0; c < l->cout; c++) {
            float *p = z + s * out + c * per_channel;
            for (size_t e = 0; e < per_channel; e++)
                p[e] += b[c];
        }
}
