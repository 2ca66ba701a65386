/*
 * z+ rule: only the positive contributions count.
 *   u = W+ x+ + W- x- + b+;  s = R / stab(u);  R_in = x+ * W+^T s + x- * W-^T s.
 * With negative inputs, one stacked convolution (stack.c): u = [W+, W-] [x+; x-] and
 * [W+, W-]^T s = [g+; g-]. After a ReLU x- is zero and it is the plain layer with W+.
 */
#include <stdlib.h>

#include "engine/engine.h"

int rule_zplus(const rule_ctx *c)
{
    const glrp_layer *L = c->L;
    const size_t in = (size_t)c->n * linear_in_numel(L), out = (size_t)c->n * linear_out_numel(L);
    const int neg = any_negative(c->x, in), k_in = neg ? 2 : 1;
    const glrp_layer S = linear_stacked(L, k_in, 1);
    float *A = rule_buf(S.lin.wsize), *bp = rule_buf((size_t)L->lin.cout), *xp = rule_buf(in),
          *xn = rule_buf(in), *xs = rule_buf(in * k_in), *u = rule_buf(out);
    int rc = GLRP_ERR_RUNTIME;
    if (!A || !bp || !xp || !xn || !xs || !u)
        goto done;
    const float *blocks[] = {L->lin.Wpos, L->lin.Wneg};
    stack_weights(L, 1, k_in, blocks, A);
    for (int k = 0; k < L->lin.cout; k++)
        bp[k] = L->lin.b[k] > 0.0f ? L->lin.b[k] : 0.0f;

    split_sign(c->x, xp, xn, in);
    const float *xparts[] = {xp, xn};
    stack_channels(L, 0, k_in, xparts, xs, c->n);
    linear_forward(&S, A, xs, u, c->n, c->col);
    linear_add_bias(L, bp, u, c->n);
    stab_divide(c->R, u, c->rule.eps, u, out); /* u now holds s */
    rc = stacked_relevance_in(c, &S, A, u, k_in, xp, xn);
done:
    free(A), free(bp), free(xp), free(xn), free(xs), free(u);
    return rc;
}
