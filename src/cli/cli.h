/* The geolrp command: shared pieces of the subcommands. */
#ifndef GLRP_CLI_CLI_H
#define GLRP_CLI_CLI_H

#include <stdio.h>

#include "geolrp/geolrp.h"
#include "util/progress.h"

/* Exit codes. */
enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

int cmd_info(int argc, char **argv);
int cmd_relevance(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_bands(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_batch(int argc, char **argv);
int cmd_merge_manifest(int argc, char **argv);
int cmd_merge(int argc, char **argv);

/* args.c: option values, each error naming the option. */
int arg_int(const char *opt, const char *s, long min, long max, long *out);
int arg_float(const char *opt, const char *s, float *out);
/* Comma-separated floats; *n gets the count (at most max). */
int arg_floats(const char *opt, const char *s, float *out, int max, int *n);
/* "--rule NODE=RULE" into an override. */
int arg_rule(const char *s, const glrp_rules *r, glrp_rule_override *o);
void print_error(const glrp_error *err);
int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));


#endif
