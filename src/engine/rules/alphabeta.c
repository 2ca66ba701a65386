/*
 * Alpha-beta rule: positive and negative contributions weighted separately.
 *   u = W+ x+ + W- x- + b+          (positive contributions)
 *   v = W- x+ + W+ x- + b-          (negative contributions)
 *   R_in = alpha * (x+ * W+^T s_u + x- * W-^T s_u) - beta * (x+ * W-^T s_v + x- * W+^T s_v)
 * with s_u = R / stab(u), s_v = R / stab(v). Each denominator holds one sign of bias
 * only, so it cannot cancel to zero (a known defect of some implementations).
 *
 * As one stacked convolution (stack.c): [u; v] = A [x+; x-] with A = [[W+, W-], [W-, W+]],
 * and A^T [alpha s_u; -beta s_v] = [g+; g-] with R_in = x+ * g+ + x- * g-. After a ReLU
 * x- is zero and A shrinks to [W+; W-].
 */
#include <stdlib.h>

#include "engine/engine.h"

int rule_alphabeta(const rule_ctx *c)
{
    const glrp_layer *L = c->L;
    const int cout = L->lin.cout;
    const size_t in = (size_t)c->n * linear_in_numel(L), out = (size_t)c->n * linear_out_numel(L);
    const int neg = any_negative(c->x, in), k_in = neg ? 2 : 1;
    const glrp_layer S = linear_stacked(L, k_in, 2);
    float *A = rule_buf(S.lin.wsize), *bp = rule_buf((size_t)cout), *bn = rule_buf((size_t)cout),
          *bias = rule_buf(2 * (size_t)cout), *xp = rule_buf(in), *xn = rule_buf(in),
          *xs = rule_buf(in * k_in), *zs = rule_buf(2 * out), *u = rule_buf(out),
          *v = rule_buf(out), *gs = rule_buf(in * k_in), *gp = rule_buf(in), *gn = rule_buf(in);
    int rc = GLRP_ERR_RUNTIME;
    if (!A || !bp || !bn || !bias || !xp || !xn || !xs || !zs || !u || !v || !gs || !gp || !gn)
        goto done;
    const float *Wp = L->lin.Wpos, *Wn = L->lin.Wneg;
    const float *blocks2[] = {Wp, Wn, Wn, Wp}, *blocks1[] = {Wp, Wn};
    stack_weights(L, 2, k_in, neg ? blocks2 : blocks1, A);
    for (int k = 0; k < cout; k++) {
        bp[k] = L->lin.b[k] > 0.0f ? L->lin.b[k] : 0.0f;
        bn[k] = L->lin.b[k] < 0.0f ? L->lin.b[k] : 0.0f;
    }
    const float *bparts[] = {bp, bn};
    stack_bias(L, 2, bparts, bias);

    split_sign(c->x, xp, xn, in);
    const float *xparts[] = {xp, xn};
    stack_channels(L, 0, k_in, xparts, xs, c->n);
    linear_forward(&S, A, xs, zs, c->n, c->col);
    linear_add_bias(&S, bias, zs, c->n);
    float *zparts[] = {u, v};
    unstack_channels(L, 1, 2, zs, zparts, c->n);
    for (size_t e = 0; e < out; e++) {
        u[e] = c->rule.alpha * glrp_stab_div(c->R[e], u[e], c->rule.eps);
        v[e] = -c->rule.beta * glrp_stab_div(c->R[e], v[e], c->rule.eps);
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
    free(A), free(bp), free(bn), free(bias), free(xp), free(xn), free(xs), free(zs), free(u),
        free(v), free(gs), free(gp), free(gn);
    return rc;
}
