/*
 * Max and average pooling, forward and relevance.
 *
 * Window bounds follow PyTorch (the exporter of most models geolrp sees): with ceil_mode a
 * window may run past the padded input, and average pooling's divisor is the window
 * clipped to the padded input (count_include_pad) or to the real input.
 */
#include <math.h>
#include <string.h>

#include "engine/engine.h"

typedef struct {
    int y0, x0;       /* first tap, may be outside the input */
    int y_end, x_end; /* average pooling: window end clipped to the padded input */
} window;

static window window_at(const glrp_pool *p, int oy, int ox)
{
    window w;
    w.y0 = oy * p->stride[0] - p->pad[0];
    w.x0 = ox * p->stride[1] - p->pad[1];
    int ye = w.y0 + (p->kh - 1) * p->dil[0] + 1, xe = w.x0 + (p->kw - 1) * p->dil[1] + 1;
    w.y_end = ye < p->ih + p->pad[2] ? ye : p->ih + p->pad[2];
    w.x_end = xe < p->iw + p->pad[3] ? xe : p->iw + p->pad[3];
    return w;
}

/* Index of the maximum of a window within its plane, first in scan order on ties. */
static int window_argmax(const glrp_pool *p, const float *plane, int oy, int ox)
{
    window w = window_at(p, oy, ox);
    int best = -1;
    float best_v = -INFINITY;
    const int y_last = w.y0 + (p->kh - 1) * p->dil[0], x_last = w.x0 + (p->kw - 1) * p->dil[1];
    if (w.y0 >= 0 && w.x0 >= 0 && y_last < p->ih && x_last < p->iw) {
        /* Inside the input (nearly every window): the same scan without bounds checks. */
        for (int iy = w.y0; iy <= y_last; iy += p->dil[0])
            for (int ix = w.x0; ix <= x_last; ix += p->dil[1]) {
                float v = plane[iy * p->iw + ix];
                if (isnan(v))
                    return iy * p->iw + ix;
                if (best < 0 || v > best_v)
                    best = iy * p->iw + ix, best_v = v;
            }
        return best;
    }
    for (int ki = 0; ki < p->kh; ki++) {
        int iy = w.y0 + ki * p->dil[0];
        if (iy < 0 || iy >= p->ih)
            continue;
        for (int kj = 0; kj < p->kw; kj++) {
            int ix = w.x0 + kj * p->dil[1];
            if (ix < 0 || ix >= p->iw)
                continue;
            float v = plane[iy * p->iw + ix];
            if (best < 0 || v > best_v || isnan(v)) {
                best = iy * p->iw + ix;
                best_v = v;
                if (isnan(v))
                    return best;
            }
        }
    }
    return best;
}

void maxpool_forward(const glrp_pool *p, const float *x, float *y, int n)
{
    const size_t in_plane = (size_t)p->ih * p->iw, out_plane = (size_t)p->oh * p->ow;
    for (size_t q = 0; q < (size_t)n * p->c; q++) {
        const float *plane = x + q * in_plane;
        float *out = y + q * out_plane;
        for (int oy = 0; oy < p->oh; oy++)
            for (int ox = 0; ox < p->ow; ox++) {
                int at = window_argmax(p, plane, oy, ox);
                out[oy * p->ow + ox] = at >= 0 ? plane[at] : 0.0f;
            }
    }
}

/* Winner takes all: each output's relevance goes to the input that was its maximum. */
void maxpool_relevance_wta(const glrp_pool *p, const float *x, const float *R, float *Rin,
                           int n)
{
    const size_t in_plane = (size_t)p->ih * p->iw, out_plane = (size_t)p->oh * p->ow;
    memset(Rin, 0, (size_t)n * p->c * in_plane * sizeof *Rin);
    for (size_t q = 0; q < (size_t)n * p->c; q++) {
        const float *plane = x + q * in_plane;
        for (int oy = 0; oy < p->oh; oy++)
            for (int ox = 0; ox < p->ow; ox++) {
                int at = window_argmax(p, plane, oy, ox);
                if (at >= 0)
                    Rin[q * in_plane + (size_t)at] += R[q * out_plane + (size_t)(oy * p->ow + ox)];
            }
    }
}

static int avg_divisor(const glrp_pool *p, const window *w)
{
    if (p->count_include_pad)
        return (w->y_end - w->y0) * (w->x_end - w->x0);
    int y0 = w->y0 > 0 ? w->y0 : 0, x0 = w->x0 > 0 ? w->x0 : 0;
    int y1 = w->y_end < p->ih ? w->y_end : p->ih, x1 = w->x_end < p->iw ? w->x_end : p->iw;
    return (y1 - y0) * (x1 - x0);
}

/* Sum over the window's taps that lie inside the input; with scatter, adds s to them
 * instead. Taps in the padding contribute nothing (zero padding). */
static float window_sum(const glrp_pool *p, const window *w, const float *plane, float *scatter,
                        float s)
{
    float sum = 0.0f;
    for (int ki = 0; ki < p->kh; ki++) {
        int iy = w->y0 + ki * p->dil[0];
        if (iy < 0 || iy >= p->ih)
            continue;
        for (int kj = 0; kj < p->kw; kj++) {
            int ix = w->x0 + kj * p->dil[1];
            if (ix < 0 || ix >= p->iw)
                continue;
            if (scatter)
                scatter[iy * p->iw + ix] += s;
            else
                sum += plane[iy * p->iw + ix];
        }
    }
    return sum;
}

void avgpool_forward(const glrp_pool *p, const float *x, float *y, int n)
{
    const size_t in_plane = (size_t)p->ih * p->iw, out_plane = (size_t)p->oh * p->ow;
    for (size_t q = 0; q < (size_t)n * p->c; q++) {
        const float *plane = x + q * in_plane;
        for (int oy = 0; oy < p->oh; oy++)
            for (int ox = 0; ox < p->ow; ox++) {
                window w = window_at(p, oy, ox);
                int d = avg_divisor(p, &w);
                float sum = window_sum(p, &w, plane, NULL, 0.0f);
                y[q * out_plane + (size_t)(oy * p->ow + ox)] = d > 0 ? sum / (float)d : 0.0f;
            }
    }
}

void avgpool_relevance(const glrp_pool *p, const float *x, const float *y, const float *R,
                       float *Rin, int n)
{
    const size_t in_plane = (size_t)p->ih * p->iw, out_plane = (size_t)p->oh * p->ow;
    memset(Rin, 0, (size_t)n * p->c * in_plane * sizeof *Rin);
    for (size_t q = 0; q < (size_t)n * p->c; q++) {
        const float *plane = x + q * in_plane;
        float *rin = Rin + q * in_plane;
        for (int oy = 0; oy < p->oh; oy++)
            for (int ox = 0; ox < p->ow; ox++) {
                size_t o = q * out_plane + (size_t)(oy * p->ow + ox);
                window w = window_at(p, oy, ox);
                int d = avg_divisor(p, &w);
                if (d <= 0)
                    continue;
                float s = glrp_stab_div(R[o], y[o], GLRP_NORM_EPS) / (float)d;
                window_sum(p, &w, NULL, rin, s);
            }
        for (size_t e = 0; e < in_plane; e++)
            rin[e] *= plane[e];
    }
}
