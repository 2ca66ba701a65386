/*
 * Dense and convolution layers as GEMMs through OpenBLAS. Rules call these with modified
 * weights (W+, W-, W^2, ones) and modified inputs (x+, x-, bounds), so one forward and one
 * transposed pass serve every rule.
 *
 * Convolution, forward: im2col of one sample gives col [Cin*kh*kw, OH*OW] (rows grouped by
 * convolution group), then per group Z_g = W_g col_g.
 *
 * Convolution, transposed (the gradient with respect to the input): for stride 1 and no
 * dilation it is itself a convolution of the output-side values with the flipped kernel,
 * padded by k-1-pad. So it runs exactly like the forward, im2col then one GEMM with
 * K = Cout*kh*kw, instead of a GEMM with K = Cout followed by a col2im scatter: a deeper
 * GEMM is faster, and a gather of contiguous rows beats a scattered read-modify-write.
 * Strided or dilated convolutions keep the col2im form.
 *
 * These functions run on the calling thread: the engine parallelises over fixed chunks
 * of samples above them (forward.c, explain.c), so a sample's arithmetic never depends on
 * the thread count. col is scratch of linear_col_floats(L) floats.
 */
#include <cblas.h>
#include <stdatomic.h>
#include <string.h>

#include "engine/engine.h"

static atomic_uint_fast64_t flops_issued;

uint64_t linear_flops(void)
{
    return (uint64_t)atomic_load_explicit(&flops_issued, memory_order_relaxed);
}

/* All GEMMs go through here: row-major C = op(A) op(B), beta 0. */
static void gemm(int trans_a, int trans_b, int m, int n, int k, const float *A, int lda,
                 const float *B, int ldb, float *C, int ldc)
{
    atomic_fetch_add_explicit(&flops_issued, 2ull * (uint64_t)m * n * k, memory_order_relaxed);
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
}

/* Where a convolution reads from: c planes of ih x iw gathered into oh x ow columns. */
typedef struct {
    int c, ih, iw, oh, ow, kh, kw;
    int sy, sx, dy, dx, pt, pl;
} conv_geom;

static conv_geom forward_geom(const glrp_linear *l)
{
    return (conv_geom){l->cin, l->ih, l->iw, l->oh, l->ow, l->kh, l->kw, l->stride[0],
                       l->stride[1], l->dil[0], l->dil[1], l->pad[0], l->pad[1]};
}

static int transpose_is_conv(const glrp_linear *l)
{
    return l->stride[0] == 1 && l->stride[1] == 1 && l->dil[0] == 1 && l->dil[1] == 1;
}

/* The transposed pass as a convolution over the output grid (see the top of the file). */
static conv_geom transpose_geom(const glrp_linear *l)
{
    return (conv_geom){l->cout, l->oh, l->ow, l->ih, l->iw, l->kh, l->kw, 1, 1, 1, 1,
                       l->kh - 1 - l->pad[0], l->kw - 1 - l->pad[1]};
}

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
    if (L->kind == OP_DENSE)
        return 0;
    size_t fwd = (size_t)l->cin * l->kh * l->kw * l->oh * l->ow;
    if (!transpose_is_conv(l))
        return fwd;
    size_t tr = (size_t)l->cout * l->kh * l->kw * l->ih * l->iw + l->wsize;
    return fwd > tr ? fwd : tr;
}

/* First output column whose input column o*s + off is >= lo (never below 0). */
static int first_col(int lo, int off, int s)
{
    int need = lo - off;
    return need <= 0 ? 0 : (need + s - 1) / s;
}

static void im2col(const conv_geom *g, const float *x, float *col)
{
    const int ohw = g->oh * g->ow;
    for (int c = 0; c < g->c; c++)
        for (int ki = 0; ki < g->kh; ki++)
            for (int kj = 0; kj < g->kw; kj++) {
                float *row = col + ((size_t)(c * g->kh + ki) * g->kw + kj) * ohw;
                const float *plane = x + (size_t)c * g->ih * g->iw;
                const int off = kj * g->dx - g->pl;
                /* Output columns [lo, hi) read inside the plane; the rest is padding. */
                int lo = first_col(0, off, g->sx), hi = first_col(g->iw, off, g->sx);
                lo = lo < g->ow ? lo : g->ow;
                hi = hi < lo ? lo : hi > g->ow ? g->ow : hi;
                for (int oy = 0; oy < g->oh; oy++) {
                    int iy = oy * g->sy - g->pt + ki * g->dy;
                    float *dst = row + (size_t)oy * g->ow;
                    if (iy < 0 || iy >= g->ih) {
                        memset(dst, 0, (size_t)g->ow * sizeof *dst);
                        continue;
                    }
                    const float *src = plane + (size_t)iy * g->iw;
                    memset(dst, 0, (size_t)lo * sizeof *dst);
                    if (g->sx == 1 && hi > lo)
                        memcpy(dst + lo, src + lo + off, (size_t)(hi - lo) * sizeof *dst);
                    else
                        for (int ox = lo; ox < hi; ox++)
                            dst[ox] = src[ox * g->sx + off];
                    memset(dst + hi, 0, (size_t)(g->ow - hi) * sizeof *dst);
                }
            }
}

/* The adjoint of im2col: sums every column entry back onto the input pixel it came from
 * (padding drops out). Only strided or dilated convolutions need it. */
static void col2im(const conv_geom *g, const float *col, float *x)
{
    const int ohw = g->oh * g->ow;
    memset(x, 0, (size_t)g->c * g->ih * g->iw * sizeof *x);
    for (int c = 0; c < g->c; c++)
        for (int ki = 0; ki < g->kh; ki++)
            for (int kj = 0; kj < g->kw; kj++) {
                const float *row = col + ((size_t)(c * g->kh + ki) * g->kw + kj) * ohw;
                float *plane = x + (size_t)c * g->ih * g->iw;
                const int off = kj * g->dx - g->pl;
                int lo = first_col(0, off, g->sx), hi = first_col(g->iw, off, g->sx);
                lo = lo < g->ow ? lo : g->ow;
                hi = hi < lo ? lo : hi > g->ow ? g->ow : hi;
                for (int oy = 0; oy < g->oh; oy++) {
                    int iy = oy * g->sy - g->pt + ki * g->dy;
                    if (iy < 0 || iy >= g->ih)
                        continue;
                    const float *src = row + (size_t)oy * g->ow;
                    float *dst = plane + (size_t)iy * g->iw;
                    for (int ox = lo; ox < hi; ox++)
                        dst[ox * g->sx + off] += src[ox];
                }
            }
}

/* W [cout, cin/g, kh, kw] as the transposed pass's kernel: per group [cin/g, cout/g, kh, kw],
 * spatially flipped. */
static void flip_kernel(const glrp_linear *l, const float *W, float *F)
{
    const int g = l->groups, cin_g = l->cin / g, cout_g = l->cout / g, khw = l->kh * l->kw;
    for (int q = 0; q < g; q++)
        for (int o = 0; o < cout_g; o++)
            for (int c = 0; c < cin_g; c++) {
                const float *src = W + ((size_t)(q * cout_g + o) * cin_g + c) * khw;
                float *dst = F + ((size_t)(q * cin_g + c) * cout_g + o) * khw;
                for (int e = 0; e < khw; e++)
                    dst[e] = src[khw - 1 - e];
            }
}

static void conv_forward(const glrp_linear *l, const float *W, const float *x, float *z,
                         float *col)
{
    const conv_geom geo = forward_geom(l);
    const int ohw = l->oh * l->ow, g = l->groups;
    const int cout_g = l->cout / g, kg = l->cin / g * l->kh * l->kw;
    im2col(&geo, x, col);
    for (int q = 0; q < g; q++)
        gemm(0, 0, cout_g, ohw, kg, W + (size_t)q * cout_g * kg, kg, col + (size_t)q * kg * ohw,
             ohw, z + (size_t)q * cout_g * ohw, ohw);
}

/* g = W^T s for one sample; flipped is flip_kernel(W) when transpose_is_conv. */
static void conv_transpose(const glrp_linear *l, const float *W, const float *flipped,
                           const float *s, float *gv, float *col)
{
    const int g = l->groups, cin_g = l->cin / g, cout_g = l->cout / g;
    if (flipped) {
        const conv_geom geo = transpose_geom(l);
        const int ihw = l->ih * l->iw, kg = cout_g * l->kh * l->kw;
        im2col(&geo, s, col);
        for (int q = 0; q < g; q++)
            gemm(0, 0, cin_g, ihw, kg, flipped + (size_t)q * cin_g * kg, kg,
                 col + (size_t)q * kg * ihw, ihw, gv + (size_t)q * cin_g * ihw, ihw);
        return;
    }
    const conv_geom geo = forward_geom(l);
    const int ohw = l->oh * l->ow, kg = cin_g * l->kh * l->kw;
    for (int q = 0; q < g; q++)
        gemm(1, 0, kg, ohw, cout_g, W + (size_t)q * cout_g * kg, kg,
             s + (size_t)q * cout_g * ohw, ohw, col + (size_t)q * kg * ohw, ohw);
    col2im(&geo, col, gv);
}

void linear_forward(const glrp_layer *L, const float *W, const float *x, float *z, int n,
                    float *col)
{
    const glrp_linear *l = &L->lin;
    if (L->kind == OP_DENSE) {
        gemm(0, 1, n, l->cout, l->cin, x, l->cin, W, l->cin, z, l->cout);
        return;
    }
    const size_t in = linear_in_numel(L), out = linear_out_numel(L);
    for (int s = 0; s < n; s++)
        conv_forward(l, W, x + s * in, z + s * out, col);
}

void linear_transpose(const glrp_layer *L, const float *W, const float *sv, float *gv, int n,
                      float *col)
{
    const glrp_linear *l = &L->lin;
    if (L->kind == OP_DENSE) {
        gemm(0, 0, n, l->cin, l->cout, sv, l->cout, W, l->cin, gv, l->cin);
        return;
    }
    const size_t in = linear_in_numel(L), out = linear_out_numel(L);
    float *flipped = NULL;
    if (transpose_is_conv(l)) {
        /* The flipped kernel lives behind the transposed im2col in the scratch. */
        flipped = col + (size_t)l->cout * l->kh * l->kw * l->ih * l->iw;
        flip_kernel(l, W, flipped);
    }
    for (int s = 0; s < n; s++)
        conv_transpose(l, W, flipped, sv + s * out, gv + s * in, col);
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
