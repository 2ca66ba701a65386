/*
 * Gamma rule: favour contributions of the same sign as the output.
 *   P = W + gamma W+ (bias b + gamma b+),  N = W + gamma W- (bias b + gamma b-)
 *   u = P x+ + N x- + (b + gamma b+),       v = N x+ + P x- + (b + gamma b-)
 *   s_u = [z > 0] R / stab(u),              s_v = [z < 0] R / stab(v)
 *   R_in = x+ * P^T s_u + x- * N^T s_u + x+ * N^T s_v + x- * P^T s_v
 * z is the unmodified output W x + b; outputs with z exactly 0 pass nothing on.
 *
 * As one stacked convolution (stack.c): [u; v] = A [x+; x-] with A = [[P, N], [N, P]], and
 * A^T [s_u; s_v] = [P^T s_u + N^T s_v; N^T s_u + P^T s_v] = [g+; g-], R_in = x+ g+ + x- g-.
 * After a ReLU x- is zero and A shrinks to [P; N].
 */
#include <stdlib.h>

#include "engine/engine.h"

int rule_gamma(const rule_ctx *c)
{
    const glrp_layer *L = c->L;
    const glrp_linear *l = &L->lin;
    const float gm = c->rule.gamma;
    const size_t in = (size_t)c->n * linear_in_numel(L), out = (size_t)c->n * linear_out_numel(L);
    const int neg = any_negative(c->x, in), k_in = neg ? 2 : 1;
    const glrp_layer S = linear_stacked(L, k_in, 2);
    float *P = rule_buf(l->wsize), *N = rule_buf(l->wsize), *A = rule_buf(S.lin.wsize),
          *bP = rule_buf((size_t)l->cout), *bN = rule_buf((size_t)l->cout),
          *bias = rule_buf(2 * (size_t)l->cout), *xp = rule_buf(in), *xn = rule_buf(in),
          *xs = rule_buf(in * k_in), *zs = rule_buf(2 * out), *u = rule_buf(out),
          *v = rule_buf(out), *gs = rule_buf(in * k_in), *gp = rule_buf(in), *gn = rule_buf(in);
    int rc = GLRP_ERR_RUNTIME;
    if (!P || !N || !A || !bP || !bN || !bias || !xp || !xn || !xs || !zs || !u || !v || !gs ||
        !gp || !gn)
        goto done;
    for (size_t e = 0; e < l->wsize; e++) {
        P[e] = l->W[e] + gm * l->Wpos[e];
        N[e] = l->W[e] + gm * l->Wneg[e];
    }
    for (int k = 0; k < l->cout; k++) {
        bP[k] = l->b[k] + gm * (l->b[k] > 0.0f ? l->b[k] : 0.0f);
        bN[k] = l->b[k] + gm * (l->b[k] < 0.0f ? l->b[k] : 0.0f);
    }
    const float *blocks2[] = {P, N, N, P}, *blocks1[] = {P, N}, *bparts[] = {bP, bN};
    stack_weights(L, 2, k_in, neg ? blocks2 : blocks1, A);
    stack_bias(L, 2, bparts, bias);

    split_sign(c->x, xp, xn, in);
    const float *xparts[] = {xp, xn};
    stack_channels(L, 0, k_in, xparts, xs, c->n);
    linear_forward(&S, A, xs, zs, c->n, c->col);
    linear_add_bias(&S, bias, zs, c->n);
    float *zparts[] = {u, v};
    unstack_channels(L, 1, 2, zs, zparts, c->n);
    for (size_t e = 0; e < out; e++) {
        u[e] = c->z[e] > 0.0f ? glrp_stab_div(c->R[e], u[e], c->rule.eps) : 0.0f;
        v[e] = c->z[e] < 0.0f ? glrp_stab_div(c->R[e], v[e], c->rule.eps) : 0.0f;
    }
    const float *sparts[] = {u, v};
    stack_channels(L, 1, 2, sparts, zs, c->n);
    linear_transpose(&S, A, zs, gs, c->n, c->col);
    float *gparts[] = {gp, gn};
    unstack_channels(L, 0, k_in, gs, gparts, c->n);
    for (size_t e = 0; e < in; e++)
        c->Rin[e] = xp[e] * gp[e] + (neg ? xn[e] * gn[e] : 0.0f);
    rc = 0;
done:
    free(P), free(N), free(A), free(bP), free(bN), free(bias), free(xp), free(xn), free(xs),
        free(zs), free(u), free(v), free(gs), free(gp), free(gn);
    return rc;
}
