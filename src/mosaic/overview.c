#include "mosaic/overview.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

int ovr_level_count(int width, int height, int block)
{
    int n = 0;
    while ((width > block || height > block) && n < OVR_MAX_LEVELS) {
        width = (width + 1) / 2, height = (height + 1) / 2;
        n++;
    }
    return n;
}

int ovr_init(ovr_stream *s, ovr_kind kind, int width, int height, int bands, int levels,
             int classes)
{
    memset(s, 0, sizeof *s);
    s->kind = kind, s->bands = bands, s->classes = classes;
    s->levels = levels < 0 ? 0 : levels > OVR_MAX_LEVELS ? OVR_MAX_LEVELS : levels;
    s->width[0] = width, s->height[0] = height;
    const int per_column = kind == OVR_MODE ? classes : bands;
    for (int k = 1; k <= s->levels; k++) {
        s->width[k] = (s->width[k - 1] + 1) / 2;
        s->height[k] = (s->height[k - 1] + 1) / 2;
        const size_t n = (size_t)per_column * (size_t)s->width[k];
        s->count[k] = glrp_alloc(n, sizeof *s->count[k]);
        s->sum[k] = kind == OVR_AVERAGE ? glrp_alloc(n, sizeof *s->sum[k]) : NULL;
        if (!s->count[k] || (kind == OVR_AVERAGE && !s->sum[k])) {
            ovr_free(s);
            return GLRP_ERR_RUNTIME;
        }
        memset(s->count[k], 0, n * sizeof *s->count[k]);
        if (s->sum[k])
            memset(s->sum[k], 0, n * sizeof *s->sum[k]);
    }
    if (s->levels > 0) {
        s->line = glrp_alloc((size_t)bands * (size_t)s->width[1], sizeof *s->line);
        if (!s->line) {
            ovr_free(s);
            return GLRP_ERR_RUNTIME;
        }
    }
    return 0;
}

void ovr_free(ovr_stream *s)
{
    for (int k = 0; k <= OVR_MAX_LEVELS; k++)
        free(s->sum[k]), free(s->count[k]);
    free(s->line);
    memset(s, 0, sizeof *s);
}

/* The values of level k's pending row into s->line. */
static void pending_values(ovr_stream *s, int k)
{
    const size_t w = (size_t)s->width[k];
    if (s->kind == OVR_AVERAGE) {
        for (size_t e = 0; e < (size_t)s->bands * w; e++)
            s->line[e] = s->count[k][e] ? (float)(s->sum[k][e] / s->count[k][e]) : NAN;
        return;
    }
    for (size_t x = 0; x < w; x++) {
        int best = -1;
        uint32_t votes = 0;
        for (int c = 0; c < s->classes; c++)
            if (s->count[k][(size_t)c * w + x] > votes)
                votes = s->count[k][(size_t)c * w + x], best = c;
        s->line[x] = best < 0 ? 255.0f : (float)best;
    }
}

/* Level k's pending row is complete: emit it, fold it into level k + 1 and clear it; then
 * the same for level k + 1 when this was the last of its two rows, and so on up. */
static int complete_rows(ovr_stream *s, int k, ovr_emit_fn emit, void *ctx)
{
    const int per_column = s->kind == OVR_MODE ? s->classes : s->bands;
    for (; k <= s->levels; k++) {
        const size_t w = (size_t)s->width[k];
        pending_values(s, k);
        const int row = s->next_row[k]++;
        int rc = emit(ctx, k, row, (int)w, s->line);
        if (rc)
            return rc;
        if (k < s->levels) {
            const size_t up = (size_t)s->width[k + 1];
            for (int c = 0; c < per_column; c++)
                for (size_t x = 0; x < w; x++)
                    s->count[k + 1][c * up + x / 2] += s->count[k][c * w + x];
            for (int c = 0; s->sum[k] && c < per_column; c++)
                for (size_t x = 0; x < w; x++)
                    s->sum[k + 1][c * up + x / 2] += s->sum[k][c * w + x];
        }
        memset(s->count[k], 0, (size_t)per_column * w * sizeof *s->count[k]);
        if (s->sum[k])
            memset(s->sum[k], 0, (size_t)per_column * w * sizeof *s->sum[k]);
        if (row % 2 == 0 && row != s->height[k] - 1)
            break; /* level k + 1's row still needs level k's next row */
    }
    return 0;
}

int ovr_add_rows(ovr_stream *s, const float *data, int n, ovr_emit_fn emit, void *ctx)
{
    if (s->levels == 0) {
        s->next_row[0] += n;
        return 0;
    }
    const size_t W = (size_t)s->width[0], w1 = (size_t)s->width[1];
    for (int r = 0; r < n; r++) {
        for (int b = 0; b < s->bands; b++) {
            const float *v = data + ((size_t)b * n + r) * W;
            if (s->kind == OVR_AVERAGE) {
                double *sum = s->sum[1] + (size_t)b * w1;
                uint32_t *count = s->count[1] + (size_t)b * w1;
                for (size_t x = 0; x < W; x++)
                    if (!isnan(v[x]))
                        sum[x / 2] += v[x], count[x / 2]++;
            } else {
                for (size_t x = 0; x < W; x++)
                    if (v[x] >= 0 && v[x] < (float)s->classes) /* not 255, not NaN */
                        s->count[1][(size_t)v[x] * w1 + x / 2]++;
            }
        }
        const int y = s->next_row[0]++;
        if (y % 2 == 1 || y == s->height[0] - 1) {
            int rc = complete_rows(s, 1, emit, ctx);
            if (rc)
                return rc;
        }
    }
    return 0;
}
