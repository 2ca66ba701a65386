/*
 * Composites: which rule each linear layer gets. The table is lrp-rules.md's; a "first
 * layer" is a linear layer with no linear layer between it and the model input.
 * Per-layer overrides (by node name or "#K") win over the composite.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "util/error.h"

/* Stabiliser of every rule except epsilon, whose eps the user sets. */
#define RULE_STAB 1e-6f

const char *const glrp_composite_names[] = {
    "epsilon", "epsilon-plus", "epsilon-plus-flat", "epsilon-gamma-box",
    "epsilon-alpha2-beta1", "epsilon-alpha2-beta1-flat",
    /* single-rule presets */
    "lrp0", "zplus", "alpha1-beta0", "alpha2-beta1", "gamma", "wsquare", "flat", NULL
};

void glrp_rules_init(glrp_rules *r)
{
    memset(r, 0, sizeof *r);
    snprintf(r->composite, sizeof r->composite, "epsilon-plus-flat");
    r->eps = 1e-6f;
    r->gamma = 0.25f;
    r->alpha = 2.0f;
    r->beta = 1.0f;
}

static glrp_rule make(glrp_rule_kind kind, float eps, float gamma, float alpha, float beta)
{
    glrp_rule r = {kind, eps, gamma, alpha, beta};
    return r;
}

int glrp_rule_parse(const char *name, const glrp_rules *r, glrp_rule *out)
{
    if (!strcmp(name, "epsilon")) *out = make(GLRP_RULE_EPSILON, r->eps, 0, 0, 0);
    else if (!strcmp(name, "lrp0")) *out = make(GLRP_RULE_EPSILON, 0.0f, 0, 0, 0);
    else if (!strcmp(name, "zplus")) *out = make(GLRP_RULE_ZPLUS, RULE_STAB, 0, 0, 0);
    else if (!strcmp(name, "alpha-beta"))
        *out = make(GLRP_RULE_ALPHABETA, RULE_STAB, 0, r->alpha, r->beta);
    else if (!strcmp(name, "alpha1-beta0")) *out = make(GLRP_RULE_ALPHABETA, RULE_STAB, 0, 1, 0);
    else if (!strcmp(name, "alpha2-beta1")) *out = make(GLRP_RULE_ALPHABETA, RULE_STAB, 0, 2, 1);
    else if (!strcmp(name, "gamma")) *out = make(GLRP_RULE_GAMMA, RULE_STAB, r->gamma, 0, 0);
    else if (!strcmp(name, "zbox")) *out = make(GLRP_RULE_ZBOX, RULE_STAB, 0, 0, 0);
    else if (!strcmp(name, "flat")) *out = make(GLRP_RULE_FLAT, RULE_STAB, 0, 0, 0);
    else if (!strcmp(name, "wsquare")) *out = make(GLRP_RULE_WSQUARE, RULE_STAB, 0, 0, 0);
    else return GLRP_ERR_INPUT;
    return 0;
}

static int override_matches(const glrp_rule_override *o, const glrp_layer *L)
{
    if (o->node[0] == '#') {
        char *end;
        long k = strtol(o->node + 1, &end, 10);
        return *end == '\0' && end != o->node + 1 && k == L->linear_index;
    }
    return strcmp(o->node, L->name) == 0;
}

glrp_rule composite_rule_for(const struct glrp_model *m, const glrp_rules *r,
                             const glrp_layer *L)
{
    (void)m;
    glrp_rule out;
    for (int k = r->n_overrides - 1; k >= 0; k--)
        if (override_matches(&r->overrides[k], L))
            return r->overrides[k].rule;
    if (glrp_rule_parse(r->composite, r, &out) == 0 && strcmp(r->composite, "epsilon") != 0)
        return out; /* single-rule preset */
    const char *c = r->composite;
    const int conv = L->kind == OP_CONV, first = L->is_first_linear;
    glrp_rule eps, body;
    glrp_rule_parse("epsilon", r, &eps);
    if (!strcmp(c, "epsilon"))
        return eps;
    if (!strcmp(c, "epsilon-plus") || !strcmp(c, "epsilon-plus-flat"))
        glrp_rule_parse("zplus", r, &body);
    else if (!strcmp(c, "epsilon-gamma-box"))
        glrp_rule_parse("gamma", r, &body);
    else
        glrp_rule_parse("alpha2-beta1", r, &body);
    if (first) {
        int flat_first = strstr(c, "-flat") != NULL;
        if (flat_first)
            glrp_rule_parse("flat", r, &out);
        else if (!conv)
            out = eps;
        else if (!strcmp(c, "epsilon-gamma-box"))
            glrp_rule_parse("zbox", r, &out);
        else
            out = body;
        return out;
    }
    return conv ? body : eps;
}

static int composite_known(const char *name)
{
    for (int k = 0; glrp_composite_names[k]; k++)
        if (!strcmp(glrp_composite_names[k], name))
            return 1;
    return 0;
}

int glrp_rules_need_bounds(const glrp_model *m, const glrp_rules *r)
{
    for (int k = 0; k < m->n_layers; k++) {
        const glrp_layer *L = &m->layers[k];
        if ((L->kind == OP_DENSE || L->kind == OP_CONV) &&
            composite_rule_for(m, r, L).kind == GLRP_RULE_ZBOX)
            return 1;
    }
    return 0;
}

int glrp_rules_check(const glrp_model *m, const glrp_rules *r, glrp_error *err)
{
    if (!composite_known(r->composite)) {
        char list[512] = "";
        for (int k = 0; glrp_composite_names[k]; k++) {
            strncat(list, k ? ", " : "", sizeof list - strlen(list) - 1);
            strncat(list, glrp_composite_names[k], sizeof list - strlen(list) - 1);
        }
        return glrp_fail(err, GLRP_ERR_INPUT, "--composite: unknown composite '%s' (known: %s)",
                         r->composite, list);
    }
    if (!(r->eps >= 0.0f) || !isfinite(r->eps))
        return glrp_fail(err, GLRP_ERR_INPUT, "--epsilon must be >= 0 (got %g)", r->eps);
    if (!(r->gamma >= 0.0f) || !isfinite(r->gamma))
        return glrp_fail(err, GLRP_ERR_INPUT, "--gamma must be >= 0 (got %g)", r->gamma);
    if (!(r->alpha >= 0.0f) || !(r->beta >= 0.0f) || fabsf(r->alpha - r->beta - 1.0f) > 1e-6f)
        return glrp_fail(err, GLRP_ERR_INPUT, "--alpha/--beta: the alpha-beta rule needs "
                         "alpha >= 0, beta >= 0 and alpha - beta = 1 (got alpha %g, beta %g)",
                         r->alpha, r->beta);
    for (int k = 0; k < r->n_overrides; k++) {
        const glrp_rule_override *o = &r->overrides[k];
        int found = 0;
        for (int j = 0; j < m->n_layers && !found; j++) {
            const glrp_layer *L = &m->layers[j];
            found = (L->kind == OP_DENSE || L->kind == OP_CONV) && override_matches(o, L);
        }
        if (!found)
            return glrp_fail(err, GLRP_ERR_INPUT, "--rule %s: no linear layer (Conv, Gemm, "
                             "MatMul) of %s is named '%s' (see `geolrp info` for names and "
                             "#indices)", o->node, m->path, o->node);
        if (o->rule.kind == GLRP_RULE_PASS)
            return glrp_fail(err, GLRP_ERR_INPUT, "--rule %s: 'pass' applies to element-wise "
                             "layers only, not to a linear layer", o->node);
    }
    for (int k = 0; k < m->n_layers; k++) {
        const glrp_layer *L = &m->layers[k];
        if ((L->kind == OP_DENSE || L->kind == OP_CONV) && !L->is_first_linear &&
            composite_rule_for(m, r, L).kind == GLRP_RULE_ZBOX)
            return glrp_fail(err, GLRP_ERR_INPUT, "layer '%s': the zbox rule needs bounds on "
                             "its input and applies only to a first layer", L->name);
    }
    if (glrp_rules_need_bounds(m, r)) {
        const glrp_tensor *in = &m->tensors[m->input];
        int channels = (int)in->dims[0];
        if (!r->low || !r->high || (r->n_bounds != 1 && r->n_bounds != channels))
            return glrp_fail(err, GLRP_ERR_INPUT, "--low/--high: the zbox rule needs bounds, "
                             "one value or one per input channel (%d)", channels);
        for (int k = 0; k < r->n_bounds; k++)
            if (!(r->low[k] <= r->high[k]))
                return glrp_fail(err, GLRP_ERR_INPUT, "--low/--high: low %g above high %g "
                                 "for channel %d", r->low[k], r->high[k], k + 1);
    }
    return 0;
}

static const glrp_layer *linear_layer(const glrp_model *m, int k)
{
    for (int j = 0; j < m->n_layers; j++)
        if (m->layers[j].linear_index == k)
            return &m->layers[j];
    return NULL;
}

int glrp_model_num_linear(const glrp_model *m)
{
    return m->n_linear;
}

int glrp_model_linear_is_first(const glrp_model *m, int k)
{
    const glrp_layer *L = linear_layer(m, k);
    return L && L->is_first_linear;
}

glrp_rule glrp_rule_for_linear(const glrp_model *m, const glrp_rules *r, int k)
{
    const glrp_layer *L = linear_layer(m, k);
    glrp_rule none = {GLRP_RULE_PASS, 0, 0, 0, 0};
    return L ? composite_rule_for(m, r, L) : none;
}
