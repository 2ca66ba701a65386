/*
 * The scene commands, which share reading, tiling and rule options:
 * geolrp explain SCENE -m MODEL -o OUT.tif: relevance layers for a whole scene.
 * geolrp classify SCENE -m MODEL -o CLASSES.tif: the class map (and scores) only.
 * geolrp bands SCENE -m MODEL --json F: band importance, optionally with occlusion.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/scene_opts.h"
#include "pipeline/shard.h"

enum { MODE_EXPLAIN, MODE_CLASSIFY, MODE_BANDS };

static void help(FILE *f, int mode)
{
    int classify = mode == MODE_CLASSIFY;
    if (mode == MODE_BANDS)
        fprintf(f, "Usage: geolrp bands SCENE -m MODEL.onnx [--json F] [--csv F] [--plot F.svg]\n"
                   "                    [--occlusion [--baseline mean|VALUE]] [options]\n\n"
                   "Band importance: per input band, over all valid pixels and per predicted\n"
                   "class, the sum of relevance, of |R|, of its positive and negative parts,\n"
                   "the share of total |R|, the mean per valid pixel and the rank. Reads, tiles\n"
                   "and explains exactly as 'geolrp explain' (default composite\n"
                   "epsilon-gamma-box; a flat first layer would erase what this measures).\n\n"
                   "Band importance:\n"
                   "  --json FILE         the table as JSON (with per_class and rules)\n"
                   "  --csv FILE          the same columns as CSV (class 'all' first)\n"
                   "  --plot FILE.svg     bar chart of the shares, positive and negative, per class\n"
                   "  --occlusion         also replace one band at a time by a baseline in every\n"
                   "                      tile and record the mean drop of the target score, and\n"
                   "                      the Spearman correlation of the two rankings\n"
                   "  --baseline B        occlusion value: mean (default: each band's scene mean)\n"
                   "                      or a number in scene units, normalised like the data\n\n");
    else if (classify)
        fprintf(f, "Usage: geolrp classify SCENE -m MODEL.onnx -o CLASSES.tif [options]\n\n"
                   "Classifies a scene tile by tile and writes the class map (Byte COG with\n"
                   "colour table, class names and a .qml); --scores adds the probability.\n\n");
    else
        fprintf(f, "Usage: geolrp explain SCENE -m MODEL.onnx -o OUT.tif [options]\n"
                   "       geolrp explain SCENE -m MODEL.onnx --part I/N -o PART [options]\n\n"
                   "Explains a scene tile by tile with LRP and mosaics the relevance into a\n"
                   "Cloud Optimized GeoTIFF on the scene's grid: band 1 relevance_total, then\n"
                   "one band per input band (relevance_<band name>); a .qml beside it styles\n"
                   "it in QGIS (blue negative, white zero, red positive).\n\n");
    fprintf(f, "Input:\n"
               "  SCENE               any raster GDAL opens (GeoTIFF, VRT, JP2, NETCDF:file:var)\n");
    scene_opts_help_input(f);
    scene_opts_help_tiling(f);
    fprintf(f, "Outputs:\n");
    if (mode == MODE_EXPLAIN)
        fprintf(f, "  -o, --output FILE   relevance COG (required); with --part, the part file\n"
                   "  --class-map FILE    class map COG (Byte), argmax of the blended tile\n"
                   "                      probabilities\n"
                   "  --bands-report FILE band importance JSON computed in the same pass\n"
                   "                      (see 'geolrp bands')\n"
                   "  --part I/N          compute only part I (0-based) of N: a contiguous,\n"
                   "                      balanced range of tile rows; -o is then a part file and\n"
                   "                      'geolrp merge' makes the outputs from all N (default:\n"
                   "                      the whole scene). --part slurm: I and N from\n"
                   "                      SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT (or\n"
                   "                      _MIN/_MAX); without --part they are ignored.\n"
                   "                      See docs/merge.md\n");
    else if (classify)
        fprintf(f, "  -o, --output FILE   class map COG (required)\n");
    else
        fprintf(f, "  --class-map FILE    class map COG (Byte) as in explain\n");
    fprintf(f,
            "  --scores FILE       probability of the mapped class (Float32 COG)\n"
            "  --report FILE       JSON: tiles, times, class counts, conservation, rules\n"
            "  --overwrite         replace existing outputs (default: refuse)\n"
            "  -q, --quiet         no progress on stderr\n");
    if (!classify)
        scene_opts_help_relevance(f);
    fprintf(f, "  -h, --help          this help\n"
               "Exit codes: 0 success, 1 runtime failure, 2 bad input or usage.\n");
}

enum { OPT_CLASS_MAP = SCENE_OPT_END, OPT_SCORES, OPT_REPORT, OPT_OVERWRITE, OPT_BANDS_REPORT,
       OPT_JSON, OPT_CSV, OPT_PLOT, OPT_OCCLUSION, OPT_BASELINE, OPT_PART };

/* "I/N" with 0 <= I < N (the same parser as batch's --shard), or "slurm": the task's
 * place in its Slurm job array. */
static int parse_part(const char *s, scene_job *j)
{
    shard_spec sp;
    glrp_error err = {0};
    if (!strcmp(s, "slurm")) {
        if (shard_from_env(&sp, &err))
            return usage_error("explain", "--part slurm: %s", err.msg);
        if (!sp.set)
            return usage_error("explain", "--part slurm: SLURM_ARRAY_TASK_ID is not set (not "
                               "a job array task?)");
    } else if (shard_parse("--part", s, &sp, &err)) {
        return usage_error("explain", "%s", err.msg);
    }
    if (sp.count > 1000000)
        return usage_error("explain", "--part %s: at most 1000000 parts", s);
    j->part_index = (int)sp.index, j->part_count = (int)sp.count;
    return 0;
}

static int parse(int argc, char **argv, int mode, scene_job *j, rules_opts *ro)
{
    const int classify = mode == MODE_CLASSIFY;
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'},
        {"class-map", required_argument, 0, OPT_CLASS_MAP},
        {"scores", required_argument, 0, OPT_SCORES}, {"report", required_argument, 0, OPT_REPORT},
        {"overwrite", no_argument, 0, OPT_OVERWRITE}, {"quiet", no_argument, 0, 'q'},
        {"bands-report", required_argument, 0, OPT_BANDS_REPORT},
        {"json", required_argument, 0, OPT_JSON}, {"csv", required_argument, 0, OPT_CSV},
        {"plot", required_argument, 0, OPT_PLOT}, {"occlusion", no_argument, 0, OPT_OCCLUSION},
        {"baseline", required_argument, 0, OPT_BASELINE}, {"part", required_argument, 0, OPT_PART},
        {"help", no_argument, 0, 'h'}, SCENE_LONG_OPTIONS, {0, 0, 0, 0}};
    const char *cmd = mode == MODE_BANDS ? "bands" : classify ? "classify" : "explain";
    const char *out = NULL;
    int c, rc;
    float f;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:o:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'q': j->quiet = 1; break;
        case 'h': help(stdout, mode); return -1;
        case OPT_CLASS_MAP: j->class_map = optarg; break;
        case OPT_SCORES: j->scores = optarg; break;
        case OPT_REPORT: j->report = optarg; break;
        case OPT_OVERWRITE: j->overwrite = 1; break;
        case OPT_PART:
            if (mode != MODE_EXPLAIN)
                return usage_error(cmd, "--part applies to 'geolrp explain'");
            if (parse_part(optarg, j))
                return EXIT_USAGE;
            break;
        case OPT_BANDS_REPORT:
        case OPT_JSON:
        case OPT_CSV:
        case OPT_PLOT:
        case OPT_OCCLUSION:
        case OPT_BASELINE:
            if ((c == OPT_BANDS_REPORT) != (mode == MODE_EXPLAIN) && mode != MODE_BANDS)
                return usage_error(cmd, "%s does not apply to 'geolrp %s'", argv[optind - 1],
                                   cmd);
            if (c == OPT_BANDS_REPORT && mode == MODE_BANDS)
                return usage_error(cmd, "use --json with 'geolrp bands'");
            if (c == OPT_BANDS_REPORT || c == OPT_JSON) j->bands_json = optarg;
            else if (c == OPT_CSV) j->bands_csv = optarg;
            else if (c == OPT_PLOT) j->bands_svg = optarg;
            else if (c == OPT_OCCLUSION) j->occlusion = 1;
            else if (!strcmp(optarg, "mean")) j->baseline_set = 0;
            else {
                if (arg_float("--baseline", optarg, &f)) return EXIT_USAGE;
                j->baseline_set = 1, j->baseline = f;
            }
            break;
        case '?': return usage_error(cmd, "unknown option or missing value");
        default:
            if (classify && c >= RULES_OPT_BASE && c < RULES_OPT_END)
                return usage_error(cmd, "rule options apply to 'geolrp explain'");
            if ((rc = scene_opts_handle(cmd, c, optarg, j, ro)))
                return rc == 1 ? usage_error(cmd, "unknown option or missing value") : rc;
        }
    }
    if (optind != argc - 1)
        return usage_error(cmd, optind >= argc ? "expected one SCENE" : "unexpected argument "
                           "'%s'", argv[optind + (optind < argc - 1)]);
    j->scene = argv[optind];
    if (mode == MODE_BANDS) {
        if (!j->model)
            return usage_error(cmd, "-m MODEL is required");
        if (out)
            return usage_error(cmd, "bands writes --json, --csv and --plot, not -o");
        if (!j->bands_json && !j->bands_csv && !j->bands_svg)
            return usage_error(cmd, "give at least one of --json, --csv, --plot");
    } else if (!j->model || !out) {
        return usage_error(cmd, "-m MODEL and -o OUTPUT are required");
    }
    if (mode == MODE_BANDS) {
    } else if (classify) {
        if (j->class_map)
            return usage_error(cmd, "-o is the class map; --class-map is for explain");
        j->class_map = out;
    } else if (j->part_count) {
        if (j->class_map || j->scores || j->report || j->bands_json)
            return usage_error(cmd, "with --part, -o is the part file; give --class-map, "
                               "--scores, --report and --bands-report to 'geolrp merge'");
        j->part = out;
    } else {
        j->output = out;
    }
    return scene_opts_finish(j, ro);
}

static int run(int argc, char **argv, int mode)
{
    scene_job j;
    rules_opts ro;
    scene_job_init(&j);
    rules_opts_init(&ro);
    int rc = parse(argc, argv, mode, &j, &ro);
    if (rc == 0) {
        glrp_error err = {0};
        rc = scene_job_run(&j, &err);
        if (rc)
            print_error(&err);
    } else if (rc < 0) {
        rc = EXIT_OK;
    }
    rules_opts_free(&ro);
    return rc;
}

int cmd_explain(int argc, char **argv)
{
    return run(argc, argv, MODE_EXPLAIN);
}

int cmd_classify(int argc, char **argv)
{
    return run(argc, argv, MODE_CLASSIFY);
}

int cmd_bands(int argc, char **argv)
{
    return run(argc, argv, MODE_BANDS);
}
