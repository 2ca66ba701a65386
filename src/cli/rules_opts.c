#include "cli/rules_opts.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"

void rules_opts_init(rules_opts *o)
{
    memset(o, 0, sizeof *o);
    glrp_rules_init(&o->rules);
}

int rules_opts_handle(rules_opts *o, int id, const char *arg)
{
    glrp_rules *r = &o->rules;
    switch (id) {
    case OPT_COMPOSITE:
        if (strlen(arg) >= sizeof r->composite) {
            fprintf(stderr, "geolrp: --composite: unknown composite '%s'\n", arg);
            return EXIT_USAGE;
        }
        snprintf(r->composite, sizeof r->composite, "%s", arg);
        return 0;
    case OPT_RULE:
        if (o->n_rule_args == RULES_MAX_OVERRIDES) {
            fprintf(stderr, "geolrp: --rule: at most %d overrides\n", RULES_MAX_OVERRIDES);
            return EXIT_USAGE;
        }
        o->rule_args[o->n_rule_args++] = arg;
        return 0;
    case OPT_EPSILON: return arg_float("--epsilon", arg, &r->eps);
    case OPT_GAMMA: return arg_float("--gamma", arg, &r->gamma);
    case OPT_ALPHA: return arg_float("--alpha", arg, &r->alpha);
    case OPT_BETA: return arg_float("--beta", arg, &r->beta);
    case OPT_LOW: return arg_floats("--low", arg, o->low, RULES_MAX_BOUNDS, &o->n_low);
    case OPT_HIGH: return arg_floats("--high", arg, o->high, RULES_MAX_BOUNDS, &o->n_high);
    case OPT_MAXPOOL:
        if (!strcmp(arg, "wta"))
            r->maxpool = GLRP_MAXPOOL_WTA;
        else if (!strcmp(arg, "proportional"))
            r->maxpool = GLRP_MAXPOOL_PROPORTIONAL;
        else {
            fprintf(stderr, "geolrp: --maxpool: '%s' is not wta or proportional\n", arg);
            return EXIT_USAGE;
        }
        return 0;
    default:
        return 1;
    }
}

int rules_opts_finish(rules_opts *o)
{
    glrp_rules *r = &o->rules;
    if ((o->n_low > 0) != (o->n_high > 0) || o->n_low != o->n_high) {
        fprintf(stderr, "geolrp: --low and --high go together, with as many values each\n");
        return EXIT_USAGE;
    }
    if (o->n_low) {
        r->low = o->low;
        r->high = o->high;
        r->n_bounds = o->n_low;
    }
    if (o->n_rule_args) {
        r->overrides = calloc((size_t)o->n_rule_args, sizeof *r->overrides);
        if (!r->overrides) {
            fprintf(stderr, "geolrp: out of memory\n");
            return EXIT_RUNTIME;
        }
        for (int k = 0; k < o->n_rule_args; k++) {
            int rc = arg_rule(o->rule_args[k], r, &r->overrides[k]);
            r->n_overrides = k + (rc == 0);
            if (rc)
                return rc;
        }
    }
    return 0;
}

void rules_opts_free(rules_opts *o)
{
    for (int k = 0; k < o->rules.n_overrides; k++)
        free(o->rules.overrides[k].node);
    free(o->rules.overrides);
    o->rules.overrides = NULL;
    o->rules.n_overrides = 0;
}
