/* Pieces every rule uses, and the dispatch from a rule kind to its function. */
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "util/error.h"

/* Not zeroed: every rule writes its scratch before reading it, and zeroing megabytes per
 * layer showed up in profiles. */
float *rule_buf(size_t count)
{
    size_t bytes;
    if (!glrp_mul_ok(count, sizeof(float), &bytes))
        return NULL;
    return malloc(bytes ? bytes : 1);
}

void split_sign(const float *x, float *pos, float *neg, size_t count)
{
    for (size_t e = 0; e < count; e++) {
        pos[e] = x[e] > 0.0f ? x[e] : 0.0f;
        neg[e] = x[e] < 0.0f ? x[e] : 0.0f;
    }
}

int any_negative(const float *x, size_t count)
{
    for (size_t e = 0; e < count; e++)
        if (x[e] < 0.0f)
            return 1;
    return 0;
}

void stab_divide(const float *R, const float *z, float eps, float *s, size_t count)
{
    for (size_t e = 0; e < count; e++)
        s[e] = glrp_stab_div(R[e], z[e], eps);
}

void repeat_sample(const float *one, float *out, size_t numel, int n)
{
    for (int s = 0; s < n; s++)
        memcpy(out + (size_t)s * numel, one, numel * sizeof *out);
}

int rule_apply(const rule_ctx *c)
{
    switch (c->rule.kind) {
    case GLRP_RULE_EPSILON: return rule_epsilon(c);
    case GLRP_RULE_ZPLUS: return rule_zplus(c);
    case GLRP_RULE_ALPHABETA: return rule_alphabeta(c);
    case GLRP_RULE_GAMMA: return rule_gamma(c);
    case GLRP_RULE_ZBOX: return rule_zbox(c);
    case GLRP_RULE_FLAT: return rule_flat(c);
    case GLRP_RULE_WSQUARE: return rule_wsquare(c);
    default: return GLRP_ERR_INPUT; /* pass and default never reach a linear layer */
    }
}
