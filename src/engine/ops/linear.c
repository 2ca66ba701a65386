/*
 * Dense and convolution layers as GEMMs through OpenBLAS. Rules call these with modified
 * weights (W+, W-, W^2, ones) and modified inputs (x+, x-, bounds), so one forward and one
 * transposed pass serve every rule.
 *
 * Convolution: im2col of one sample gives col [Cin*kh*kw, OH*OW] (rows grouped by
 * convolution group), then per group Z_g = W_g col_g. The transposed pass computes
 * col_g = W_g^T S_g and scatters col back with col2im, which is exactly the gradient of
 * the convolution with respect to its input (zero padding drops out).
 */
#include <cblas.h>
#include <string.h>

#include "engine/engine.h"

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
                    float *dst = row + oy * l->ow;
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
                    const float *src = row + oy * l->ow;
                    float *dst = plane + (size_t)iy * l->iw;
                    for (int ox = 0; ox < l->ow; ox++) {
                        int ix = ox * l->stride[1] - l->pad[1] + kj * l->dil[1];
                        if (ix >= 0 && ix < l->iw)
                            dst[ix] += src[ox];
                    }
                }
            }
}

void linear_forward(const glrp_layer *L, const float *W, const float *x, float *z, int n,
                    float *col)
{
    const glrp_linear *l = &L->lin;
    if (L->kind == OP_DENSE) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, l->cout, l->cin, 1.0f, x,
                    l->cin, W, l->cin, 0.0f, z, l->cout);
        return;
    }
    const int ohw = l->oh * l->ow, g = l->groups;
    const int cout_g = l->cout / g, kg = l->cin / g * l->kh * l->kw;
    const size_t in = linear_in_numel(L), out = linear_out_numel(L);
    for (int s = 0; s < n; s++) {
        im2col(l, x + s * in, col);
        for (int q = 0; q < g; q++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cout_g, ohw, kg, 1.0f,
                        W + (size_t)q * cout_g * kg, kg, col + (size_t)q * kg * ohw, ohw, 0.0f,
                        z + s * out + (size_t)q * cout_g * ohw, ohw);
    }
}

void linear_transpose(const glrp_layer *L, const float *W, const float *sv, float *gv, int n,
                      float *col)
{
    const glrp_linear *l = &L->lin;
    if (L->kind == OP_DENSE) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, l->cin, l->cout, 1.0f, sv,
                    l->cout, W, l->cin, 0.0f, gv, l->cin);
        return;
    }
    const int ohw = l->oh * l->ow, g = l->groups;
    const int cout_g = l->cout / g, kg = l->cin / g * l->kh * l->kw;
    const size_t in = linear_in_numel(L), out = linear_out_numel(L);
    for (int s = 0; s < n; s++) {
        for (int q = 0; q < g; q++)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kg, ohw, cout_g, 1.0f,
                        W + (size_t)q * cout_g * kg, kg, sv + s * out + (size_t)q * cout_g * ohw,
                        ohw, 0.0f, col + (size_t)q * kg * ohw, ohw);
        col2im(l, col, gv + s * in);
    }
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
