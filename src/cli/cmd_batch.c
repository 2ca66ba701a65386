/*
 * geolrp batch INPUTS... -m MODEL -O OUTDIR [explain options]: every scene of a list,
 * resumable, with a manifest; --shard I/N (or a Slurm job array) takes every N-th scene.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/scene_opts.h"
#include "pipeline/batch.h"
#include "pipeline/scene_names.h"
#include "util/error.h"

#define DEFAULT_EXTS "tif,tiff,vrt,jp2,img,nc"
#define MAX_EXTS 64

static void help(FILE *f)
{
    fprintf(f,
            "Usage: geolrp batch INPUTS... -m MODEL.onnx -O OUTDIR [--ext LIST]\n"
            "                    [--shard I/N] [--force] [--scores] [-q] [explain options]\n"
            "\n"
            "Explains every scene of INPUTS as 'geolrp explain' does, into OUTDIR/NAME.*,\n"
            "with a manifest (OUTDIR/manifest.json) rewritten after every scene. A rerun\n"
            "skips scenes whose outputs are verified up to date (same input size and time,\n"
            "model, options, outputs with their recorded SHA-256) and retries the others. A\n"
            "scene that fails is recorded with its error and the batch goes on.\n"
            "\n"
            "Inputs (sorted by path; a file reached twice counts once):\n"
            "  FILE                a scene, whatever its extension\n"
            "  FOLDER              its scenes, searched recursively by extension; hidden\n"
            "                      files and folders, links to folders and OUTDIR are left out\n"
            "  'PATTERN'           glob(3) pattern (quoted): folders searched, files kept by\n"
            "                      extension\n"
            "  @LIST, LIST.txt,    one path, folder or pattern per line (relative to the\n"
            "  LIST.lst            current folder); blank lines and '#' comments skipped\n"
            "  --ext LIST          extensions searched for, comma-separated, case-insensitive\n"
            "                      (default " DEFAULT_EXTS ")\n");
    scene_opts_help_input(f);
    fprintf(f,
            "Outputs, per scene (NAME: the file name without extension; the same name in\n"
            "several folders: the path below the folder they share, '/' as '__'):\n"
            "  -O, --outdir DIR    output folder, created if needed (required)\n"
            "  NAME.relevance.tif  relevance COG (+ NAME.relevance.qml)\n"
            "  NAME.classes.tif    class map COG (+ .qml, .tif.aux.xml with class names)\n"
            "  NAME.run.json       run report\n"
            "  NAME.bands.json/csv band importance (not with --target all)\n"
            "  --scores            also NAME.scores.tif, the probability of the mapped class\n"
            "                      (default: off)\n"
            "Batch:\n"
            "  --shard I/N         only scenes I, I+N, I+2N... (0-based) of the sorted list,\n"
            "                      with manifest OUTDIR/manifest.shard-I-of-N.json. Default:\n"
            "                      from SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT (or\n"
            "                      _MIN/_MAX) when set, else every scene\n"
            "  --force             redo scenes that are up to date (default: skip them)\n"
            "  --list              print the shard's scenes (INDEX, NAME, PATH; tab-separated)\n"
            "                      to stdout and stop: what a run would process, and how many\n"
            "                      (e.g. for the size of a Slurm array); -m, -O not needed\n"
            "  --overwrite         accepted for explain's sake; batch always replaces the\n"
            "                      outputs of the scenes it runs\n"
            "  -q, --quiet         no progress lines and no summary (failures are printed)\n");
    scene_opts_help_tiling(f);
    scene_opts_help_relevance(f);
    fprintf(f,
            "  -h, --help          this help\n"
            "See also 'geolrp merge-manifest OUTDIR' to combine the shards' manifests.\n"
            "Exit codes: 0 every scene done or up to date, 1 a scene failed (or the batch\n"
            "stopped), 2 bad input or usage (no scene found, bad option, model or config).\n");
}

enum { OPT_EXT = SCENE_OPT_END, OPT_SHARD, OPT_FORCE, OPT_SCORES, OPT_OVERWRITE, OPT_LIST,
       OPT_EXPLAIN_OUTPUT };

/* "tif,.TIFF" -> {"tif", "tiff"} in buf. */
static int parse_exts(const char *s, char *buf, size_t size, const char **exts, int *n)
{
    snprintf(buf, size, "%s", s);
    *n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == '.')
            t++;
        if (!*t || strchr(t, '/'))
            return usage_error("batch", "--ext: '%s' is not a list of extensions", s);
        if (*n == MAX_EXTS)
            return usage_error("batch", "--ext: more than %d extensions", MAX_EXTS);
        exts[(*n)++] = t;
    }
    if (*n == 0)
        return usage_error("batch", "--ext: no extension given");
    return 0;
}

/* mkdir -p */
static int make_dirs(const char *path, glrp_error *err)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: path too long", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            struct stat st;
            if (mkdir(buf, 0755) != 0 && (errno != EEXIST || stat(buf, &st) != 0 ||
                                          !S_ISDIR(st.st_mode)))
                return glrp_fail(err, GLRP_ERR_INPUT, "%s: cannot create the output folder: "
                                 "%s", buf, errno == EEXIST ? "not a folder" : strerror(errno));
            *p = c;
            if (!c)
                return 0;
        }
    }
}

static void print_list(const input_list *l, const shard_spec *sh)
{
    size_t first = sh->set ? (size_t)sh->index : 0, step = sh->set ? (size_t)sh->count : 1;
    for (size_t k = first; k < l->n; k += step)
        printf("%zu\t%s\t%s\n", k, l->v[k].name, l->v[k].path);
}

int cmd_batch(int argc, char **argv)
{
    static const struct option opts[] = {
        {"outdir", required_argument, 0, 'O'}, {"ext", required_argument, 0, OPT_EXT},
        {"shard", required_argument, 0, OPT_SHARD}, {"force", no_argument, 0, OPT_FORCE},
        {"scores", no_argument, 0, OPT_SCORES}, {"overwrite", no_argument, 0, OPT_OVERWRITE},
        {"list", no_argument, 0, OPT_LIST},
        {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'},
        {"output", required_argument, 0, OPT_EXPLAIN_OUTPUT},
        {"class-map", required_argument, 0, OPT_EXPLAIN_OUTPUT},
        {"report", required_argument, 0, OPT_EXPLAIN_OUTPUT},
        {"bands-report", required_argument, 0, OPT_EXPLAIN_OUTPUT},
        SCENE_LONG_OPTIONS, {0, 0, 0, 0}};
    batch_config b;
    rules_opts ro;
    memset(&b, 0, sizeof b);
    scene_job_init(&b.job);
    rules_opts_init(&ro);
    const char *ext_arg = DEFAULT_EXTS, *exts[MAX_EXTS];
    char ext_buf[1024];
    int n_exts = 0, c, rc = 0, list = 0;
    glrp_error err = {0};
    optind = 1;
    while (!rc && (c = getopt_long(argc, argv, "m:O:o:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'O': b.outdir = optarg; break;
        case 'q': b.quiet = 1; break;
        case 'h': help(stdout); rules_opts_free(&ro); return EXIT_OK;
        case OPT_EXT: ext_arg = optarg; break;
        case OPT_SHARD:
            if (shard_parse("--shard", optarg, &b.shard, &err))
                rc = usage_error("batch", "%s", err.msg);
            break;
        case OPT_FORCE: b.force = 1; break;
        case OPT_SCORES: b.scores = 1; break;
        case OPT_OVERWRITE: break;
        case OPT_LIST: list = 1; break;
        case 'o':
        case OPT_EXPLAIN_OUTPUT:
            rc = usage_error("batch", "%s: batch names the outputs itself (OUTDIR/NAME.*); "
                             "give -O OUTDIR", argv[optind - 1]);
            break;
        case '?': rc = usage_error("batch", "unknown option or missing value"); break;
        default:
            if ((rc = scene_opts_handle("batch", c, optarg, &b.job, &ro)) == 1)
                rc = usage_error("batch", "unknown option or missing value");
        }
    }
    if (!rc && !list && (!b.job.model || !b.outdir))
        rc = usage_error("batch", "-m MODEL and -O OUTDIR are required");
    if (!rc && optind >= argc)
        rc = usage_error("batch", "no INPUTS: give scene files, folders, patterns or lists");
    if (!rc)
        rc = parse_exts(ext_arg, ext_buf, sizeof ext_buf, exts, &n_exts);
    if (!rc)
        rc = scene_opts_finish(&b.job, &ro);
    if (!rc && !b.shard.set && shard_from_env(&b.shard, &err))
        rc = usage_error("batch", "%s", err.msg);
    if (rc) {
        rules_opts_free(&ro);
        return rc;
    }
    b.argc = argc, b.argv = argv;
    input_list l = {0};
    input_rules r = {.exts = exts, .n_exts = n_exts, .exclude_dir = b.outdir};
    long failed = 0;
    if (!list)
        rc = make_dirs(b.outdir, &err);
    if (!rc)
        rc = inputs_expand(argv + optind, argc - optind, &r, &l, &err);
    if (!rc && l.n == 0)
        rc = glrp_fail(&err, GLRP_ERR_INPUT, "no scene found in the INPUTS (extensions %s)",
                       ext_arg);
    if (!rc)
        rc = scene_names_assign(&l, &err);
    if (!rc && list)
        print_list(&l, &b.shard);
    else if (!rc)
        rc = batch_run(&b, &l, &failed, &err);
    if (rc)
        print_error(&err);
    inputs_free(&l);
    rules_opts_free(&ro);
    return rc ? rc : failed ? EXIT_RUNTIME : EXIT_OK;
}
