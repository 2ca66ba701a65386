/*
 * The rule options shared by every command that explains (--composite, --rule,
 * --epsilon, --gamma, --alpha, --beta, --low, --high, --maxpool).
 */
#ifndef GLRP_CLI_RULES_OPTS_H
#define GLRP_CLI_RULES_OPTS_H

#include <getopt.h>

#include "cli/cli.h"

#define RULES_MAX_BOUNDS 1024
#define RULES_MAX_OVERRIDES 256

typedef struct {
    glrp_rules rules;
    float low[RULES_MAX_BOUNDS], high[RULES_MAX_BOUNDS];
    int n_low, n_high;
    const char *rule_args[RULES_MAX_OVERRIDES];
    int n_rule_args;
} rules_opts;

/* Long options, to append to a command's table; ids start at RULES_OPT_BASE. */
enum { RULES_OPT_BASE = 1000, OPT_COMPOSITE = RULES_OPT_BASE, OPT_RULE, OPT_EPSILON, OPT_GAMMA,
       OPT_ALPHA, OPT_BETA, OPT_LOW, OPT_HIGH, OPT_MAXPOOL, RULES_OPT_END };
#define RULES_LONG_OPTIONS                                                                  \
    {"composite", required_argument, 0, OPT_COMPOSITE},                                    \
    {"rule", required_argument, 0, OPT_RULE},                                              \
    {"epsilon", required_argument, 0, OPT_EPSILON},                                        \
    {"gamma", required_argument, 0, OPT_GAMMA},                                            \
    {"alpha", required_argument, 0, OPT_ALPHA},                                            \
    {"beta", required_argument, 0, OPT_BETA},                                              \
    {"low", required_argument, 0, OPT_LOW},                                                \
    {"high", required_argument, 0, OPT_HIGH},                                              \
    {"maxpool", required_argument, 0, OPT_MAXPOOL}

#define RULES_HELP                                                                           \
    "  --composite NAME    rules per layer (default epsilon-plus-flat): epsilon,\n"            \
    "                      epsilon-plus, epsilon-plus-flat, epsilon-gamma-box,\n"              \
    "                      epsilon-alpha2-beta1, epsilon-alpha2-beta1-flat; or one rule for\n" \
    "                      every linear layer: lrp0, epsilon, zplus, alpha1-beta0,\n"          \
    "                      alpha2-beta1, gamma, wsquare, flat\n"                               \
    "  --rule NODE=RULE    override one linear layer, by ONNX node name or #K (K-th linear\n"  \
    "                      layer, see 'geolrp info'); RULE: epsilon, lrp0, zplus,\n"           \
    "                      alpha-beta, alpha1-beta0, alpha2-beta1, gamma, zbox, flat,\n"       \
    "                      wsquare. Repeatable; overrides win over the composite\n"            \
    "  --epsilon E         epsilon of the epsilon rule (default 1e-6; other rules use 1e-6)\n" \
    "  --gamma G           gamma of the gamma rule (default 0.25)\n"                           \
    "  --alpha A --beta B  alpha-beta rule of --rule NODE=alpha-beta (default 2, 1;\n"         \
    "                      alpha - beta must be 1)\n"                                          \
    "  --low L --high H    zbox bounds on the model input: one value or one per channel,\n"    \
    "                      comma-separated (default: per-channel min and max of the input)\n"  \
    "  --maxpool MODE      wta (winner takes all, default) or proportional\n"

void rules_opts_init(rules_opts *o);
/* Handles one option id of the table above; 1 when it was not a rules option. */
int rules_opts_handle(rules_opts *o, int id, const char *arg);
/* Resolves --rule arguments (after --alpha/--beta/--gamma/--epsilon are known). */
int rules_opts_finish(rules_opts *o);
void rules_opts_free(rules_opts *o);

#endif
