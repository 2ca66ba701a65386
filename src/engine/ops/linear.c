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

static void count_flops(uint64_t flops)
{
    atomic_fetch_add_explicit(&flops_issued, flops, memory_order_relaxed);
}

/* All GEMMs go through here: row-major C = op(A) op(B) + beta C. Not counted: the caller
 * counts the FLOPs the layer needs (the shifted form computes a few discarded columns). */
static void gemm_acc(int trans_a, int trans_b, int m, int n, int k, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc)
{
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, A, lda, B, ldb, beta, C, ldc);
}

static void gemm(int trans_a, int trans_b, int m, int n, int k, const float *A, int lda,
                 const float *B, int ldb, float *C, int ldc)
{
    count_flops(2ull * (uint64_t)m * n * k);
    gemm_acc(trans_a, trans_b, m, n, k, A, lda, B, ldb, 0.0f, C, ldc);
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

/* Convolutions at least this deep per tap (input channels per group) skip im2col: with
 * shallower taps nine GEMMs lose more than the copy saves (13-band first layers). */
#define SHIFT_MIN_DEPTH 24

/* Shifted-window form (see conv_shifted) for stride 1, no dilation, deep enough taps. */
static int shifted_ok(const conv_geom *g, int groups)
{
    return g->sy == 1 && g->sx == 1 && g->dy == 1 && g->dx == 1 && g->c / groups >= SHIFT_MIN_DEPTH;
}

/* Scratch of one convolution with cout output channels: the padded input, the output on
 * the padded width and the tap-major kernel, or the im2col matrix. */
static size_t conv_scratch(const conv_geom *g, int groups, int cout)
{
    const size_t khw = (size_t)g->kh * g->kw;
    if (!shifted_ok(g, groups))
        return (size_t)g->c * khw * g->oh * g->ow;
    const size_t hp = (size_t)g->oh + g->kh - 1, wp = (size_t)g->ow + g->kw - 1;
    return (size_t)g->c * hp * wp + g->kw + (size_t)cout * g->oh * wp +
           (size_t)cout * (g->c / groups) * khw;
}

size_t linear_col_floats(const glrp_layer *L)
{
    const glrp_linear *l = &L->lin;
    if (L->kind == OP_DENSE)
        return 0;
    const conv_geom f = forward_geom(l);
    size_t fwd = conv_scratch(&f, l->groups, l->cout);
    size_t tr = (size_t)l->cin * l->kh * l->kw * l->oh * l->ow; /* GEMM then col2im */
    if (transpose_is_conv(l)) {
        const conv_geom t = transpose_geom(l);
        tr = conv_scratch(&t, l->groups, l->cin) + l->wsize; /* + the flipped kernel */
    }
    return fwd > tr ? fwd : tr;
}

/* First output column whose input column o*s + off is >= lo (never below 0). */
static int first_col(int lo, int off, int s)
{
    int need = lo - off;
    return need <= 0 ? 0 : (need + s - 1) / s;
}

/* Output columns [*lo, *hi) of tap column kj read inside the plane (input column
 * ox * sx + *off); the others fall on padding. */
static void tap_columns(const conv_geom *g, int kj, int *off, int *lo, int *hi)
{
    *off = kj * g->dx - g->pl;
    int a = first_col(0, *off, g->sx), b = first_col(g->iw, *off, g->sx);
    *lo = a < g->ow ? a : g->ow;
    *hi = b < *lo ? *lo : b > g->ow ? g->ow : b;
}

static void im2col(const conv_geom *g, const float *x, float *col)
{
    const int ohw = g->oh * g->ow;
    for (int c = 0; c < g->c; c++)
        for (int ki = 0; ki < g->kh; ki++)
            for (int kj = 0; kj < g->kw; kj++) {
                float *row = col + ((size_t)(c * g->kh + ki) * g->kw + kj) * ohw;
                const float *plane = x + (size_t)c * g->ih * g->iw;
                int off, lo, hi;
                tap_columns(g, kj, &off, &lo, &hi);
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
                int off, lo, hi;
                tap_columns(g, kj, &off, &lo, &hi);
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

/*
 * A stride-1 undilated convolution without im2col. On the input zero-padded to
 * Hp x Wp, output (y, x) of tap (ki, kj) reads padded pixel (y + ki, x + kj); computing
 * outputs on the padded width Wp (the last kw-1 columns of each row are discarded) makes
 * that pixel's offset y*Wp + x + ki*Wp + kj, so each tap is one GEMM over a plain view of
 * the padded input: Z += W[:, :, ki, kj] Xpad[:, ki*Wp + kj :]. Nine GEMMs as deep as the
 * input channels replace one im2col copy nine times the input's size.
 */
static void conv_shifted(const conv_geom *g, int groups, int cout, const float *W,
                         const float *x, float *z, float *scratch)
{
    const int hp = g->oh + g->kh - 1, wp = g->ow + g->kw - 1, khw = g->kh * g->kw;
    const int cin_g = g->c / groups, cout_g = cout / groups;
    const size_t plane = (size_t)hp * wp, out_wide = (size_t)g->oh * wp;
    float *xp = scratch, *zp = xp + (size_t)g->c * plane + g->kw, *wt = zp + (size_t)cout * out_wide;
    /* Tap-major kernel: wt[k][o][c] = W[o][c][k]. */
    for (int o = 0; o < cout; o++)
        for (int c = 0; c < cin_g; c++)
            for (int k = 0; k < khw; k++)
                wt[((size_t)k * cout + o) * cin_g + c] = W[((size_t)o * cin_g + c) * khw + k];
    /* Padded input: source row iy lands on padded row iy + pt, column ix on ix + pl. */
    memset(xp, 0, ((size_t)g->c * plane + g->kw) * sizeof *xp);
    const int x_lo = g->pl < 0 ? -g->pl : 0;
    const int x_hi = g->iw < wp - g->pl ? g->iw : wp - g->pl;
    for (int c = 0; c < g->c && x_hi > x_lo; c++)
        for (int iy = 0; iy < g->ih; iy++) {
            int py = iy + g->pt;
            if (py < 0 || py >= hp)
                continue;
            memcpy(xp + (size_t)c * plane + (size_t)py * wp + x_lo + g->pl,
                   x + ((size_t)c * g->ih + iy) * g->iw + x_lo, (size_t)(x_hi - x_lo) * sizeof *xp);
        }
    count_flops(2ull * (uint64_t)cout * g->oh * g->ow * cin_g * khw);
    for (int q = 0; q < groups; q++)
        for (int k = 0; k < khw; k++)
            gemm_acc(0, 0, cout_g, (int)out_wide, cin_g,
                     wt + ((size_t)k * cout + (size_t)q * cout_g) * cin_g, cin_g,
                     xp + (size_t)q * cin_g * plane + (size_t)(k / g->kw) * wp + k % g->kw,
                     (int)plane, k ? 1.0f : 0.0f, zp + (size_t)q * cout_g * out_wide,
                     (int)out_wide);
    for (int o = 0; o < cout; o++)
        for (int y = 0; y < g->oh; y++)
            memcpy(z + ((size_t)o * g->oh + y) * g->ow, zp + (size_t)o * out_wide + (size_t)y * wp,
                   (size_t)g->ow * sizeof *z);
}

/* z = W x for one sample of a convolution with the given geometry, W [cout, c/groups, kh, kw]. */
static void conv_run(const conv_geom *g, int groups, int cout, const float *W, const float *x,
                     float *z, float *scratch)
{
    if (shifted_ok(g, groups)) {
        conv_shifted(g, groups, cout, W, x, z, scratch);
        return;
    }
    const int ohw = g->oh * g->ow, cout_g = cout / groups;
    const int kg = g->c / groups * g->kh * g->kw;
    im2col(g, x, scratch);
    for (int q = 0; q < groups; q++)
        gemm(0, 0, cout_g, ohw, kg, W + (size_t)q * cout_g * kg, kg,
             scratch + (size_t)q * kg * ohw, ohw, z + (size_t)q * cout_g * ohw, ohw);
}

/* g = W^T s for one sample; flipped is flip_kernel(W) when transpose_is_conv. */
static void conv_transpose(const glrp_linear *l, const float *W, const float *flipped,
                           const float *s, float *gv, float *col)
{
    if (flipped) {
        const conv_geom geo = transpose_geom(l);
        conv_run(&geo, l->groups, l->cin, flipped, s, gv, col);
        return;
    }
    const int g = l->groups, cout_g = l->cout / g;
    const conv_geom geo = forward_geom(l);
    const int ohw = l->oh * l->ow, kg = l->cin / g * l->kh * l->kw;
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
    const conv_geom geo = forward_geom(l);
    for (int s = 0; s < n; s++)
        conv_run(&geo, l->groups, l->cout, W, x + s * in, z + s * out, col);
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
        /* The flipped kernel lives behind the transposed convolution's scratch. */
        const conv_geom t = transpose_geom(l);
        flipped = col + conv_scratch(&t, l->groups, l->cin);
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
