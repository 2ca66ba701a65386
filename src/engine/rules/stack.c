/*
 * Stacked operands: several weight variants through one im2col and one GEMM.
 *
 * Rules that split inputs by sign (z+, alpha-beta, gamma) or weights into variants (W+, W-,
 * P, N) would otherwise run one convolution per (weights, input) pair, each repeating the
 * im2col and the GEMM's packing of the same data, with GEMMs as shallow as one layer. A
 * stacked layer has k_in copies of the input channels and k_out copies of the output
 * channels; its weight is a block matrix of variants, so
 *     [u; v] = [[W+, W-], [W-, W+]] [x+; x-]
 * is one convolution, and its transpose gives [W+^T s_u + W-^T s_v; ...] in one GEMM whose
 * depth is k_out times the layer's.
 *
 * Channels are ordered (group, copy, channel within group), so a grouped convolution stays
 * grouped: group q of the stacked layer sees exactly the copies of group q.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"

glrp_layer linear_stacked(const glrp_layer *L, int k_in, int k_out)
{
    glrp_layer S = *L;
    S.lin.cin *= k_in;
    S.lin.cout *= k_out;
    S.lin.wsize *= (size_t)k_in * k_out;
    S.lin.W = S.lin.b = S.lin.Wpos = S.lin.Wneg = NULL; /* rules pass their own weights */
    return S;
}

size_t rule_col_floats(const glrp_layer *L)
{
    /* The stackings the rules use: (k_in, k_out) = (1,1), (2,1), (3,1), (1,2), (2,2). */
    static const int shapes[][2] = {{1, 1}, {3, 1}, {2, 2}};
    size_t most = 0;
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        glrp_layer S = linear_stacked(L, shapes[k][0], shapes[k][1]);
        size_t c = linear_col_floats(&S);
        most = c > most ? c : most;
    }
    return most;
}

void stack_weights(const glrp_layer *L, int k_out, int k_in, const float *const *blocks,
                   float *A)
{
    const glrp_linear *l = &L->lin;
    const int g = L->kind == OP_CONV ? l->groups : 1;
    const int cout_g = l->cout / g, cin_g = l->cin / g;
    const size_t khw = L->kind == OP_CONV ? (size_t)l->kh * l->kw : 1;
    const size_t row = (size_t)cin_g * khw; /* one output channel's weights in L */
    for (int q = 0; q < g; q++)
        for (int mo = 0; mo < k_out; mo++)
            for (int o = 0; o < cout_g; o++) {
                float *dst = A + ((size_t)(q * k_out + mo) * cout_g + o) * k_in * row;
                for (int mi = 0; mi < k_in; mi++) {
                    const float *src = blocks[mo * k_in + mi];
                    if (src)
                        memcpy(dst + mi * row, src + (size_t)(q * cout_g + o) * row,
                               row * sizeof *dst);
                    else
                        memset(dst + mi * row, 0, row * sizeof *dst);
                }
            }
}

/* Runs of one group's channels: groups, channels per group, floats per channel. */
static void run_shape(const glrp_layer *L, int output, int *g, size_t *run)
{
    const glrp_linear *l = &L->lin;
    *g = L->kind == OP_CONV ? l->groups : 1;
    size_t plane = L->kind != OP_CONV ? 1 : output ? (size_t)l->oh * l->ow : (size_t)l->ih * l->iw;
    *run = (size_t)((output ? l->cout : l->cin) / *g) * plane;
}

void stack_channels(const glrp_layer *L, int output, int k, const float *const *parts,
                    float *dst, int n)
{
    int g;
    size_t run;
    run_shape(L, output, &g, &run);
    for (int s = 0; s < n; s++)
        for (int q = 0; q < g; q++)
            for (int p = 0; p < k; p++, dst += run)
                memcpy(dst, parts[p] + ((size_t)s * g + q) * run, run * sizeof *dst);
}

void unstack_channels(const glrp_layer *L, int output, int k, const float *src,
                      float *const *parts, int n)
{
    int g;
    size_t run;
    run_shape(L, output, &g, &run);
    for (int s = 0; s < n; s++)
        for (int q = 0; q < g; q++)
            for (int p = 0; p < k; p++, src += run)
                memcpy(parts[p] + ((size_t)s * g + q) * run, src, run * sizeof *src);
}

void stack_bias(const glrp_layer *L, int k, const float *const *parts, float *dst)
{
    const int g = L->kind == OP_CONV ? L->lin.groups : 1, cout_g = L->lin.cout / g;
    for (int q = 0; q < g; q++)
        for (int p = 0; p < k; p++, dst += cout_g)
            memcpy(dst, parts[p] + (size_t)q * cout_g, (size_t)cout_g * sizeof *dst);
}

/* R_in = x+ g+ + x- g- with [g+; g-] = A^T s over the stacked layer S, whose input is
 * k_in copies (2: [x+; x-]; 1: x- is zero and only g+ exists). */
int stacked_relevance_in(const rule_ctx *c, const glrp_layer *S, const float *A, const float *s,
                         int k_in, const float *xp, const float *xn)
{
    const size_t in = (size_t)c->n * linear_in_numel(c->L);
    float *gs = rule_buf(in * k_in), *gp = rule_buf(in), *gn = rule_buf(in);
    int rc = GLRP_ERR_RUNTIME;
    if (gs && gp && gn) {
        linear_transpose(S, A, s, gs, c->n, c->col);
        float *gparts[] = {gp, gn};
        unstack_channels(c->L, 0, k_in, gs, gparts, c->n);
        for (size_t e = 0; e < in; e++)
            c->Rin[e] = xp[e] * gp[e] + (k_in == 2 ? xn[e] * gn[e] : 0.0f);
        rc = 0;
    }
    free(gs), free(gp), free(gn);
    return rc;
}

/*
 * The pass alpha-beta and gamma share. Two variants Wa, Wb of the weights (alpha-beta:
 * W+, W-; gamma: P, N) and two biases give
 *   u = Wa x+ + Wb x- + bias_u,   v = Wb x+ + Wa x- + bias_v
 * as one stacked convolution with A = [[Wa, Wb], [Wb, Wa]] ([Wa; Wb] when x- is zero);
 * `scale` turns u and v into s_u and s_v in place (the part where the rules differ); then
 * A^T [s_u; s_v] = [g+; g-] and R_in = x+ g+ + x- g-.
 */
int rule_signed_pair(const rule_ctx *c, const float *Wa, const float *Wb, const float *bias_u,
                     const float *bias_v, signed_pair_scale scale)
{
    const glrp_layer *L = c->L;
    const size_t in = (size_t)c->n * linear_in_numel(L), out = (size_t)c->n * linear_out_numel(L);
    const int neg = any_negative(c->x, in), k_in = neg ? 2 : 1;
    const glrp_layer S = linear_stacked(L, k_in, 2);
    float *A = rule_buf(S.lin.wsize), *bias = rule_buf(2 * (size_t)L->lin.cout),
          *xp = rule_buf(in), *xn = rule_buf(in), *xs = rule_buf(in * k_in),
          *zs = rule_buf(2 * out), *u = rule_buf(out), *v = rule_buf(out);
    int rc = GLRP_ERR_RUNTIME;
    if (!A || !bias || !xp || !xn || !xs || !zs || !u || !v)
        goto done;
    const float *blocks2[] = {Wa, Wb, Wb, Wa}, *blocks1[] = {Wa, Wb}, *bparts[] = {bias_u, bias_v};
    stack_weights(L, 2, k_in, neg ? blocks2 : blocks1, A);
    stack_bias(L, 2, bparts, bias);

    split_sign(c->x, xp, xn, in);
    const float *xparts[] = {xp, xn};
    stack_channels(L, 0, k_in, xparts, xs, c->n);
    linear_forward(&S, A, xs, zs, c->n, c->col);
    linear_add_bias(&S, bias, zs, c->n);
    float *zparts[] = {u, v};
    unstack_channels(L, 1, 2, zs, zparts, c->n);
    scale(c, u, v, out);
    const float *sparts[] = {u, v};
    stack_channels(L, 1, 2, sparts, zs, c->n);
    rc = stacked_relevance_in(c, &S, A, zs, k_in, xp, xn);
done:
    free(A), free(bias), free(xp), free(xn), free(xs), free(zs), free(u), free(v);
    return rc;
}
