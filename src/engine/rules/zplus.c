/*
 * z+ rule: only the positive contributions count.
 *   u = W+ x+ + W- x- + b+;  s = R / stab(u);  R_in = x+ * W+^T s + x- * W-^T s.
 * After a ReLU x- is zero and its two terms are skipped.
 */
#include <stdlib.h>

#include "engine/engine.h"

int rule_zplus(const rule_ctx *c)
{
    const glrp_layer *L = c->L;
    const size_t in = (size_t)c->n * linear_in_numel(L);
    const size_t out = (size_t)c->n * linear_out_numel(L);
    const int neg = any_negative(c->x, in);
    float *xp = rule_buf(in), *xn = rule_buf(in), *u = rule_buf(out), *t = rule_buf(out),
          *g = rule_buf(in), *bp = rule_buf((size_t)L->lin.cout);
    int rc = GLRP_ERR_RUNTIME;
    if (!xp || !xn || !u || !t || !g || !bp)
        goto done;
    split_sign(c->x, xp, xn, in);
    for (int k = 0; k < L->lin.cout; k++)
        bp[k] = L->lin.b[k] > 0.0f ? L->lin.b[k] : 0.0f;

    linear_forward(L, L->lin.Wpos, xp, u, c->n, c->col);
    if (neg) {
        linear_forward(L, L->lin.Wneg, xn, t, c->n, c->col);
        for (size_t e = 0; e < out; e++)
            u[e] += t[e];
    }
    linear_add_bias(L, bp, u, c->n);
    stab_divide(c->R, u, c->rule.eps, u, out); /* u now holds s */

    linear_transpose(L, L->lin.Wpos, u, g, c->n, c->col);
    for (size_t e = 0; e < in; e++)
        c->Rin[e] = xp[e] * g[e];
    if (neg) {
        linear_transpose(L, L->lin.Wneg, u, g, c->n, c->col);
        for (size_t e = 0; e < in; e++)
            c->Rin[e] += xn[e] * g[e];
    }
    rc = 0;
done:
    free(xp), free(xn), free(u), free(t), free(g), free(bp);
    return rc;
}
