/*
 * z^B (box) rule for a first layer whose inputs lie in [l, h]:
 *   z = W x - W+ l - W- h   (the bias cancels);   s = R / stab(z)
 *   R_in = x * W^T s - l * W+^T s - h * W-^T s
 * l and h are the same for every sample, so W+ l and W- h are computed once. The three
 * transposed products are one stacked convolution (stack.c): [W, W+, W-]^T s.
 */
#include <stdlib.h>

#include "engine/engine.h"

int rule_zbox(const rule_ctx *c)
{
    const glrp_layer *L = c->L;
    const glrp_linear *l = &L->lin;
    const size_t in1 = linear_in_numel(L), out1 = linear_out_numel(L);
    const size_t in = (size_t)c->n * in1, out = (size_t)c->n * out1;
    const glrp_layer S = linear_stacked(L, 3, 1);
    float *z = rule_buf(out), *lo = rule_buf(out1), *hi = rule_buf(out1),
          *A = rule_buf(S.lin.wsize), *gs = rule_buf(3 * in), *g = rule_buf(in),
          *gl = rule_buf(in), *gh = rule_buf(in);
    int rc = GLRP_ERR_RUNTIME;
    if (!z || !lo || !hi || !A || !gs || !g || !gl || !gh)
        goto done;
    linear_forward(L, l->W, c->x, z, c->n, c->col);
    linear_forward(L, l->Wpos, c->low, lo, 1, c->col);
    linear_forward(L, l->Wneg, c->high, hi, 1, c->col);
    for (size_t e = 0; e < out; e++)
        z[e] = glrp_stab_div(c->R[e], z[e] - lo[e % out1] - hi[e % out1], c->rule.eps);

    const float *blocks[] = {l->W, l->Wpos, l->Wneg};
    stack_weights(L, 1, 3, blocks, A);
    linear_transpose(&S, A, z, gs, c->n, c->col);
    float *gparts[] = {g, gl, gh};
    unstack_channels(L, 0, 3, gs, gparts, c->n);
    for (size_t e = 0; e < in; e++)
        c->Rin[e] = c->x[e] * g[e] - c->low[e % in1] * gl[e] - c->high[e % in1] * gh[e];
    rc = 0;
done:
    free(z), free(lo), free(hi), free(A), free(gs), free(g), free(gl), free(gh);
    return rc;
}
