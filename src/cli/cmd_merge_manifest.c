/*
 * geolrp merge-manifest OUTDIR [-o FILE] [--shards N]: one manifest from the shards of a
 * batch, with the counts, and an exit code that says whether every scene is done.
 */
#include <getopt.h>
#include <string.h>

#include "cli/cli.h"
#include "pipeline/manifest_merge.h"

static void help(FILE *f)
{
    fprintf(f,
            "Usage: geolrp merge-manifest OUTDIR [-o FILE] [--shards N] [-q]\n"
            "\n"
            "Combines the manifests of the shards of one 'geolrp batch' in OUTDIR\n"
            "(manifest.shard-I-of-N.json, I = 0..N-1) into one manifest of the same form,\n"
            "checks that they were run over the same scene list, model and options and that\n"
            "every scene of the list appears exactly once, and counts the scenes done,\n"
            "skipped (up to date), failed, pending (not reached) and missing (its shard has\n"
            "no manifest). Each failed, pending or missing scene is listed on stderr.\n"
            "\n"
            "  OUTDIR              the batch's output folder\n"
            "  -o, --output FILE   merged manifest (default OUTDIR/manifest.merged.json)\n"
            "  --shards N          combine the manifests of N shards (default: the only N\n"
            "                      present; an unsharded run's manifest.json when there are\n"
            "                      no shard manifests)\n"
            "  -q, --quiet         only the errors\n"
            "  -h, --help          this help\n"
            "Exit codes: 0 every scene done or up to date, 1 a scene failed, pending or\n"
            "missing, 2 bad input or usage (no manifest, manifests that disagree).\n");
}

enum { OPT_SHARDS = 1 };

int cmd_merge_manifest(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'}, {"shards", required_argument, 0, OPT_SHARDS},
        {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *out = NULL;
    long shards = 0;
    int quiet = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': help(stdout); return EXIT_OK;
        case OPT_SHARDS:
            if (arg_int("--shards", optarg, 1, 1000000, &shards)) return EXIT_USAGE;
            break;
        default: return usage_error("merge-manifest", "unknown option or missing value");
        }
    }
    if (optind != argc - 1)
        return usage_error("merge-manifest", optind >= argc ? "expected OUTDIR"
                                                            : "unexpected argument '%s'",
                           argv[optind + 1 < argc ? optind + 1 : optind]);
    merge_result r;
    glrp_error err = {0};
    int rc = manifest_merge(argv[optind], shards, out, quiet, &r, &err);
    if (rc) {
        print_error(&err);
        return rc;
    }
    if (!quiet)
        fprintf(stderr, "geolrp merge-manifest: %ld scene%s in %ld shard%s: %ld done, %ld "
                "skipped, %ld failed, %ld pending, %ld missing\n", r.total,
                r.total == 1 ? "" : "s", r.shards, r.shards == 1 ? "" : "s", r.done,
                r.skipped, r.failed, r.pending, r.missing);
    return r.failed || r.pending || r.missing ? EXIT_RUNTIME : EXIT_OK;
}
