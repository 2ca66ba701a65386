/*
 * Alpha-beta rule: positive and negative contributions weighted separately.
 *   u = W+ x+ + W- x- + b+          (positive contributions)
 *   v = W- x+ + W+ x- + b-          (negative contributions)
 *   R_in = alpha * (x+ * W+^T s_u + x- * W-^T s_u) - beta * (x+ * W-^T s_v + x- * W+^T s_v)
 * with s_u = R / stab(u), s_v = R / stab(v). Each denominator holds one sign of bias
 * only, so it cannot cancel to zero (a known defect of some implementations).
 */
#include <stdlib.h>

#include "engine/engine.h"

/* One signed half: z = Wa x+ + Wb x- + bias; R_in += weight * (x+ * Wa^T s + x- * Wb^T s). */
static void half(const rule_ctx *c, const float *Wa, const float *Wb, const float *bias,
                 float weight, const float *xp, const float *xn, int neg, float *z, float *t,
                 float *g)
{
    const glrp_layer *L = c->L;
    const size_t in = (size_t)c->n * linear_in_numel(L);
    const size_t out = (size_t)c->n * linear_out_numel(L);
    linear_forward(L, Wa, xp, z, c->n, c->col);
    if (neg) {
        linear_forward(L, Wb, xn, t, c->n, c->col);
        for (size_t e = 0; e < out; e++)
            z[e] += t[e];
    }
    linear_add_bias(L, bias, z, c->n);
    stab_divide(c->R, z, c->rule.eps, z, out);
    linear_transpose(L, Wa, z, g, c->n, c->col);
    for (size_t e = 0; e < in; e++)
        c->Rin[e] += weight * xp[e] * g[e];
    if (neg) {
        linear_transpose(L, Wb, z, g, c->n, c->col);
        for (size_t e = 0; e < in; e++)
            c->Rin[e] += weight * xn[e] * g[e];
    }
}

int rule_alphabeta(const rule_ctx *c)
{
    const glrp_layer *L = c->L;
    const size_t in = (size_t)c->n * linear_in_numel(L);
    const size_t out = (size_t)c->n * linear_out_numel(L);
    const int neg = any_negative(c->x, in);
    float *xp = rule_buf(in), *xn = rule_buf(in), *z = rule_buf(out), *t = rule_buf(out),
          *g = rule_buf(in), *bp = rule_buf((size_t)L->lin.cout),
          *bn = rule_buf((size_t)L->lin.cout);
    int rc = GLRP_ERR_RUNTIME;
    if (!xp || !xn || !z || !t || !g || !bp || !bn)
        goto done;
    split_sign(c->x, xp, xn, in);
    for (int k = 0; k < L->lin.cout; k++) {
        bp[k] = L->lin.b[k] > 0.0f ? L->lin.b[k] : 0.0f;
        bn[k] = L->lin.b[k] < 0.0f ? L->lin.b[k] : 0.0f;
    }
    for (size_t e = 0; e < in; e++)
        c->Rin[e] = 0.0f;
    half(c, L->lin.Wpos, L->lin.Wneg, bp, c->rule.alpha, xp, xn, neg, z, t, g);
    if (c->rule.beta != 0.0f)
        half(c, L->lin.Wneg, L->lin.Wpos, bn, -c->rule.beta, xp, xn, neg, z, t, g);
    rc = 0;
done:
    free(xp), free(xn), free(z), free(t), free(g), free(bp), free(bn);
    return rc;
}
