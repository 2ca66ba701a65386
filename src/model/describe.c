/* `geolrp info`: what the importer made of a model, and which rule each layer gets. */
#include <stdio.h>
#include <string.h>

#include "engine/engine.h"

static void shape_str(const glrp_tensor *t, char *buf, size_t size)
{
    int n = snprintf(buf, size, "(");
    for (int k = 0; k < t->rank && (size_t)n < size; k++)
        n += snprintf(buf + n, size - (size_t)n, "%s%lld", k ? ", " : "", (long long)t->dims[k]);
    if ((size_t)n < size)
        snprintf(buf + n, size - (size_t)n, ")");
}

static const char *rule_name(const glrp_rule *r, char *buf, size_t size)
{
    switch (r->kind) {
    case GLRP_RULE_EPSILON:
        if (r->eps == 0.0f)
            return "lrp0";
        snprintf(buf, size, "epsilon(%g)", r->eps);
        return buf;
    case GLRP_RULE_ZPLUS: return "zplus";
    case GLRP_RULE_ALPHABETA:
        snprintf(buf, size, "alpha-beta(%g, %g)", r->alpha, r->beta);
        return buf;
    case GLRP_RULE_GAMMA:
        snprintf(buf, size, "gamma(%g)", r->gamma);
        return buf;
    case GLRP_RULE_ZBOX: return "zbox";
    case GLRP_RULE_FLAT: return "flat";
    case GLRP_RULE_WSQUARE: return "wsquare";
    default: return "pass";
    }
}

const char *glrp_rule_name(const glrp_rule *r, char *buf, size_t size)
{
    return rule_name(r, buf, size);
}

static const char *layer_rule(const glrp_model *m, const glrp_rules *r, const glrp_layer *L,
                              char *buf, size_t size)
{
    switch (L->kind) {
    case OP_DENSE:
    case OP_CONV: {
        glrp_rule rule = composite_rule_for(m, r, L);
        return rule_name(&rule, buf, size);
    }
    case OP_MAXPOOL:
        return r->maxpool == GLRP_MAXPOOL_PROPORTIONAL ? "proportional (norm)"
                                                        : "winner takes all";
    case OP_AVGPOOL:
    case OP_GLOBALAVGPOOL:
    case OP_ADD:
        return "norm";
    case OP_CONCAT:
        return "split";
    case OP_PAD:
        return "crop";
    default:
        return "pass";
    }
}

void glrp_model_describe(const glrp_model *m, const glrp_rules *r, void *file)
{
    FILE *f = file;
    char a[96], b[96], rb[64];
    const glrp_tensor *in = &m->tensors[m->input], *out = &m->tensors[m->output];
    fprintf(f, "Model: %s\n", m->path);
    fprintf(f, "Producer: %s, ONNX opset %lld\n", m->producer[0] ? m->producer : "(unknown)",
            (long long)m->opset);
    shape_str(in, a, sizeof a);
    shape_str(out, b, sizeof b);
    fprintf(f, "Input: '%s' N x %s\n", in->name, a);
    fprintf(f, "Output: '%s' N x %s%s\n", out->name, b,
            m->final_softmax ? " (final Softmax removed: relevance starts at the logits)" : "");
    fprintf(f, "Parameters: %zu in %d linear layers\n", m->n_params, m->n_linear);
    if (m->n_meta) {
        fprintf(f, "Metadata:\n");
        for (int k = 0; k < m->n_meta; k++)
            fprintf(f, "  %s = %s\n", m->meta[k].key, m->meta[k].value);
    }
    fprintf(f, "Layers (rules of composite %s%s):\n", r->composite,
            r->n_overrides ? " with overrides" : "");
    fprintf(f, "  %-4s %-32s %-18s %-16s %-16s %s\n", "#", "node", "op", "input", "output",
            "rule");
    for (int k = 0; k < m->n_layers; k++) {
        const glrp_layer *L = &m->layers[k];
        char idx[16] = "";
        if (L->linear_index >= 0)
            snprintf(idx, sizeof idx, "#%d", L->linear_index);
        shape_str(&m->tensors[L->in[0]], a, sizeof a);
        shape_str(&m->tensors[L->out], b, sizeof b);
        fprintf(f, "  %-4s %-32s %-18s %-16s %-16s %s%s\n", idx, L->name, L->op_type, a, b,
                layer_rule(m, r, L, rb, sizeof rb), L->is_first_linear ? " (first layer)" : "");
    }
}
