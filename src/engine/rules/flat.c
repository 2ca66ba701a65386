/*
 * Flat rule: every input of a receptive field gets an equal share, whatever its value.
 * Weights all 1, bias 0, input all 1: z = number of (non-padding) inputs in each field;
 * R_in = 1^T (R / stab(z)). Inputs that are zero still receive relevance.
 */
#include <stdlib.h>

#include "engine/engine.h"

int rule_flat(const rule_ctx *c)
{
    const glrp_layer *L = c->L;
    const size_t in1 = linear_in_numel(L), out1 = linear_out_numel(L);
    const size_t out = (size_t)c->n * out1;
    float *ones_w = rule_buf(L->lin.wsize), *ones_x = rule_buf(in1), *z = rule_buf(out1),
          *s = rule_buf(out);
    int rc = GLRP_ERR_RUNTIME;
    if (!ones_w || !ones_x || !z || !s)
        goto done;
    for (size_t e = 0; e < L->lin.wsize; e++)
        ones_w[e] = 1.0f;
    for (size_t e = 0; e < in1; e++)
        ones_x[e] = 1.0f;
    linear_forward(L, ones_w, ones_x, z, 1, c->col);
    for (size_t e = 0; e < out; e++)
        s[e] = glrp_stab_div(c->R[e], z[e % out1], c->rule.eps);
    linear_transpose(L, ones_w, s, c->Rin, c->n, c->col);
    rc = 0;
done:
    free(ones_w), free(ones_x), free(z), free(s);
    return rc;
}
