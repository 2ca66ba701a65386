#include "analysis/metrics.h"

#include <math.h>
#include <stdlib.h>

void relevance_per_pixel(const float *R, int C, size_t plane, float *out)
{
    for (size_t p = 0; p < plane; p++) {
        float s = 0;
        for (int c = 0; c < C; c++)
            s += R[(size_t)c * plane + p];
        out[p] = s;
    }
}

double metric_mass_accuracy(const float *r, const float *mask, size_t n)
{
    double in = 0, all = 0;
    for (size_t p = 0; p < n; p++) {
        double v = r[p] > 0 ? r[p] : 0;
        all += v;
        if (mask[p] > 0)
            in += v;
    }
    return all > 0 ? in / all : NAN;
}

static const float *g_sort_r; /* qsort has no context argument */

static int by_relevance_desc(const void *a, const void *b)
{
    int i = *(const int *)a, j = *(const int *)b;
    float ri = g_sort_r[i], rj = g_sort_r[j];
    if (ri > rj) return -1;
    if (ri < rj) return 1;
    return (i > j) - (i < j);
}

void metric_order_desc(const float *r, size_t n, int *order)
{
    for (size_t p = 0; p < n; p++)
        order[p] = (int)p;
    g_sort_r = r;
    qsort(order, n, sizeof *order, by_relevance_desc);
    g_sort_r = NULL;
}

double metric_rank_accuracy(const float *r, const float *mask, size_t n)
{
    size_t k = 0;
    for (size_t p = 0; p < n; p++)
        k += mask[p] > 0;
    if (k == 0)
        return NAN;
    int *order = malloc(n * sizeof *order);
    if (!order)
        return NAN;
    metric_order_desc(r, n, order);
    size_t hit = 0;
    for (size_t q = 0; q < k; q++)
        hit += mask[order[q]] > 0;
    free(order);
    return (double)hit / (double)k;
}

double metric_border_ratio(const float *r, int h, int w, int k)
{
    double border = 0, all = 0;
    long border_px = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double v = fabs(r[y * w + x]);
            int in_border = y < k || x < k || y >= h - k || x >= w - k;
            all += v;
            if (in_border) {
                border += v;
                border_px++;
            }
        }
    double area = (double)border_px / ((double)h * w);
    return all > 0 && area > 0 ? (border / all) / area : NAN;
}

double metric_zero_input_share(const float *R, const float *x, size_t n)
{
    double zero = 0, all = 0;
    size_t zeros = 0;
    for (size_t e = 0; e < n; e++) {
        double v = fabs(R[e]);
        all += v;
        if (x[e] == 0.0f) {
            zero += v;
            zeros++;
        }
    }
    return all > 0 && zeros > 0 ? (zero / all) / ((double)zeros / (double)n) : NAN;
}

double metric_aopc(const double *f, int steps)
{
    double s = 0;
    for (int k = 0; k <= steps; k++)
        s += f[0] - f[k];
    return s / (steps + 1);
}

static const double *g_sort_d;

static int by_value_desc_d(const void *a, const void *b)
{
    int i = *(const int *)a, j = *(const int *)b;
    double vi = g_sort_d[i], vj = g_sort_d[j];
    if (vi > vj) return -1;
    if (vi < vj) return 1;
    return (i > j) - (i < j);
}

int ranks_desc_d(const double *v, size_t n, double *rank)
{
    int *order = malloc((n ? n : 1) * sizeof *order);
    if (!order)
        return -1;
    for (size_t p = 0; p < n; p++)
        order[p] = (int)p;
    g_sort_d = v;
    qsort(order, n, sizeof *order, by_value_desc_d);
    g_sort_d = NULL;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && v[order[j + 1]] == v[order[i]])
            j++;
        double r = (i + j) / 2.0 + 1;
        for (size_t q = i; q <= j; q++)
            rank[order[q]] = r;
        i = j + 1;
    }
    free(order);
    return 0;
}

double spearman_d(const double *a, const double *b, size_t n)
{
    if (n < 2)
        return NAN;
    double *ra = malloc(n * sizeof *ra), *rb = malloc(n * sizeof *rb);
    if (!ra || !rb || ranks_desc_d(a, n, ra) || ranks_desc_d(b, n, rb)) {
        free(ra), free(rb);
        return NAN;
    }
    double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    for (size_t i = 0; i < n; i++)
        ma += ra[i], mb += rb[i];
    ma /= (double)n, mb /= (double)n;
    for (size_t i = 0; i < n; i++) {
        sab += (ra[i] - ma) * (rb[i] - mb);
        saa += (ra[i] - ma) * (ra[i] - ma);
        sbb += (rb[i] - mb) * (rb[i] - mb);
    }
    free(ra), free(rb);
    return saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : NAN;
}

double metric_spearman(const float *a, const float *b, size_t n)
{
    double *da = malloc((n ? n : 1) * sizeof *da), *db = malloc((n ? n : 1) * sizeof *db);
    double rho = NAN;
    if (da && db) {
        for (size_t i = 0; i < n; i++)
            da[i] = a[i], db[i] = b[i];
        rho = spearman_d(da, db, n);
    }
    free(da), free(db);
    return rho;
}

void stat_add(stat_acc *s, double v)
{
    if (isnan(v)) {
        s->undefined++;
        return;
    }
    s->sum += v;
    s->sum2 += v * v;
    s->n++;
}

double stat_mean(const stat_acc *s)
{
    return s->n ? s->sum / (double)s->n : NAN;
}

double stat_std(const stat_acc *s)
{
    if (s->n < 2)
        return s->n ? 0 : NAN;
    double m = s->sum / (double)s->n, var = s->sum2 / (double)s->n - m * m;
    return sqrt(var > 0 ? var * (double)s->n / (double)(s->n - 1) : 0);
}
