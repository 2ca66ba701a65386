/* Streamed overviews (mosaic/overview.c) against a direct computation: every overview
 * pixel is the mean (or the mode) of all valid full-resolution pixels it covers, whatever
 * the raster's size, the nodata pattern, or how many rows arrive at a time. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mosaic/overview.h"

typedef struct {
    int levels, bands, width[OVR_MAX_LEVELS + 1];
    float *got[OVR_MAX_LEVELS + 1]; /* (rows, bands, width) per level */
    int rows_seen[OVR_MAX_LEVELS + 1];
    int out_of_order, fail_at_level;
} sink;

static int collect(void *ctx, int level, int row, int width, const float *values)
{
    sink *s = ctx;
    if (level == s->fail_at_level)
        return 42;
    if (row != s->rows_seen[level] || width != s->width[level])
        s->out_of_order++;
    s->rows_seen[level]++;
    memcpy(s->got[level] + (size_t)row * s->bands * width, values,
           (size_t)s->bands * width * sizeof *values);
    return 0;
}

/* The exact value of overview pixel (x, y) of level k, band b. */
static float expected(const float *data, int W, int H, int b, int k, int x, int y,
                      ovr_kind kind)
{
    const int f = 1 << k;
    double sum = 0;
    long n = 0;
    long votes[256] = {0};
    for (int yy = y * f; yy < (y + 1) * f && yy < H; yy++)
        for (int xx = x * f; xx < (x + 1) * f && xx < W; xx++) {
            float v = data[((size_t)b * H + yy) * W + xx];
            if (kind == OVR_AVERAGE && !isnan(v))
                sum += v, n++;
            if (kind == OVR_MODE && v != 255)
                votes[(int)v]++;
        }
    if (kind == OVR_AVERAGE)
        return n ? (float)(sum / n) : NAN;
    int best = -1;
    for (int c = 0; c < 255; c++)
        if (votes[c] > (best < 0 ? 0 : votes[best]))
            best = c;
    return best < 0 ? 255 : (float)best;
}

/* Feeds a W x H raster in pieces of `step` rows and compares every level. */
static void run_case(int W, int H, int bands, int levels, int step, ovr_kind kind,
                     unsigned seed)
{
    float *data = malloc((size_t)bands * H * W * sizeof *data);
    unsigned st = seed;
    for (size_t e = 0; e < (size_t)bands * H * W; e++) {
        float r = check_rand(&st);
        if (kind == OVR_AVERAGE)
            data[e] = r < -0.6f ? NAN : r * 100; /* a fifth nodata, unevenly */
        else
            data[e] = r < -0.7f ? 255 : (float)((int)((r + 1) * 2.5f)); /* classes 0..4 */
    }
    /* whole blocks of nodata too */
    for (int y = 0; y < H && y < 4; y++)
        for (int x = 0; x < W && x < 4; x++)
            data[(size_t)y * W + x] = kind == OVR_AVERAGE ? NAN : 255;
    ovr_stream s;
    CHECK(ovr_init(&s, kind, W, H, bands, levels, kind == OVR_MODE ? 5 : 0) == 0);
    sink k = {.levels = s.levels, .bands = bands};
    for (int l = 1; l <= s.levels; l++) {
        k.width[l] = s.width[l];
        k.got[l] = calloc((size_t)bands * s.height[l] * s.width[l], sizeof(float));
    }
    /* rows arrive as (bands, n, W) blocks */
    float *block = malloc((size_t)bands * step * W * sizeof *block);
    for (int y0 = 0; y0 < H; y0 += step) {
        int n = H - y0 < step ? H - y0 : step;
        for (int b = 0; b < bands; b++)
            memcpy(block + (size_t)b * n * W, data + ((size_t)b * H + y0) * W,
                   (size_t)n * W * sizeof *block);
        CHECK(ovr_add_rows(&s, block, n, collect, &k) == 0);
    }
    CHECK(k.out_of_order == 0);
    long wrong = 0;
    for (int l = 1; l <= s.levels; l++) {
        CHECK(k.rows_seen[l] == s.height[l]);
        CHECK(s.width[l] == (W + (1 << l) - 1) >> l && s.height[l] == (H + (1 << l) - 1) >> l);
        for (int y = 0; y < s.height[l]; y++)
            for (int b = 0; b < bands; b++)
                for (int x = 0; x < s.width[l]; x++) {
                    float e = expected(data, W, H, b, l, x, y, kind);
                    float g = k.got[l][((size_t)y * bands + b) * s.width[l] + x];
                    int same = isnan(e) ? isnan(g) : fabsf(g - e) <= 1e-5f * (1 + fabsf(e));
                    wrong += !same;
                }
        free(k.got[l]);
    }
    if (wrong)
        fprintf(stderr, "  %d x %d, %d bands, %d levels, step %d: %ld wrong pixels\n", W, H,
                bands, levels, step, wrong);
    CHECK(wrong == 0);
    ovr_free(&s);
    free(block), free(data);
}

static void test_level_count(void)
{
    CHECK(ovr_level_count(4096, 4096, 512) == 3); /* 2048, 1024, 512 */
    CHECK(ovr_level_count(627, 603, 512) == 1);
    CHECK(ovr_level_count(512, 512, 512) == 0);
    CHECK(ovr_level_count(513, 10, 512) == 1);
    CHECK(ovr_level_count(10980, 10980, 512) == 5);
    CHECK(ovr_level_count(627, 603, 256) == 2);
    CHECK(ovr_level_count(1, 1, 128) == 0);
}

static void test_average(void)
{
    run_case(64, 64, 2, 3, 64, OVR_AVERAGE, 1);
    run_case(37, 23, 3, 4, 1, OVR_AVERAGE, 2);  /* odd sizes, one row at a time */
    run_case(37, 23, 3, 4, 5, OVR_AVERAGE, 3);  /* pieces that straddle level rows */
    run_case(101, 7, 1, 3, 3, OVR_AVERAGE, 4);  /* flat: levels run out of rows early */
    run_case(5, 40, 2, 5, 7, OVR_AVERAGE, 5);   /* tall and narrow */
    run_case(16, 16, 1, 0, 4, OVR_AVERAGE, 6);  /* no levels: nothing emitted */
}

static void test_mode(void)
{
    run_case(64, 48, 1, 3, 16, OVR_MODE, 7);
    run_case(33, 17, 1, 4, 1, OVR_MODE, 8);
    run_case(33, 17, 1, 4, 6, OVR_MODE, 9);
}

static void test_emit_error_stops(void)
{
    ovr_stream s;
    CHECK(ovr_init(&s, OVR_AVERAGE, 8, 8, 1, 2, 0) == 0);
    float rows[16] = {0};
    sink k = {.levels = 2, .bands = 1, .fail_at_level = 2};
    k.width[1] = 4, k.width[2] = 2;
    k.got[1] = calloc(16, sizeof(float));
    CHECK(ovr_add_rows(&s, rows, 2, collect, &k) == 0);  /* completes a level-1 row only */
    CHECK(ovr_add_rows(&s, rows, 2, collect, &k) == 42); /* completes a level-2 row */
    free(k.got[1]);
    ovr_free(&s);
}

int main(void)
{
    RUN(test_level_count);
    RUN(test_average);
    RUN(test_mode);
    RUN(test_emit_error_stops);
    return check_report();
}
