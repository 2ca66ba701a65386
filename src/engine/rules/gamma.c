/*
 * Gamma rule: favour contributions of the same sign as the output.
 *   P = W + gamma W+ (bias b + gamma b+),  N = W + gamma W- (bias b + gamma b-)
 *   u = P x+ + N x- + (b + gamma b+),       v = N x+ + P x- + (b + gamma b-)
 *   s_u = [z > 0] R / stab(u),              s_v = [z < 0] R / stab(v)
 *   R_in = x+ * P^T s_u + x- * N^T s_u + x+ * N^T s_v + x- * P^T s_v
 * z is the unmodified output W x + b; outputs with z exactly 0 pass nothing on.
 */
#include <stdlib.h>

#include "engine/engine.h"

int rule_gamma(const rule_ctx *c)
{
    const glrp_layer *L = c->L;
    const glrp_linear *l = &L->lin;
    const float gm = c->rule.gamma;
    const size_t in = (size_t)c->n * linear_in_numel(L);
    const size_t out = (size_t)c->n * linear_out_numel(L);
    const int neg = any_negative(c->x, in);
    float *P = rule_buf(l->wsize), *N = rule_buf(l->wsize), *bP = rule_buf((size_t)l->cout),
          *bN = rule_buf((size_t)l->cout), *xp = rule_buf(in), *xn = rule_buf(in),
          *u = rule_buf(out), *v = rule_buf(out), *t = rule_buf(out), *g = rule_buf(in);
    int rc = GLRP_ERR_RUNTIME;
    if (!P || !N || !bP || !bN || !xp || !xn || !u || !v || !t || !g)
        goto done;
    for (size_t e = 0; e < l->wsize; e++) {
        P[e] = l->W[e] + gm * l->Wpos[e];
        N[e] = l->W[e] + gm * l->Wneg[e];
    }
    for (int k = 0; k < l->cout; k++) {
        bP[k] = l->b[k] + gm * (l->b[k] > 0.0f ? l->b[k] : 0.0f);
        bN[k] = l->b[k] + gm * (l->b[k] < 0.0f ? l->b[k] : 0.0f);
    }
    split_sign(c->x, xp, xn, in);

    linear_forward(L, P, xp, u, c->n, c->col);
    linear_forward(L, N, xp, v, c->n, c->col);
    if (neg) {
        linear_forward(L, N, xn, t, c->n, c->col);
        for (size_t e = 0; e < out; e++)
            u[e] += t[e];
        linear_forward(L, P, xn, t, c->n, c->col);
        for (size_t e = 0; e < out; e++)
            v[e] += t[e];
    }
    linear_add_bias(L, bP, u, c->n);
    linear_add_bias(L, bN, v, c->n);
    for (size_t e = 0; e < out; e++) {
        u[e] = c->z[e] > 0.0f ? glrp_stab_div(c->R[e], u[e], c->rule.eps) : 0.0f;
        v[e] = c->z[e] < 0.0f ? glrp_stab_div(c->R[e], v[e], c->rule.eps) : 0.0f;
    }
    /* x+ * (P^T s_u + N^T s_v) + x- * (N^T s_u + P^T s_v) */
    linear_transpose(L, P, u, g, c->n, c->col);
    for (size_t e = 0; e < in; e++)
        c->Rin[e] = xp[e] * g[e];
    linear_transpose(L, N, v, g, c->n, c->col);
    for (size_t e = 0; e < in; e++)
        c->Rin[e] += xp[e] * g[e];
    if (neg) {
        linear_transpose(L, N, u, g, c->n, c->col);
        for (size_t e = 0; e < in; e++)
            c->Rin[e] += xn[e] * g[e];
        linear_transpose(L, P, v, g, c->n, c->col);
        for (size_t e = 0; e < in; e++)
            c->Rin[e] += xn[e] * g[e];
    }
    rc = 0;
done:
    free(P), free(N), free(bP), free(bN), free(xp), free(xn), free(u), free(v), free(t),
        free(g);
    return rc;
}
