#include "cli/scene_opts.h"

#include <string.h>

#include "mosaic/output.h"

int scene_opts_handle(const char *cmd, int id, const char *arg, scene_job *j, rules_opts *ro)
{
    long v;
    float f;
    switch (id) {
    case 'm': j->model = arg; return 0;
    case OPT_CONFIG: j->config = arg; return 0;
    case OPT_BANDS: j->bands = arg; return 0;
    case OPT_TILE:
        if (arg_int("--tile", arg, 1, 1 << 16, &v)) return EXIT_USAGE;
        j->tile = (int)v;
        return 0;
    case OPT_STRIDE:
        if (arg_int("--stride", arg, 1, 1 << 16, &v)) return EXIT_USAGE;
        j->stride = (int)v;
        return 0;
    case OPT_BLEND:
        j->blend_set = 1;
        if (!strcmp(arg, "hann")) j->blend = BLEND_HANN;
        else if (!strcmp(arg, "uniform")) j->blend = BLEND_UNIFORM;
        else if (!strcmp(arg, "center")) j->blend = BLEND_CENTER;
        else return usage_error(cmd, "--blend: '%s' is not hann, uniform or center", arg);
        return 0;
    case OPT_TARGET:
        j->target_set = 1;
        if (scene_target_parse(j, arg))
            return usage_error(cmd, "--target: %s is negative", arg);
        return 0;
    case OPT_INIT:
        j->init_set = 1;
        if (glrp_init_parse(arg, &j->init))
            return usage_error(cmd, "--init: '%s' is not one, logit or prob", arg);
        return 0;
    case OPT_MIN_VALID:
        if (arg_float("--min-valid", arg, &f)) return EXIT_USAGE;
        if (f < 0 || f > 1) return usage_error(cmd, "--min-valid: %g is not from 0 to 1", f);
        j->min_valid = f, j->min_valid_set = 1;
        return 0;
    case OPT_THREADS:
        if (arg_int("--threads", arg, 1, 1024, &v)) return EXIT_USAGE;
        j->threads = (int)v;
        return 0;
    case OPT_BATCH:
        if (arg_int("--batch", arg, 1, 4096, &v)) return EXIT_USAGE;
        j->batch = (int)v;
        return 0;
    case OPT_CO:
        if (j->n_creation_options == SCENE_MAX_CO)
            return usage_error(cmd, "--co: at most %d creation options", SCENE_MAX_CO);
        j->creation_options[j->n_creation_options++] = arg;
        return 0;
    default:
        if (id < RULES_OPT_BASE || id >= RULES_OPT_END)
            return 1;
        if (id == OPT_COMPOSITE)
            j->composite_set = 1;
        return rules_opts_handle(ro, id, arg) ? EXIT_USAGE : 0;
    }
}

int scene_opts_finish(scene_job *j, rules_opts *ro)
{
    if (!j->composite_set)
        snprintf(ro->rules.composite, sizeof ro->rules.composite, "epsilon-gamma-box");
    int rc = rules_opts_finish(ro);
    j->rules = ro->rules;
    glrp_error err = {0};
    if (!rc && out_check_options(j->creation_options, j->n_creation_options, &err)) {
        print_error(&err);
        rc = EXIT_USAGE;
    }
    return rc;
}

void scene_opts_help_input(FILE *f)
{
    fprintf(f,
            "  -m, --model FILE    ONNX model taking (N, C, H, W); tiles are H x W (required)\n"
            "  --config FILE       JSON: bands, scale/offset, clip, normalization, fill_value,\n"
            "                      zbox bounds, run defaults (examples in config/). Default:\n"
            "                      the model's ONNX metadata (standardization_mean/std), else\n"
            "                      raw values\n"
            "  --bands LIST        bands by 1-based index or description, comma-separated\n"
            "                      (default: the config's, else all bands)\n");
}

void scene_opts_help_tiling(FILE *f)
{
    fprintf(f,
            "Tiling:\n"
            "  --tile N            must equal the model's input size (the default)\n"
            "  --stride N          pixels between tiles (default tile/2)\n"
            "  --blend MODE        hann (default), uniform or center\n"
            "  --min-valid F       skip tiles with less than this fraction of valid pixels\n"
            "                      (default 0: skip only tiles without any)\n"
            "  --batch N           tiles per batch (default 16)\n"
            "  --threads N         threads explaining tiles and compressing the COGs (default\n"
            "                      1; outputs do not depend on it)\n");
    scene_opts_help_co(f);
}

void scene_opts_help_co(FILE *f)
{
    fprintf(f,
            "  --co NAME=VALUE     creation option of GDAL's COG driver for the raster outputs,\n"
            "                      repeatable, over the defaults COMPRESS=DEFLATE LEVEL=1\n"
            "                      PREDICTOR=YES NUM_THREADS=<--threads> (e.g. --co\n"
            "                      COMPRESS=ZSTD, --co LEVEL=9, --co BLOCKSIZE=256)\n");
}

void scene_opts_help_relevance(FILE *f)
{
    fprintf(f,
            "Relevance:\n"
            "  --target T          predicted (default: each tile its own predicted class),\n"
            "                      a class index or name (every tile explains it), or all\n"
            "                      (one total-relevance band per class)\n"
            "  --init MODE         logit (default), one or prob\n"
            "  (default composite for scenes: epsilon-gamma-box, zbox bounds from the\n"
            "  config, the model's valid_min/valid_max metadata, or the band ranges)\n"
            RULES_HELP);
}
