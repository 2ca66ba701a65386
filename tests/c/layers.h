/* Builders of single layers for unit tests (no ONNX file needed). */
#ifndef GLRP_TESTS_LAYERS_H
#define GLRP_TESTS_LAYERS_H

#include <stdlib.h>
#include <string.h>

#include "model/graph.h"

static inline void fill_signs(glrp_linear *l)
{
    l->Wpos = malloc(l->wsize * sizeof(float));
    l->Wneg = malloc(l->wsize * sizeof(float));
    for (size_t e = 0; e < l->wsize; e++) {
        l->Wpos[e] = l->W[e] > 0 ? l->W[e] : 0;
        l->Wneg[e] = l->W[e] < 0 ? l->W[e] : 0;
    }
}

static inline glrp_layer dense_layer(int cin, int cout, const float *W, const float *b)
{
    glrp_layer L;
    memset(&L, 0, sizeof L);
    L.kind = OP_DENSE;
    L.lin.cin = cin, L.lin.cout = cout, L.lin.groups = 1, L.lin.kh = L.lin.kw = 1;
    L.lin.wsize = (size_t)cin * cout;
    L.lin.W = malloc(L.lin.wsize * sizeof(float));
    L.lin.b = calloc((size_t)cout, sizeof(float));
    memcpy(L.lin.W, W, L.lin.wsize * sizeof(float));
    if (b)
        memcpy(L.lin.b, b, (size_t)cout * sizeof(float));
    fill_signs(&L.lin);
    return L;
}

/* pad: top, left, bottom, right. W may be NULL (then all weights are 1). */
static inline glrp_layer conv_layer(int cin, int cout, int groups, int ih, int iw, int kh,
                                    int kw, int sy, int sx, int dy, int dx, const int pad[4],
                                    const float *W)
{
    glrp_layer L;
    memset(&L, 0, sizeof L);
    L.kind = OP_CONV;
    glrp_linear *l = &L.lin;
    l->cin = cin, l->cout = cout, l->groups = groups, l->ih = ih, l->iw = iw;
    l->kh = kh, l->kw = kw, l->stride[0] = sy, l->stride[1] = sx, l->dil[0] = dy,
    l->dil[1] = dx;
    memcpy(l->pad, pad, sizeof l->pad);
    l->oh = (ih + pad[0] + pad[2] - dy * (kh - 1) - 1) / sy + 1;
    l->ow = (iw + pad[1] + pad[3] - dx * (kw - 1) - 1) / sx + 1;
    l->wsize = (size_t)cout * (cin / groups) * kh * kw;
    l->W = malloc(l->wsize * sizeof(float));
    l->b = calloc((size_t)cout, sizeof(float));
    for (size_t e = 0; e < l->wsize; e++)
        l->W[e] = W ? W[e] : 1.0f;
    fill_signs(l);
    return L;
}

static inline void free_layer(glrp_layer *L)
{
    free(L->lin.W), free(L->lin.b), free(L->lin.Wpos), free(L->lin.Wneg);
}

#endif
