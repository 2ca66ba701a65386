/*
 * geolrp eval: fact-or-artifact metrics for a model on labelled samples with masks, per
 * composite; --benchmark runs the shipped study (synthetic variants x model zoo).
 */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/eval.h"
#include "cli/rules_opts.h"
#include "io/json_file.h"
#include "io/npy.h"
#include "io/tmpfile.h"
#include "synth/synth.h"
#include "util/error.h"

#define MAX_COMPOSITES 16

static const char *const DEFAULT_COMPOSITES[] = {
    "lrp0", "epsilon", "epsilon-plus-flat", "epsilon-gamma-box", "epsilon-alpha2-beta1",
    "zplus", "flat", "wsquare", NULL};

static void help(FILE *f)
{
    fprintf(f,
            "Usage: geolrp eval -m MODEL.onnx --input X.npy --masks MASKS.npy [--labels L.npy]\n"
            "                   [options]\n"
            "       geolrp eval --benchmark [--zoo DIR] [--count N] [options]\n"
            "\n"
            "Measures, per composite (mean and standard deviation over samples):\n"
            "  relevance mass accuracy (positive relevance inside the mask / all positive),\n"
            "  relevance rank accuracy (share of the top-|mask| pixels inside the mask),\n"
            "  border ratio (share of |R| within --border pixels of the edge / its area share),\n"
            "  zero-input share (share of |R| on inputs equal to 0 / their share),\n"
            "  pixel flipping: AOPC most-relevant-first and for a random order (baseline: the\n"
            "  per-channel mean of X), randomisation check (Spearman of |R| against the model\n"
            "  with its top layer, then all layers, re-initialised) and conservation.\n"
            "\n"
            "Options:\n"
            "  -m, --model FILE    ONNX model taking (N, C, H, W)\n"
            "  --input FILE        samples (N, C, H, W) float32 .npy\n"
            "  --masks FILE        ground truth (N, H, W) or (N, 1, H, W), 1 inside\n"
            "  --labels FILE       (N) class labels (for --target label, per-class numbers)\n"
            "  --composite LIST    comma-separated composites or presets (default lrp0,\n"
            "                      epsilon, epsilon-plus-flat, epsilon-gamma-box,\n"
            "                      epsilon-alpha2-beta1, zplus, flat, wsquare)\n"
            "  --target T          predicted (default) or label\n"
            "  --init MODE         logit (default), one or prob\n"
            "  --border K          border width in pixels (default 2)\n"
            "  --steps S           pixel-flipping steps (default 10)\n"
            "  --flip-fraction F   share of pixels flipped at the last step (default 0.5)\n"
            "  --no-randomization  skip the randomisation check\n"
            "  --max-samples N     use the first N samples only\n"
            "  --batch N           samples per batch (default 64)\n"
            "  --threads N         threads (default 1; results do not depend on it)\n"
            "  --json FILE         all numbers as JSON\n"
            "  --markdown FILE     the table as Markdown (default: printed on stdout)\n"
            "  --benchmark         the shipped study: every model of --zoo on fresh samples of\n"
            "                      its synthetic variant (geolrp synth, seed --seed)\n"
            "  --zoo DIR           model zoo with zoo.json (default data/models/zoo)\n"
            "  --count N           benchmark samples per variant (default 150)\n"
            "  --seed S            benchmark sample seed (default 3; the zoo trains on 1, tests\n"
            "                      on 2)\n"
            "  --overwrite         replace existing outputs\n"
            "  -q, --quiet         no progress\n"
            "  -h, --help          this help\n"
            "Rule parameters (--epsilon, --gamma, --low/--high, --rule ...) as in 'geolrp\n"
            "relevance'; zbox bounds default to the per-channel min and max of X.\n");
}

typedef struct {
    const char *model, *input, *masks, *labels, *json, *md, *zoo;
    const char *composites[MAX_COMPOSITES];
    int n_composites, benchmark, quiet, overwrite;
    long count, seed, max_samples, threads;
    eval_job job;
    rules_opts ro;
} eval_opts;

enum { OPT_INPUT = RULES_OPT_END, OPT_MASKS, OPT_LABELS, OPT_TARGET, OPT_INIT, OPT_BORDER,
       OPT_STEPS, OPT_FRACTION, OPT_NORAND, OPT_MAX, OPT_BATCH, OPT_THREADS, OPT_JSON, OPT_MD,
       OPT_BENCH, OPT_ZOO, OPT_COUNT, OPT_SEED, OPT_OVERWRITE };

static int split_composites(eval_opts *o, char *list)
{
    o->n_composites = 0;
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->n_composites == MAX_COMPOSITES)
            return usage_error("eval", "--composite: at most %d", MAX_COMPOSITES);
        int known = 0;
        for (int k = 0; glrp_composite_names[k]; k++)
            known |= !strcmp(glrp_composite_names[k], t);
        if (!known)
            return usage_error("eval", "--composite: unknown composite '%s'", t);
        o->composites[o->n_composites++] = t;
    }
    return 0;
}

static int parse(int argc, char **argv, eval_opts *o)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"input", required_argument, 0, OPT_INPUT},
        {"masks", required_argument, 0, OPT_MASKS}, {"labels", required_argument, 0, OPT_LABELS},
        {"target", required_argument, 0, OPT_TARGET}, {"init", required_argument, 0, OPT_INIT},
        {"border", required_argument, 0, OPT_BORDER}, {"steps", required_argument, 0, OPT_STEPS},
        {"flip-fraction", required_argument, 0, OPT_FRACTION},
        {"no-randomization", no_argument, 0, OPT_NORAND},
        {"max-samples", required_argument, 0, OPT_MAX}, {"batch", required_argument, 0, OPT_BATCH},
        {"threads", required_argument, 0, OPT_THREADS}, {"json", required_argument, 0, OPT_JSON},
        {"markdown", required_argument, 0, OPT_MD}, {"benchmark", no_argument, 0, OPT_BENCH},
        {"zoo", required_argument, 0, OPT_ZOO}, {"count", required_argument, 0, OPT_COUNT},
        {"seed", required_argument, 0, OPT_SEED}, {"overwrite", no_argument, 0, OPT_OVERWRITE},
        {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'}, RULES_LONG_OPTIONS,
        {0, 0, 0, 0}};
    eval_job *j = &o->job;
    j->init = GLRP_INIT_LOGIT;
    j->border = 2, j->steps = 10, j->flip_fraction = 0.5, j->randomization = 1, j->batch = 64;
    o->count = 150, o->seed = 3, o->threads = 1, o->zoo = "data/models/zoo";
    for (int k = 0; DEFAULT_COMPOSITES[k]; k++)
        o->composites[o->n_composites++] = DEFAULT_COMPOSITES[k];
    int c;
    long v;
    float f;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'q': o->quiet = 1; break;
        case 'h': help(stdout); return -1;
        case OPT_INPUT: o->input = optarg; break;
        case OPT_MASKS: o->masks = optarg; break;
        case OPT_LABELS: o->labels = optarg; break;
        case OPT_TARGET:
            if (!strcmp(optarg, "label")) j->target_label = 1;
            else if (!strcmp(optarg, "predicted")) j->target_label = 0;
            else return usage_error("eval", "--target: '%s' is not predicted or label", optarg);
            break;
        case OPT_INIT:
            if (glrp_init_parse(optarg, &j->init))
                return usage_error("eval", "--init: '%s' is not one, logit or prob", optarg);
            break;
        case OPT_BORDER: if (arg_int("--border", optarg, 1, 1 << 14, &v)) return EXIT_USAGE; j->border = (int)v; break;
        case OPT_STEPS: if (arg_int("--steps", optarg, 1, 1000, &v)) return EXIT_USAGE; j->steps = (int)v; break;
        case OPT_FRACTION:
            if (arg_float("--flip-fraction", optarg, &f)) return EXIT_USAGE;
            if (f <= 0 || f > 1) return usage_error("eval", "--flip-fraction: %g is not in (0, 1]", f);
            j->flip_fraction = f;
            break;
        case OPT_NORAND: j->randomization = 0; break;
        case OPT_MAX: if (arg_int("--max-samples", optarg, 1, 1L << 30, &o->max_samples)) return EXIT_USAGE; break;
        case OPT_BATCH: if (arg_int("--batch", optarg, 1, 4096, &v)) return EXIT_USAGE; j->batch = (int)v; break;
        case OPT_THREADS: if (arg_int("--threads", optarg, 1, 1024, &o->threads)) return EXIT_USAGE; break;
        case OPT_JSON: o->json = optarg; break;
        case OPT_MD: o->md = optarg; break;
        case OPT_BENCH: o->benchmark = 1; break;
        case OPT_ZOO: o->zoo = optarg; break;
        case OPT_COUNT: if (arg_int("--count", optarg, 1, 1000000, &o->count)) return EXIT_USAGE; break;
        case OPT_SEED: if (arg_int("--seed", optarg, 0, 1L << 40, &o->seed)) return EXIT_USAGE; break;
        case OPT_OVERWRITE: o->overwrite = 1; break;
        case OPT_COMPOSITE:
            if (split_composites(o, optarg)) return EXIT_USAGE;
            break;
        case '?': return usage_error("eval", "unknown option or missing value");
        default:
            if (rules_opts_handle(&o->ro, c, optarg)) return EXIT_USAGE;
        }
    }
    if (optind != argc)
        return usage_error("eval", "unexpected argument '%s'", argv[optind]);
    if (!o->benchmark && (!o->model || !o->input || !o->masks))
        return usage_error("eval", "-m MODEL, --input and --masks are required (or --benchmark)");
    if (j->target_label && !o->labels && !o->benchmark)
        return usage_error("eval", "--target label needs --labels");
    int rc = rules_opts_finish(&o->ro);
    j->rules = o->ro.rules;
    j->composites = o->composites;
    j->n_composites = o->n_composites;
    j->seed = (uint64_t)o->seed;
    return rc;
}

/* Reads a whole float32 .npy into memory. */
static int read_all(const char *path, float **out, npy_reader *r, glrp_error *err)
{
    int rc = npy_open(path, r, err);
    if (rc)
        return rc;
    *out = malloc((r->count ? r->count : 1) * sizeof(float));
    if (!*out)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: out of memory for %zu values", path,
                         r->count);
    return npy_read(r, *out, r->count, err);
}

static int write_outputs(const eval_opts *o, json_t *doc, const char *md_text, glrp_error *err)
{
    int rc;
    if (o->json && (rc = json_write_atomic(o->json, doc, NULL, err)))
        return rc;
    if (o->md) {
        char *tmp;
        FILE *f;
        if ((rc = tmpfile_create(o->md, &tmp, &f, err)))
            return rc;
        if (fputs(md_text, f) == EOF) {
            tmpfile_discard(f, tmp);
            rc = glrp_fail(err, GLRP_ERR_RUNTIME, "%s: cannot write", o->md);
        } else {
            rc = tmpfile_commit(f, tmp, o->md, NULL, err);
        }
        free(tmp);
        return rc;
    } else {
        fputs(md_text, stdout);
    }
    return 0;
}

static int eval_files(eval_opts *o, glrp_error *err)
{
    npy_reader rx = {0}, rm = {0}, rl = {0};
    float *x = NULL, *masks = NULL, *labels = NULL;
    eval_row *rows = NULL;
    char *md = NULL;
    size_t md_len = 0;
    FILE *mf = NULL;
    json_t *doc = NULL;
    int rc = read_all(o->input, &x, &rx, err);
    if (!rc && rx.rank != 4)
        rc = glrp_fail(err, GLRP_ERR_INPUT, "%s: expected (N, C, H, W), got rank %d", o->input,
                       rx.rank);
    if (!rc)
        rc = read_all(o->masks, &masks, &rm, err);
    const int n = rc ? 0 : (int)rx.shape[0];
    if (!rc) {
        int ok = (rm.rank == 3 && rm.shape[1] == rx.shape[2] && rm.shape[2] == rx.shape[3]) ||
                 (rm.rank == 4 && rm.shape[1] == 1 && rm.shape[2] == rx.shape[2] &&
                  rm.shape[3] == rx.shape[3]);
        if (!ok || rm.shape[0] != n)
            rc = glrp_fail(err, GLRP_ERR_INPUT, "%s: masks must be (%d, %lld, %lld)", o->masks,
                           n, (long long)rx.shape[2], (long long)rx.shape[3]);
    }
    if (!rc && o->labels) {
        rc = read_all(o->labels, &labels, &rl, err);
        if (!rc && (rl.count != (size_t)n))
            rc = glrp_fail(err, GLRP_ERR_INPUT, "%s: %zu labels for %d samples", o->labels,
                           rl.count, n);
    }
    if (!rc) {
        eval_job *j = &o->job;
        j->model = o->model, j->x = x, j->masks = masks, j->labels = labels;
        j->n = o->max_samples && o->max_samples < n ? (int)o->max_samples : n;
        j->c = (int)rx.shape[1], j->h = (int)rx.shape[2], j->w = (int)rx.shape[3];
        rows = calloc((size_t)j->n_composites, sizeof *rows);
        rc = rows ? eval_run(j, rows, err) : glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    }
    if (!rc) {
        mf = open_memstream(&md, &md_len);
        doc = json_pack("{s:s, s:s, s:s, s:i}", "model", o->model, "input", o->input, "masks",
                        o->masks, "samples", o->job.n);
        json_t *res = json_array();
        eval_markdown_header(mf, 0);
        for (int k = 0; k < o->job.n_composites; k++) {
            json_array_append_new(res, eval_row_json(&rows[k], o->job.c));
            eval_markdown_row(mf, NULL, &rows[k]);
        }
        json_object_set_new(doc, "results", res);
        fclose(mf);
        rc = write_outputs(o, doc, md, err);
    }
    json_decref(doc);
    free(md), free(rows), free(x), free(masks), free(labels);
    npy_close(&rx), npy_close(&rm), npy_close(&rl);
    return rc;
}

/* The shipped study: each zoo model on fresh samples of its variant. */
static int eval_benchmark(eval_opts *o, glrp_error *err)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/zoo.json", o->zoo);
    json_error_t je;
    json_t *zoo = json_load_file(path, 0, &je);
    if (!zoo)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s:%d: %s", path, je.line, je.text);
    json_t *models = json_object_get(zoo, "models");
    if (!json_is_array(models)) {
        json_decref(zoo);
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: no \"models\" list", path);
    }
    char *md = NULL;
    size_t md_len = 0;
    FILE *mf = open_memstream(&md, &md_len);
    json_t *doc = json_pack("{s:s, s:I, s:I}", "zoo", o->zoo, "samples_per_variant",
                            (json_int_t)o->count, "seed", (json_int_t)o->seed);
    json_t *res = json_array();
    eval_markdown_header(mf, 1);
    int rc = 0;
    synth_params sp = {32, 6, (uint64_t)o->seed};
    size_t i;
    json_t *e;
    json_array_foreach(models, i, e) {
        const char *variant = json_string_value(json_object_get(e, "variant"));
        const char *arch = json_string_value(json_object_get(e, "architecture"));
        const char *file = json_string_value(json_object_get(e, "file"));
        const synth_variant *v = variant ? synth_find(variant) : NULL;
        if (!v || !arch || !file) {
            rc = glrp_fail(err, GLRP_ERR_INPUT, "%s: model %zu lacks a known variant, "
                           "architecture or file", path, i);
            break;
        }
        const size_t plane = (size_t)sp.size * sp.size, in = (size_t)v->bands * plane;
        float *x = malloc((size_t)o->count * in * sizeof *x);
        float *m = malloc((size_t)o->count * plane * sizeof *m);
        float *l = malloc((size_t)o->count * sizeof *l);
        eval_row *rows = calloc((size_t)o->job.n_composites, sizeof *rows);
        if (!x || !m || !l || !rows) {
            free(x), free(m), free(l), free(rows);
            rc = glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
            break;
        }
        for (long s = 0; s < o->count; s++)
            l[s] = (float)synth_sample(v, &sp, (uint64_t)s, x + (size_t)s * in,
                                       m + (size_t)s * plane);
        const char *slash = strrchr(file, '/');
        snprintf(path, sizeof path, "%s/%s", o->zoo, slash ? slash + 1 : file);
        eval_job j = o->job;
        j.model = path, j.x = x, j.masks = m, j.labels = l;
        j.n = (int)o->count, j.c = v->bands, j.h = j.w = sp.size;
        if (!o->quiet)
            fprintf(stderr, "%s / %s ...\n", variant, arch);
        rc = eval_run(&j, rows, err);
        char prefix[160];
        snprintf(prefix, sizeof prefix, "| %s | %s ", variant, arch);
        for (int k = 0; !rc && k < j.n_composites; k++) {
            json_t *row = eval_row_json(&rows[k], j.c);
            json_object_set_new(row, "variant", json_string(variant));
            json_object_set_new(row, "architecture", json_string(arch));
            json_object_set_new(row, "signal_bands", json_integer(v->signal_bands));
            json_array_append_new(res, row);
            eval_markdown_row(mf, prefix, &rows[k]);
        }
        free(x), free(m), free(l), free(rows);
        if (rc)
            break;
    }
    fclose(mf);
    json_object_set_new(doc, "results", res);
    if (!rc)
        rc = write_outputs(o, doc, md, err);
    json_decref(doc);
    json_decref(zoo);
    free(md);
    return rc;
}

int cmd_eval(int argc, char **argv)
{
    eval_opts o;
    memset(&o, 0, sizeof o);
    rules_opts_init(&o.ro);
    int rc = parse(argc, argv, &o);
    if (rc == 0) {
        const char *outs[2] = {o.json, o.md};
        for (int k = 0; k < 2 && !rc; k++)
            if (outs[k] && !o.overwrite && path_exists(outs[k])) {
                fprintf(stderr, "geolrp: error: %s exists; use --overwrite to replace it\n",
                        outs[k]);
                rc = EXIT_USAGE;
            }
    }
    if (rc == 0) {
        glrp_set_threads((int)o.threads);
        glrp_error err = {0};
        rc = o.benchmark ? eval_benchmark(&o, &err) : eval_files(&o, &err);
        if (rc)
            print_error(&err);
    } else if (rc < 0) {
        rc = EXIT_OK;
    }
    rules_opts_free(&o.ro);
    return rc;
}
