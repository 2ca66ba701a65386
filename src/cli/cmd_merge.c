/*
 * geolrp merge PARTS... -o OUT.tif: the part files of `geolrp explain --part I/N` into the
 * outputs of a single `geolrp explain` (src/pipeline/merge.c).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/scene_opts.h"
#include "mosaic/output.h"
#include "pipeline/scene_job.h"

static void help(FILE *f)
{
    fprintf(f,
            "Usage: geolrp merge PART... -o OUT.tif [--class-map F] [--scores F] [--report F]\n"
            "                    [--bands-report F] [--co NAME=VALUE]... [--threads N]\n"
            "                    [--overwrite] [-q]\n\n"
            "Mosaics the part files that 'geolrp explain SCENE --part I/N -o PART' wrote for\n"
            "I = 0..N-1 into the outputs a single 'geolrp explain SCENE' with the same options\n"
            "gives: the same relevance values bit for bit, the same class map, scores, .qml\n"
            "styles, metadata and report (times are summed over the parts). The parts must\n"
            "come from one split: same scene, model (SHA-256), options and N, each of\n"
            "0..N-1 exactly once; otherwise nothing is written and the error names the part\n"
            "at fault. Neither the scene nor the model is read.\n\n"
            "Outputs:\n"
            "  PART...             the part files, in any order (required)\n"
            "  -o, --output FILE   relevance COG (required)\n"
            "  --class-map FILE    class map COG (Byte), as explain --class-map\n"
            "  --scores FILE       probability of the mapped class (Float32 COG)\n"
            "  --report FILE       JSON run report, as explain --report\n"
            "  --bands-report FILE band importance JSON, as explain --bands-report\n"
            "  --overwrite         replace existing outputs (default: refuse)\n"
            "  --threads N         threads compressing the COGs (default 1)\n");
    scene_opts_help_co(f);
    fprintf(f,
            "  -q, --quiet         no progress on stderr\n"
            "  -h, --help          this help\n"
            "Exit codes: 0 success, 1 runtime failure, 2 bad input or usage (parts that do\n"
            "not belong together, a part missing or given twice, a damaged part file).\n");
}

/* After scene_opts.h's ids: --co and --threads are the scene commands' own. */
enum { OPT_CLASS_MAP = SCENE_OPT_END, OPT_SCORES, OPT_REPORT, OPT_BANDS_REPORT, OPT_OVERWRITE };

int cmd_merge(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'}, {"class-map", required_argument, 0, OPT_CLASS_MAP},
        {"scores", required_argument, 0, OPT_SCORES}, {"report", required_argument, 0, OPT_REPORT},
        {"bands-report", required_argument, 0, OPT_BANDS_REPORT},
        {"overwrite", no_argument, 0, OPT_OVERWRITE}, {"quiet", no_argument, 0, 'q'},
        {"co", required_argument, 0, OPT_CO}, {"threads", required_argument, 0, OPT_THREADS},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    merge_job mj;
    memset(&mj, 0, sizeof mj);
    int c;
    long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': mj.output = optarg; break;
        case 'q': mj.quiet = 1; break;
        case 'h': help(stdout); return EXIT_OK;
        case OPT_CLASS_MAP: mj.class_map = optarg; break;
        case OPT_SCORES: mj.scores = optarg; break;
        case OPT_REPORT: mj.report = optarg; break;
        case OPT_BANDS_REPORT: mj.bands_json = optarg; break;
        case OPT_OVERWRITE: mj.overwrite = 1; break;
        case OPT_CO:
            if (mj.n_creation_options == SCENE_MAX_CO)
                return usage_error("merge", "--co: at most %d creation options", SCENE_MAX_CO);
            mj.creation_options[mj.n_creation_options++] = optarg;
            break;
        case OPT_THREADS:
            if (arg_int("--threads", optarg, 1, 1024, &v)) return EXIT_USAGE;
            mj.threads = (int)v;
            break;
        default: return usage_error("merge", "unknown option or missing value");
        }
    }
    if (optind >= argc)
        return usage_error("merge", "expected the part files");
    if (!mj.output)
        return usage_error("merge", "-o OUTPUT is required");
    mj.parts = (const char *const *)argv + optind;
    mj.n_parts = argc - optind;
    const char *outs[] = {mj.output, mj.class_map, mj.scores, mj.report, mj.bands_json};
    for (int k = 0; k < 5; k++)
        for (int p = 0; outs[k] && p < mj.n_parts; p++)
            if (!strcmp(outs[k], mj.parts[p]))
                return usage_error("merge", "%s is both a part and an output", outs[k]);
    glrp_error err = {0};
    if (out_check_options(mj.creation_options, mj.n_creation_options, &err)) {
        print_error(&err);
        return EXIT_USAGE;
    }
    int rc = merge_run(&mj, &err);
    if (rc)
        print_error(&err);
    return rc;
}
