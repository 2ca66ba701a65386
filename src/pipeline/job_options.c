#include "pipeline/job_options.h"

#include <stdlib.h>

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *floats(const float *v, int n)
{
    if (!v)
        return json_null();
    json_t *a = json_array();
    for (int k = 0; a && k < n; k++)
        json_array_append_new(a, json_real(v[k]));
    return a;
}

/* --co in the order given (a later one overrides an earlier one of the same name). */
static json_t *creation_options(const scene_job *j)
{
    json_t *a = json_array();
    for (int k = 0; a && k < j->n_creation_options; k++)
        json_array_append_new(a, json_string(j->creation_options[k]));
    return a ? a : json_null();
}

static json_t *target_json(const scene_job *j)
{
    if (!j->target_set)
        return json_null();
    switch (j->target) {
    case TARGET_ALL: return json_string("all");
    case TARGET_INDEX: return json_integer(j->target_index);
    case TARGET_NAME: return json_string(j->target_name);
    default: return json_string("predicted");
    }
}

json_t *job_options_json(const scene_job *j, const char *config_path,
                         const char *config_sha256, int scores)
{
    static const char *blends[] = {"hann", "uniform", "center"};
    const glrp_rules *r = &j->rules;
    json_t *rules = json_array();
    for (int k = 0; rules && k < r->n_overrides; k++) {
        char name[96], buf[512];
        snprintf(buf, sizeof buf, "%s=%s", r->overrides[k].node,
                 glrp_rule_name(&r->overrides[k].rule, name, sizeof name));
        json_array_append_new(rules, json_string(buf));
    }
    json_t *o = json_pack(
        "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:f, s:f, s:f, s:f, s:s, s:o, "
        "s:o, s:o, s:i, s:b, s:o}",
        "config", str_or_null(config_path), "config_sha256", str_or_null(config_sha256),
        "bands", str_or_null(j->bands), "tile", j->tile ? json_integer(j->tile) : json_null(),
        "stride", j->stride ? json_integer(j->stride) : json_null(), "blend",
        j->blend_set ? json_string(blends[j->blend]) : json_null(), "target", target_json(j),
        "init", j->init_set ? json_string(glrp_init_name(j->init)) : json_null(),
        "min_valid", j->min_valid_set ? json_real(j->min_valid) : json_null(), "composite",
        j->composite_set ? json_string(r->composite) : json_null(), "epsilon", (double)r->eps,
        "gamma", (double)r->gamma, "alpha", (double)r->alpha, "beta", (double)r->beta,
        "maxpool", r->maxpool == GLRP_MAXPOOL_PROPORTIONAL ? "proportional" : "wta",
        "rules", rules ? rules : json_null(), "zbox_low", floats(r->low, r->n_bounds),
        "zbox_high", floats(r->high, r->n_bounds), "batch", j->batch, "scores", scores,
        "creation_options", creation_options(j));
    return o;
}

char *job_options_text(const json_t *options)
{
    return json_dumps(options, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(9) |
                                   JSON_ENCODE_ANY);
}
