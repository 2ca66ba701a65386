/*
 * geolrp relevance: explain the samples of a .npy array. The array streams through in
 * batches, so its size is bounded by disk, not memory; outputs appear under their names
 * only when complete.
 */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/rules_opts.h"
#include "io/json_file.h"
#include "io/npy.h"
#include "io/tmpfile.h"
#include "util/error.h"

typedef struct {
    const char *model, *input, *output, *scores, *report;
    rules_opts ro;
    int target; /* GLRP_TARGET_PREDICTED or an index */
    glrp_init init;
    long batch, threads;
    int overwrite, quiet;
} options;

static void help(FILE *f)
{
    fprintf(f,
            "Usage: geolrp relevance --model M.onnx --input X.npy --output R.npy [options]\n"
            "\n"
            "Explains every sample of X (float32, shaped (N, C, H, W) or (N, F) like the\n"
            "model input) and writes the relevance R (float32, same shape).\n"
            "\n"
            "Options:\n"
            "  -m, --model FILE    ONNX model (required)\n"
            "  -i, --input FILE    samples, .npy float32 (required)\n"
            "  -o, --output FILE   relevance, .npy float32 (required)\n"
            "  --scores FILE       model outputs before any final softmax, (N, K) .npy\n"
            "  --report FILE       JSON: per sample target, score, relevance put in and\n"
            "                      relevance reaching the input (conservation), rules used\n"
            RULES_HELP
            "  --target T          predicted (default: each sample's argmax) or a class index\n"
            "  --init MODE         where relevance starts: logit (default: the target logit),\n"
            "                      one (1 at the target), prob (its softmax probability);\n"
            "                      a single-output model starts from its output value\n"
            "  --batch N           samples per batch (default 32)\n"
            "  --threads N         threads, each explaining its own samples (default 1;\n"
            "                      results do not depend on it)\n"
            "  --overwrite         replace existing outputs (default: refuse)\n"
            "  -q, --quiet         no progress or summary on stderr\n"
            "  -h, --help          this help\n");
}

enum { OPT_SCORES = RULES_OPT_END, OPT_REPORT, OPT_TARGET, OPT_INIT, OPT_BATCH, OPT_THREADS,
       OPT_OVERWRITE };

static int parse(int argc, char **argv, options *o)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"input", required_argument, 0, 'i'},
        {"output", required_argument, 0, 'o'}, {"scores", required_argument, 0, OPT_SCORES},
        {"report", required_argument, 0, OPT_REPORT}, {"target", required_argument, 0, OPT_TARGET},
        {"init", required_argument, 0, OPT_INIT}, {"batch", required_argument, 0, OPT_BATCH},
        {"threads", required_argument, 0, OPT_THREADS},
        {"overwrite", no_argument, 0, OPT_OVERWRITE}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'}, RULES_LONG_OPTIONS, {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    rules_opts_init(&o->ro);
    o->target = GLRP_TARGET_PREDICTED;
    o->init = GLRP_INIT_LOGIT;
    o->batch = 32;
    o->threads = 1;
    int c;
    long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:i:o:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'i': o->input = optarg; break;
        case 'o': o->output = optarg; break;
        case 'q': o->quiet = 1; break;
        case 'h': help(stdout); return -1;
        case OPT_SCORES: o->scores = optarg; break;
        case OPT_REPORT: o->report = optarg; break;
        case OPT_OVERWRITE: o->overwrite = 1; break;
        case OPT_TARGET:
            if (!strcmp(optarg, "predicted"))
                o->target = GLRP_TARGET_PREDICTED;
            else if (arg_int("--target", optarg, 0, 1 << 30, &v))
                return EXIT_USAGE;
            else
                o->target = (int)v;
            break;
        case OPT_INIT:
            if (glrp_init_parse(optarg, &o->init))
                return usage_error("relevance", "--init: '%s' is not one, logit or prob",
                                   optarg);
            break;
        case OPT_BATCH:
            if (arg_int("--batch", optarg, 1, 1 << 20, &o->batch))
                return EXIT_USAGE;
            break;
        case OPT_THREADS:
            if (arg_int("--threads", optarg, 1, 1024, &o->threads))
                return EXIT_USAGE;
            break;
        case '?':
            return usage_error("relevance", "unknown option or missing value");
        default:
            if (rules_opts_handle(&o->ro, c, optarg) != 0)
                return EXIT_USAGE;
        }
    }
    if (optind != argc)
        return usage_error("relevance", "unexpected argument '%s'", argv[optind]);
    if (!o->model || !o->input || !o->output)
        return usage_error("relevance", "--model, --input and --output are required");
    return rules_opts_finish(&o->ro);
}

static int refuse_existing(const options *o)
{
    const char *outs[] = {o->output, o->scores, o->report};
    for (int k = 0; k < 3; k++)
        if (outs[k] && !o->overwrite && path_exists(outs[k])) {
            fprintf(stderr, "geolrp: error: %s exists; use --overwrite to replace it\n", outs[k]);
            return EXIT_USAGE;
        }
    return 0;
}

/* The per-channel min and max of the whole input: the default zbox bounds, so that every
 * sample lies inside the box. */
static int bounds_from_data(npy_reader *r, const glrp_model *m, float *low, float *high,
                            int *n, glrp_error *err)
{
    const size_t numel = glrp_model_input_size(m);
    const int rank = glrp_model_input_rank(m);
    const int channels = rank == 3 ? (int)glrp_model_input_dims(m)[0] : 1;
    const size_t per_channel = numel / (size_t)channels;
    if (channels > RULES_MAX_BOUNDS)
        return glrp_fail(err, GLRP_ERR_INPUT, "more than %d channels", RULES_MAX_BOUNDS);
    float *buf = malloc(numel * sizeof *buf);
    if (!buf)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    for (int c = 0; c < channels; c++) {
        low[c] = INFINITY;
        high[c] = -INFINITY;
    }
    size_t samples = r->count / numel;
    for (size_t s = 0; s < samples; s++) {
        if (npy_read(r, buf, numel, err)) {
            free(buf);
            return err->code;
        }
        for (size_t e = 0; e < numel; e++) {
            int c = (int)(e / per_channel);
            if (buf[e] < low[c]) low[c] = buf[e];
            if (buf[e] > high[c]) high[c] = buf[e];
        }
    }
    free(buf);
    *n = channels;
    return npy_rewind(r, err);
}

static int check_shape(const npy_reader *r, const glrp_model *m, glrp_error *err)
{
    const int rank = glrp_model_input_rank(m);
    const int64_t *dims = glrp_model_input_dims(m);
    int ok = r->rank == rank + 1 && r->shape[0] > 0;
    for (int k = 0; ok && k < rank; k++)
        ok = r->shape[k + 1] == dims[k];
    if (ok)
        return 0;
    char have[128] = "(", want[128] = "(N";
    for (int k = 0; k < r->rank; k++)
        snprintf(have + strlen(have), sizeof have - strlen(have), "%s%lld", k ? ", " : "",
                 (long long)r->shape[k]);
    snprintf(have + strlen(have), sizeof have - strlen(have), ")");
    for (int k = 0; k < rank; k++)
        snprintf(want + strlen(want), sizeof want - strlen(want), ", %lld", (long long)dims[k]);
    snprintf(want + strlen(want), sizeof want - strlen(want), ") with N >= 1");
    return glrp_fail(err, GLRP_ERR_INPUT, "%s: array shape %s does not match the model input "
                     "%s", r->path, have, want);
}

static json_t *rules_json(const glrp_model *m, const options *o)
{
    (void)m;
    const glrp_rules *r = &o->ro.rules;
    json_t *j = json_pack("{s:s, s:f, s:f, s:f, s:f, s:s}", "composite", r->composite,
                          "epsilon", (double)r->eps, "gamma", (double)r->gamma, "alpha",
                          (double)r->alpha, "beta", (double)r->beta, "maxpool",
                          r->maxpool == GLRP_MAXPOOL_PROPORTIONAL ? "proportional" : "wta");
    if (j && r->n_bounds) {
        json_t *lo = json_array(), *hi = json_array();
        for (int k = 0; k < r->n_bounds; k++) {
            json_array_append_new(lo, json_real(r->low[k]));
            json_array_append_new(hi, json_real(r->high[k]));
        }
        json_object_set_new(j, "low", lo);
        json_object_set_new(j, "high", hi);
    }
    if (j && r->n_overrides) {
        json_t *ov = json_object();
        char buf[64];
        for (int k = 0; k < r->n_overrides; k++)
            json_object_set_new(ov, r->overrides[k].node,
                                json_string(glrp_rule_name(&r->overrides[k].rule, buf,
                                                               sizeof buf)));
        json_object_set_new(j, "overrides", ov);
    }
    return j;
}

static int write_report(const options *o, const glrp_model *m, const glrp_sample_stats *st,
                        size_t n, outset *set, glrp_error *err)
{
    json_t *root = json_object(), *samples = json_array();
    double ratio_sum = 0, ratio_min = INFINITY, ratio_max = -INFINITY;
    size_t counted = 0;
    for (size_t s = 0; s < n; s++) {
        double ratio = st[s].relevance_start != 0 ? st[s].relevance_input / st[s].relevance_start
                                                  : NAN;
        json_t *e = json_pack("{s:I, s:i, s:f, s:f, s:f}", "index", (json_int_t)s, "target",
                              st[s].target, "score", (double)st[s].score, "relevance_start",
                              st[s].relevance_start, "relevance_input", st[s].relevance_input);
        json_object_set_new(e, "conservation", isfinite(ratio) ? json_real(ratio) : json_null());
        json_array_append_new(samples, e);
        if (isfinite(ratio)) {
            ratio_sum += ratio;
            ratio_min = ratio < ratio_min ? ratio : ratio_min;
            ratio_max = ratio > ratio_max ? ratio : ratio_max;
            counted++;
        }
    }
    json_object_set_new(root, "geolrp_version", json_string(GEOLRP_VERSION));
    json_object_set_new(root, "model", json_string(o->model));
    json_object_set_new(root, "input", json_string(o->input));
    json_object_set_new(root, "rules", rules_json(m, o));
    json_object_set_new(root, "init", json_string(glrp_init_name(o->init)));
    json_object_set_new(root, "target", o->target == GLRP_TARGET_PREDICTED
                                            ? json_string("predicted") : json_integer(o->target));
    json_object_set_new(root, "conservation",
                        counted ? json_pack("{s:f, s:f, s:f}", "mean", ratio_sum / counted,
                                            "min", ratio_min, "max", ratio_max)
                                : json_null());
    json_object_set_new(root, "samples", samples);

    int rc = json_write_atomic(o->report, root, set, err);
    json_decref(root);
    return rc;
}

static int run(options *o, glrp_error *err)
{
    npy_reader in = {0};
    npy_writer out = {0}, sc = {0};
    outset staged = {0};
    glrp_model *m = NULL;
    float *x = NULL, *r = NULL, *s = NULL;
    glrp_sample_stats *stats = NULL;
    int rc;
    glrp_set_threads((int)o->threads);
    if ((rc = npy_open(o->input, &in, err)))
        goto done;
    if (in.rank < 2 || in.shape[0] < 1) {
        rc = glrp_fail(err, GLRP_ERR_INPUT, "%s: expected (N, C, H, W) or (N, F) with N >= 1",
                       o->input);
        goto done;
    }
    const size_t n_total = (size_t)in.shape[0];
    int batch = (int)(o->batch < (long)n_total ? o->batch : (long)n_total);
    if ((rc = glrp_model_load(o->model, batch, &m, err)) || (rc = check_shape(&in, m, err)))
        goto done;
    glrp_rules *rules = &o->ro.rules;
    if (glrp_rules_need_bounds(m, rules) && !rules->low) {
        if ((rc = bounds_from_data(&in, m, o->ro.low, o->ro.high, &o->ro.n_low, err)))
            goto done;
        rules->low = o->ro.low;
        rules->high = o->ro.high;
        rules->n_bounds = o->ro.n_low;
        if (!o->quiet) {
            fprintf(stderr, "zbox bounds from the input (per channel min..max):");
            for (int k = 0; k < rules->n_bounds; k++)
                fprintf(stderr, " %g..%g", rules->low[k], rules->high[k]);
            fprintf(stderr, "\n");
        }
    }
    if ((rc = glrp_rules_check(m, rules, err)))
        goto done;
    const size_t numel = glrp_model_input_size(m);
    const int K = glrp_model_num_outputs(m);
    x = malloc((size_t)batch * numel * sizeof *x);
    r = malloc((size_t)batch * numel * sizeof *r);
    s = malloc((size_t)batch * (size_t)K * sizeof *s);
    stats = calloc(n_total, sizeof *stats);
    if (!x || !r || !s || !stats) {
        rc = glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
        goto done;
    }
    int64_t score_shape[2] = {(int64_t)n_total, K};
    if ((rc = output_folder_check(o->output, err)) ||
        (o->scores && (rc = output_folder_check(o->scores, err))) ||
        (o->report && (rc = output_folder_check(o->report, err))))
        goto done;
    if ((rc = npy_create(o->output, in.rank, in.shape, &out, err)) ||
        (o->scores && (rc = npy_create(o->scores, 2, score_shape, &sc, err))))
        goto done;
    progress prog = {.quiet = o->quiet};
    progress_update(&prog, 0.0);
    for (size_t at = 0; at < n_total; at += (size_t)batch) {
        int n = (int)(n_total - at < (size_t)batch ? n_total - at : (size_t)batch);
        if ((rc = npy_read(&in, x, (size_t)n * numel, err)) ||
            (rc = glrp_explain(m, rules, o->target, o->init, x, n, r, s, stats + at, err)) ||
            (rc = npy_write(&out, r, (size_t)n * numel, err)) ||
            (o->scores && (rc = npy_write(&sc, s, (size_t)n * (size_t)K, err))))
            goto done;
        progress_update(&prog, (double)(at + (size_t)n) / (double)n_total);
    }
    /* All outputs or none: each is finished under its temporary name, then all renamed. */
    if ((rc = npy_commit(&out, &staged, err)) ||
        (o->scores && (rc = npy_commit(&sc, &staged, err))) ||
        (o->report && (rc = write_report(o, m, stats, n_total, &staged, err))) ||
        (rc = outset_commit(&staged, err)))
        goto done;
    if (!o->quiet) {
        double in_sum = 0, start_sum = 0;
        for (size_t k = 0; k < n_total; k++) {
            in_sum += stats[k].relevance_input;
            start_sum += stats[k].relevance_start;
        }
        if (!isfinite(start_sum))
            fprintf(stderr, "%zu samples explained; warning: some explained scores are NaN "
                    "or infinite (the model's forward pass overflowed or divided by 0), and "
                    "so is their relevance\n", n_total);
        else if (start_sum != 0)
            fprintf(stderr, "%zu samples explained; relevance reaching the input / put in: "
                    "%.6g (sums over all samples)\n", n_total, in_sum / start_sum);
        else /* every explained score was 0: there was nothing to conserve */
            fprintf(stderr, "%zu samples explained; no relevance was put in (the explained "
                    "scores sum to 0)\n", n_total);
    }
done:
    outset_discard(&staged);
    npy_abort(&out);
    npy_abort(&sc);
    npy_close(&in);
    glrp_model_free(m);
    free(x), free(r), free(s), free(stats);
    return rc;
}

int cmd_relevance(int argc, char **argv)
{
    options o;
    int rc = parse(argc, argv, &o);
    if (rc == 0)
        rc = refuse_existing(&o);
    if (rc == 0) {
        glrp_error err = {0};
        rc = run(&o, &err);
        if (rc)
            print_error(&err);
    } else if (rc < 0) {
        rc = EXIT_OK; /* --help */
    }
    rules_opts_free(&o.ro);
    return rc;
}
