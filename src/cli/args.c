#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int arg_int(const char *opt, const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "geolrp: %s: '%s' is not an integer from %ld to %ld\n", opt, s, min, max);
        return EXIT_USAGE;
    }
    *out = v;
    return 0;
}

int arg_float(const char *opt, const char *s, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) {
        fprintf(stderr, "geolrp: %s: '%s' is not a finite number\n", opt, s);
        return EXIT_USAGE;
    }
    *out = (float)v;
    return 0;
}

int arg_floats(const char *opt, const char *s, float *out, int max, int *n)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", s);
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (*n == max) {
            fprintf(stderr, "geolrp: %s: more than %d values\n", opt, max);
            return EXIT_USAGE;
        }
        if (arg_float(opt, tok, &out[*n]))
            return EXIT_USAGE;
        (*n)++;
    }
    if (*n == 0) {
        fprintf(stderr, "geolrp: %s: no value given\n", opt);
        return EXIT_USAGE;
    }
    return 0;
}

int arg_rule(const char *s, const glrp_rules *r, glrp_rule_override *o)
{
    const char *eq = strrchr(s, '=');
    if (!eq || eq == s || !eq[1]) {
        fprintf(stderr, "geolrp: --rule: '%s' is not NODE=RULE\n", s);
        return EXIT_USAGE;
    }
    if (glrp_rule_parse(eq + 1, r, &o->rule)) {
        fprintf(stderr, "geolrp: --rule %s: unknown rule '%s' (known: epsilon, lrp0, zplus, "
                "alpha-beta, alpha1-beta0, alpha2-beta1, gamma, zbox, flat, wsquare)\n", s,
                eq + 1);
        return EXIT_USAGE;
    }
    o->node = strndup(s, (size_t)(eq - s));
    if (!o->node) {
        fprintf(stderr, "geolrp: out of memory\n");
        return EXIT_RUNTIME;
    }
    return 0;
}

void print_error(const glrp_error *err)
{
    fprintf(stderr, "geolrp: error: %s\n", err->msg);
}

int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "geolrp %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'geolrp %s --help'.\n", cmd);
    return EXIT_USAGE;
}
