/*
 * Gamma rule: favour contributions of the same sign as the output.
 *   P = W + gamma W+ (bias b + gamma b+),  N = W + gamma W- (bias b + gamma b-)
 *   u = P x+ + N x- + (b + gamma b+),       v = N x+ + P x- + (b + gamma b-)
 *   s_u = [z > 0] R / stab(u),              s_v = [z < 0] R / stab(v)
 *   R_in = x+ * P^T s_u + x- * N^T s_u + x+ * N^T s_v + x- * P^T s_v
 * z is the unmodified output W x + b; outputs with z exactly 0 pass nothing on.
 * Computed as one stacked pass (rule_signed_pair, stack.c) with Wa = P, Wb = N.
 */
#include <stdlib.h>

#include "engine/engine.h"

static void gamma_scale(const rule_ctx *c, float *u, float *v, size_t count)
{
    for (size_t e = 0; e < count; e++) {
        u[e] = c->z[e] > 0.0f ? glrp_stab_div(c->R[e], u[e], c->rule.eps) : 0.0f;
        v[e] = c->z[e] < 0.0f ? glrp_stab_div(c->R[e], v[e], c->rule.eps) : 0.0f;
    }
}

int rule_gamma(const rule_ctx *c)
{
    const glrp_linear *l = &c->L->lin;
    const float gm = c->rule.gamma;
    float *P = rule_buf(l->wsize), *N = rule_buf(l->wsize), *bP = rule_buf((size_t)l->cout),
          *bN = rule_buf((size_t)l->cout);
    int rc = GLRP_ERR_RUNTIME;
    if (P && N && bP && bN) {
        for (size_t e = 0; e < l->wsize; e++) {
            P[e] = l->W[e] + gm * l->Wpos[e];
            N[e] = l->W[e] + gm * l->Wneg[e];
        }
        for (int k = 0; k < l->cout; k++) {
            bP[k] = l->b[k] + gm * (l->b[k] > 0.0f ? l->b[k] : 0.0f);
            bN[k] = l->b[k] + gm * (l->b[k] < 0.0f ? l->b[k] : 0.0f);
        }
        rc = rule_signed_pair(c, P, N, bP, bN, gamma_scale);
    }
    free(P), free(N), free(bP), free(bN);
    return rc;
}
