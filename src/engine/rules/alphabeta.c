/*
 * Alpha-beta rule: positive and negative contributions weighted separately.
 *   u = W+ x+ + W- x- + b+          (positive contributions)
 *   v = W- x+ + W+ x- + b-          (negative contributions)
 *   R_in = alpha * (x+ * W+^T s_u + x- * W-^T s_u) - beta * (x+ * W-^T s_v + x- * W+^T s_v)
 * with s_u = R / stab(u), s_v = R / stab(v). Each denominator holds one sign of bias
 * only, so it cannot cancel to zero (a known defect of some implementations).
 * Computed as one stacked pass (rule_signed_pair, stack.c) with Wa = W+, Wb = W-, scaling
 * s_u by alpha and s_v by -beta.
 */
#include <stdlib.h>

#include "engine/engine.h"

static void alphabeta_scale(const rule_ctx *c, float *u, float *v, size_t count)
{
    for (size_t e = 0; e < count; e++) {
        u[e] = c->rule.alpha * glrp_stab_div(c->R[e], u[e], c->rule.eps);
        v[e] = -c->rule.beta * glrp_stab_div(c->R[e], v[e], c->rule.eps);
    }
}

int rule_alphabeta(const rule_ctx *c)
{
    const int cout = c->L->lin.cout;
    float *bp = rule_buf((size_t)cout), *bn = rule_buf((size_t)cout);
    int rc = GLRP_ERR_RUNTIME;
    if (bp && bn) {
        for (int k = 0; k < cout; k++) {
            bp[k] = c->L->lin.b[k] > 0.0f ? c->L->lin.b[k] : 0.0f;
            bn[k] = c->L->lin.b[k] < 0.0f ? c->L->lin.b[k] : 0.0f;
        }
        rc = rule_signed_pair(c, c->L->lin.Wpos, c->L->lin.Wneg, bp, bn, alphabeta_scale);
    }
    free(bp), free(bn);
    return rc;
}
