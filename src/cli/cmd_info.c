/* geolrp info MODEL.onnx: nodes, shapes, parameters, metadata and rules per layer. */
#include <getopt.h>
#include <string.h>

#include "cli/rules_opts.h"

static void help(FILE *f)
{
    fprintf(f,
            "Usage: geolrp info MODEL.onnx [--composite NAME] [--rule NODE=RULE ...]\n"
            "\n"
            "Shows how geolrp reads an ONNX model: input and output shapes, every layer\n"
            "after folding (BatchNorm into weights, constants, shape arithmetic), the\n"
            "parameter count, the ONNX metadata, and the LRP rule each layer gets.\n"
            "\n"
            "Options:\n"
            RULES_HELP
            "  -h, --help          this help\n");
}

int cmd_info(int argc, char **argv)
{
    static const struct option opts[] = {RULES_LONG_OPTIONS, {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    rules_opts ro;
    rules_opts_init(&ro);
    int c, rc;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            help(stdout);
            return EXIT_OK;
        }
        if (c == '?' || rules_opts_handle(&ro, c, optarg) != 0)
            return usage_error("info", "bad option");
    }
    if (optind != argc - 1)
        return usage_error("info", "expected one MODEL.onnx");
    if ((rc = rules_opts_finish(&ro)) != 0) {
        rules_opts_free(&ro);
        return rc;
    }
    glrp_error err = {0};
    glrp_model *m;
    if (glrp_model_load(argv[optind], 1, &m, &err)) {
        print_error(&err);
        rules_opts_free(&ro);
        return err.code;
    }
    /* Bounds are not needed to name rules; check everything else. */
    glrp_rules check = ro.rules;
    float one = 0.0f;
    if (!check.low) {
        check.low = check.high = &one;
        check.n_bounds = 1;
    }
    if (glrp_rules_check(m, &check, &err)) {
        print_error(&err);
        rc = err.code;
    } else {
        glrp_model_describe(m, &ro.rules, stdout);
        rc = EXIT_OK;
    }
    glrp_model_free(m);
    rules_opts_free(&ro);
    return rc;
}
