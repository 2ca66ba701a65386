/*
 * Engine throughput: OpenBLAS sgemm GFLOP/s (the practical peak), geolrp forward tiles/s and
 * LRP tiles/s per composite, each the median of repeated timed runs after a warm-up.
 * The FLOPs a run performs are counted where the GEMMs are issued (linear_flops), so
 * "percent of peak" counts the arithmetic each rule really does.
 *
 * Usage: engine_bench MODEL.onnx TILES.npy [--threads N] [--batch N] [--reps N]
 *                     [--composite NAME]... [--min-seconds S] [--cpu-time]
 * Prints one JSON object per measurement on stdout (bench/run.sh makes the table).
 * Not a test: nothing here is asserted.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine.h"
#include "geolrp/geolrp.h"
#include "io/npy.h"

#define MAX_COMPOSITES 8
#define MAX_REPS 64

/* --cpu-time: process CPU time instead of wall time, for comparing builds on a machine
 * other jobs share (with 1 thread it equals wall time on an idle machine). */
static clockid_t g_clock = CLOCK_MONOTONIC;

static double now(void)
{
    struct timespec t;
    clock_gettime(g_clock, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* sgemm on square matrices large enough to reach the practical peak, BLAS using `threads`
 * threads (geolrp itself runs BLAS single-threaded; this is the machine's ceiling). */
static double sgemm_gflops(int threads, int reps)
{
    const int n = 1536;
    float *a = malloc((size_t)n * n * sizeof *a), *b = malloc((size_t)n * n * sizeof *b),
          *c = malloc((size_t)n * n * sizeof *c);
    if (!a || !b || !c) {
        fprintf(stderr, "engine_bench: out of memory\n");
        exit(1);
    }
    for (size_t e = 0; e < (size_t)n * n; e++) {
        a[e] = (float)(e % 17) * 0.01f;
        b[e] = (float)(e % 13) * 0.02f;
    }
    openblas_set_num_threads(threads);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    double t[MAX_REPS] = {0};
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        t[r] = now() - t0;
    }
    openblas_set_num_threads(1);
    free(a), free(b), free(c);
    return 2.0 * n * n * n / median(t, reps) / 1e9;
}

typedef struct {
    glrp_model *m;
    const float *x;
    float *rel, *scores;
    int batch;
    const char *composite; /* NULL: forward only */
    const float *low, *high;
    int n_bounds;
} run_spec;

static int run_once(const run_spec *s, glrp_error *err)
{
    if (!s->composite)
        return glrp_forward(s->m, s->x, s->batch, s->scores, err);
    glrp_rules r;
    glrp_rules_init(&r);
    snprintf(r.composite, sizeof r.composite, "%s", s->composite);
    r.low = s->low, r.high = s->high, r.n_bounds = s->n_bounds;
    return glrp_explain(s->m, &r, GLRP_TARGET_PREDICTED, GLRP_INIT_LOGIT, s->x, s->batch, s->rel,
                        s->scores, NULL, err);
}

/* Repeats until both reps runs and min_seconds have passed; returns the median tiles/s and
 * the FLOPs of one run. */
static int measure(const run_spec *s, int reps, double min_seconds, double *tiles_per_s,
                   double *flops, glrp_error *err)
{
    if (run_once(s, err)) /* warm-up: first-touch of buffers, BLAS init */
        return 1;
    double t[MAX_REPS] = {0}, start = now();
    int n = 0;
    uint64_t f0 = linear_flops();
    while (n < MAX_REPS && (n < reps || now() - start < min_seconds)) {
        double t0 = now();
        if (run_once(s, err))
            return 1;
        t[n++] = now() - t0;
    }
    *flops = (double)(linear_flops() - f0) / n;
    *tiles_per_s = s->batch / median(t, n);
    return 0;
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *tiles_path = NULL, *composites[MAX_COMPOSITES];
    int n_comp = 0, threads = 1, batch = 32, reps = 7;
    double min_seconds = 2.0;
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--threads") && a + 1 < argc)
            threads = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--batch") && a + 1 < argc)
            batch = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--reps") && a + 1 < argc)
            reps = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--min-seconds") && a + 1 < argc)
            min_seconds = atof(argv[++a]);
        else if (!strcmp(argv[a], "--cpu-time"))
            g_clock = CLOCK_PROCESS_CPUTIME_ID;
        else if (!strcmp(argv[a], "--composite") && a + 1 < argc && n_comp < MAX_COMPOSITES)
            composites[n_comp++] = argv[++a];
        else if (!model_path)
            model_path = argv[a];
        else if (!tiles_path)
            tiles_path = argv[a];
        else {
            fprintf(stderr, "engine_bench: unexpected argument '%s'\n", argv[a]);
            return 2;
        }
    }
    if (!model_path || !tiles_path || threads < 1 || batch < 1 || reps < 1 || reps > MAX_REPS) {
        fprintf(stderr, "Usage: engine_bench MODEL.onnx TILES.npy [--threads N] [--batch N] "
                        "[--reps N<=%d] [--composite NAME]... [--min-seconds S] [--cpu-time]\n", MAX_REPS);
        return 2;
    }
    glrp_error err = {0};
    glrp_model *m = NULL;
    npy_reader rd;
    if (glrp_model_load(model_path, batch, &m, &err) || npy_open(tiles_path, &rd, &err)) {
        fprintf(stderr, "engine_bench: %s\n", err.msg);
        return err.code ? err.code : 1;
    }
    const size_t in = glrp_model_input_size(m);
    if (rd.count < in * (size_t)batch) {
        fprintf(stderr, "engine_bench: %s holds %zu values, need %d tiles of %zu\n", tiles_path,
                rd.count, batch, in);
        return 2;
    }
    float *x = malloc(in * batch * sizeof *x), *rel = malloc(in * batch * sizeof *rel),
          *scores = malloc((size_t)glrp_model_num_outputs(m) * batch * sizeof *scores);
    if (!x || !rel || !scores || npy_read(&rd, x, in * batch, &err)) {
        fprintf(stderr, "engine_bench: %s\n", x && rel && scores ? err.msg : "out of memory");
        return 1;
    }
    npy_close(&rd);
    /* zbox bounds: the data's own range, as the scene pipeline derives it. */
    float lo = x[0], hi = x[0];
    for (size_t e = 0; e < in * batch; e++)
        lo = x[e] < lo ? x[e] : lo, hi = x[e] > hi ? x[e] : hi;

    printf("{\"what\": \"sgemm\", \"threads\": %d, \"gflops\": %.2f}\n", threads,
           sgemm_gflops(threads, reps));
    glrp_set_threads(threads);
    run_spec s = {m, x, rel, scores, batch, NULL, &lo, &hi, 1};
    for (int k = -1; k < n_comp; k++) {
        s.composite = k < 0 ? NULL : composites[k];
        double tps, flops;
        if (measure(&s, reps, min_seconds, &tps, &flops, &err)) {
            fprintf(stderr, "engine_bench: %s: %s\n", s.composite ? s.composite : "forward",
                    err.msg);
            return err.code ? err.code : 1;
        }
        printf("{\"what\": \"%s\", \"threads\": %d, \"batch\": %d, \"tiles_per_s\": %.3f, "
               "\"gflop_per_tile\": %.4f, \"gflops\": %.2f}\n",
               s.composite ? s.composite : "forward", threads, batch, tps,
               flops / batch / 1e9, flops / batch * tps / 1e9);
        fflush(stdout);
    }
    glrp_model_free(m);
    free(x), free(rel), free(scores);
    return 0;
}
