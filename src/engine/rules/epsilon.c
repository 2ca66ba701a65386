/*
 * Epsilon rule (eps = 0: LRP-0):  s = R / stab(W x + b);  R_in = x * W^T s.
 * The forward pass already holds z = W x + b, so only the transposed pass is new work.
 */
#include <stdlib.h>

#include "engine/engine.h"

int rule_epsilon(const rule_ctx *c)
{
    const size_t in = (size_t)c->n * linear_in_numel(c->L);
    const size_t out = (size_t)c->n * linear_out_numel(c->L);
    float *s = rule_buf(out), *g = rule_buf(in);
    if (!s || !g) {
        free(s);
        free(g);
        return GLRP_ERR_RUNTIME;
    }
    stab_divide(c->R, c->z, c->rule.eps, s, out);
    linear_transpose(c->L, c->L->lin.W, s, g, c->n, c->col);
    for (size_t e = 0; e < in; e++)
        c->Rin[e] = c->x[e] * g[e];
    free(s);
    free(g);
    return 0;
}
