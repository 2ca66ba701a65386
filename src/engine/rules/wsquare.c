/*
 * w^2 rule: shares by squared weights, independent of the input values.
 *   z = (W o W) 1 + b o b;   R_in = (W o W)^T (R / stab(z))
 */
#include <stdlib.h>

#include "engine/engine.h"

int rule_wsquare(const rule_ctx *c)
{
    const glrp_layer *L = c->L;
    const glrp_linear *l = &L->lin;
    const size_t in1 = linear_in_numel(L), out1 = linear_out_numel(L);
    const size_t out = (size_t)c->n * out1;
    float *w2 = rule_buf(l->wsize), *b2 = rule_buf((size_t)l->cout), *ones = rule_buf(in1),
          *z = rule_buf(out1), *s = rule_buf(out);
    int rc = GLRP_ERR_RUNTIME;
    if (!w2 || !b2 || !ones || !z || !s)
        goto done;
    for (size_t e = 0; e < l->wsize; e++)
        w2[e] = l->W[e] * l->W[e];
    for (int k = 0; k < l->cout; k++)
        b2[k] = l->b[k] * l->b[k];
    for (size_t e = 0; e < in1; e++)
        ones[e] = 1.0f;
    linear_forward(L, w2, ones, z, 1, c->col);
    linear_add_bias(L, b2, z, 1);
    for (size_t e = 0; e < out; e++)
        s[e] = glrp_stab_div(c->R[e], z[e % out1], c->rule.eps);
    linear_transpose(L, w2, s, c->Rin, c->n, c->col);
    rc = 0;
done:
    free(w2), free(b2), free(ones), free(z), free(s);
    return rc;
}
