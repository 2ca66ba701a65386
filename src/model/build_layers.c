/*
 * Lowering ONNX operators that read activations into engine layers, with shape inference
 * for the planned batch. Constants around them are absorbed here: a BatchNorm right after
 * a Conv or Gemm is folded into its weights (as the reference library's canonizer does,
 * so rules see the layer the user trained), a constant Add after a linear layer becomes
 * its bias, and element-wise arithmetic by constants becomes one affine layer.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/import.h"
#include "util/error.h"

const char *const build_supported_ops =
    "Conv, Gemm, MatMul, BatchNormalization, Relu, LeakyRelu, Sigmoid, Tanh, MaxPool, "
    "AveragePool, GlobalAveragePool, ReduceMean (spatial), Add, Sub, Mul, Div, Flatten, Reshape, Concat, Pad, "
    "Softmax (final), Identity, Dropout, Constant, and on constants: Shape, Gather, "
    "Unsqueeze, Squeeze, Cast, ConstantOfShape, Slice";

/* ------------------------------------------------------------- helpers --- */

static const glrp_tensor *act_of(importer *im, const value *v)
{
    return &im->m->tensors[v->tensor];
}

/* Creates the node's output activation and an empty layer producing it. */
static glrp_layer *new_layer(importer *im, op_kind kind, const int *ins, int n_in, int rank,
                             const int64_t *dims, glrp_error *err)
{
    struct glrp_model *m = im->m;
    const Onnx__NodeProto *n = im->node;
    if (n->n_output < 1) {
        imp_node_error(im, err, GLRP_ERR_INPUT, "node has no output");
        return NULL;
    }
    size_t numel = 1;
    for (int k = 0; k < rank; k++) {
        if (dims[k] <= 0) {
            imp_node_error(im, err, GLRP_ERR_INPUT, "output dimension %d is %lld (input too "
                           "small for this operator?)", k + 1, (long long)dims[k]);
            return NULL;
        }
        if (!glrp_mul_ok(numel, (size_t)dims[k], &numel) || numel > GLRP_MAX_ELEMENTS) {
            imp_node_error(im, err, GLRP_ERR_INPUT, "output is absurdly large (more than 2^31 "
                           "elements per sample)");
            return NULL;
        }
    }
    value *v = imp_define(im, n->output[0], err);
    if (!v)
        return NULL;
    glrp_tensor *t = &m->tensors[m->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = glrp_strdup(n->output[0]);
    t->rank = rank;
    memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    t->numel = numel;
    t->producer = m->n_layers;
    v->kind = VAL_ACT;
    v->tensor = m->n_tensors++;

    glrp_layer *L = &m->layers[m->n_layers++];
    memset(L, 0, sizeof *L);
    L->kind = kind;
    L->out = v->tensor;
    L->linear_index = -1;
    char fallback[64];
    snprintf(fallback, sizeof fallback, "%s_%d", n->op_type, im->node_index);
    L->name = glrp_strdup(n->name && n->name[0] ? n->name : fallback);
    L->op_type = glrp_strdup(n->op_type);
    L->in = glrp_alloc((size_t)n_in, sizeof *L->in);
    L->n_in = n_in;
    if (!t->name || !L->name || !L->op_type || !L->in) {
        glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
        return NULL;
    }
    for (int k = 0; k < n_in; k++) {
        L->in[k] = ins[k];
        m->tensors[ins[k]].consumers++;
    }
    return L;
}

/* A layer whose output has the same shape as its single input. */
static glrp_layer *same_shape_layer(importer *im, op_kind kind, const value *x, glrp_error *err)
{
    const glrp_tensor *t = act_of(im, x);
    return new_layer(im, kind, &x->tensor, 1, t->rank, t->dims, err);
}

/* The node's output is the same activation as its input (Identity, Dropout, Softmax). */
static int alias(importer *im, const value *x, int is_softmax, glrp_error *err)
{
    int tensor = x->tensor;
    if (im->node->n_output < 1) /* a hostile file: found by fuzz_onnx */
        return imp_node_error(im, err, GLRP_ERR_INPUT, "node has no output");
    value *v = imp_define(im, im->node->output[0], err);
    if (!v)
        return err->code;
    v->kind = VAL_ACT;
    v->tensor = tensor;
    v->is_softmax = is_softmax;
    return 0;
}

/* The linear layer producing x, when x feeds nothing else, so constants may be folded
 * into it. */
static glrp_layer *sole_linear_producer(importer *im, const value *x)
{
    const glrp_tensor *t = act_of(im, x);
    if (t->producer < 0)
        return NULL;
    glrp_layer *L = &im->m->layers[t->producer];
    if (L->kind != OP_DENSE && L->kind != OP_CONV)
        return NULL;
    if (L->out != x->tensor || imp_uses(im, x->name) != 1)
        return NULL;
    return L;
}

/* The shape a constant broadcasts with against an activation (numpy broadcasting against
 * (N, dims...); a leading batch dimension must be 1), as 3-D per-sample dims where 1 marks a
 * broadcast axis. The constant's own values are then in row-major order over these dims. */
static int broadcast_shape(importer *im, const const_tensor *c, const glrp_tensor *t,
                           int64_t pdims[3], glrp_error *err)
{
    int full_rank = t->rank + 1;
    int64_t full[GLRP_MAX_RANK + 1];
    full[0] = 1;
    for (int k = 0; k < t->rank; k++)
        full[k + 1] = t->dims[k];
    pdims[0] = pdims[1] = pdims[2] = 1;
    if (c->rank > full_rank)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "constant of rank %d does not "
                              "broadcast to the activation of rank %d", c->rank, full_rank);
    for (int k = 0; k < c->rank; k++) {
        int fk = full_rank - c->rank + k; /* axis of (N, dims...) this dimension meets */
        int64_t cd = c->dims[k], ad = full[fk];
        if (cd != 1 && cd != ad)
            return imp_node_error(im, err, GLRP_ERR_INPUT, "constant dimension %d (%lld) does "
                                  "not broadcast to %lld", k, (long long)cd, (long long)ad);
        if (fk >= 1)
            pdims[3 - t->rank + fk - 1] = cd;
    }
    return 0;
}

/* Makes an affine layer on x owning scale and shift, whose values are laid out row-major
 * over pdims (3-D per-sample broadcast dims, as broadcast_shape gives). */
static int affine_layer(importer *im, const value *x, const int64_t pdims[3], float *scale,
                        float *shift, glrp_error *err)
{
    glrp_layer *L = same_shape_layer(im, OP_AFFINE, x, err);
    if (!L) {
        free(scale);
        free(shift);
        return err->code;
    }
    L->scale = scale;
    L->shift = shift;
    const glrp_tensor *t = act_of(im, x);
    size_t stride = 1;
    for (int k = 2; k >= 0; k--) {
        int tk = k - (3 - t->rank); /* per-sample axis, or < 0 for a padded one */
        L->aff_dims[k] = tk >= 0 ? (size_t)t->dims[tk] : 1;
        L->aff_stride[k] = pdims[k] == 1 ? 0 : stride;
        stride *= (size_t)pdims[k];
    }
    return 0;
}

/* Per-output-channel values of a constant that broadcasts as a bias of L. */
static int const_as_channel_vector(const const_tensor *c, const glrp_tensor *t, float *out)
{
    int cout = (int)t->dims[0];
    /* Accept shapes (), (1), (C), (1, C) for dense; (C, 1, 1), (1, C, 1, 1), () for conv. */
    size_t count = c->count;
    if (count == 1) {
        for (int k = 0; k < cout; k++)
            out[k] = const_get_f(c, 0);
        return 1;
    }
    if (count != (size_t)cout)
        return 0;
    int nontrivial = -1;
    for (int k = 0; k < c->rank; k++)
        if (c->dims[k] != 1)
            nontrivial = k;
    int channel_axis = c->rank - t->rank; /* position of dims[0] in c after alignment */
    if (nontrivial != channel_axis)
        return 0;
    for (int k = 0; k < cout; k++)
        out[k] = const_get_f(c, (size_t)k);
    return 1;
}

/* ----------------------------------------------------------- linear ops --- */

static int64_t conv_out(int64_t in, int64_t k, int64_t s, int64_t d, int64_t p0, int64_t p1,
                        int ceil_mode)
{
    int64_t span = in + p0 + p1 - d * (k - 1) - 1;
    if (span < 0)
        return 0;
    int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    /* PyTorch: the last window must start inside the input or the left padding. */
    if (ceil_mode && (out - 1) * s >= in + p0)
        out--;
    return out;
}

/* Reads pads/strides/dilations/auto_pad of Conv and pooling nodes. */
static int spatial_attrs(importer *im, int ih, int iw, int kh, int kw, int stride[2],
                         int dil[2], int pad[4], glrp_error *err)
{
    const Onnx__NodeProto *n = im->node;
    int64_t v[8];
    int c;
    stride[0] = stride[1] = dil[0] = dil[1] = 1;
    pad[0] = pad[1] = pad[2] = pad[3] = 0;
    if ((c = imp_attr_ints(n, "strides", v, 8)) >= 0) {
        if (c != 2 || v[0] < 1 || v[1] < 1)
            return imp_node_error(im, err, GLRP_ERR_INPUT, "strides must be two positive "
                                  "values");
        stride[0] = (int)v[0], stride[1] = (int)v[1];
    }
    if ((c = imp_attr_ints(n, "dilations", v, 8)) >= 0) {
        if (c != 2 || v[0] < 1 || v[1] < 1)
            return imp_node_error(im, err, GLRP_ERR_INPUT, "dilations must be two positive "
                                  "values");
        dil[0] = (int)v[0], dil[1] = (int)v[1];
    }
    if ((c = imp_attr_ints(n, "pads", v, 8)) >= 0) {
        if (c != 4)
            return imp_node_error(im, err, GLRP_ERR_INPUT, "pads must have 4 values (2-D)");
        for (int k = 0; k < 4; k++) {
            if (v[k] < 0 || v[k] > 1 << 20)
                return imp_node_error(im, err, GLRP_ERR_INPUT, "bad pad %lld", (long long)v[k]);
        }
        /* ONNX order: begin of each axis, then end of each axis. */
        pad[0] = (int)v[0], pad[1] = (int)v[1], pad[2] = (int)v[2], pad[3] = (int)v[3];
    }
    char buf[32];
    const char *ap = imp_attr_string(n, "auto_pad", "NOTSET", buf, sizeof buf);
    if (!strcmp(ap, "VALID")) {
        memset(pad, 0, 4 * sizeof *pad);
    } else if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
        int in[2] = {ih, iw}, k[2] = {kh, kw};
        for (int a = 0; a < 2; a++) {
            int out = (in[a] + stride[a] - 1) / stride[a];
            int total = (out - 1) * stride[a] + dil[a] * (k[a] - 1) + 1 - in[a];
            if (total < 0)
                total = 0;
            int small = total / 2, big = total - small;
            pad[a] = ap[5] == 'U' ? small : big;
            pad[a + 2] = total - pad[a];
        }
    } else if (strcmp(ap, "NOTSET") != 0) {
        return imp_node_error(im, err, GLRP_ERR_INPUT, "auto_pad '%s' not supported", ap);
    }
    return 0;
}

static int need_image(importer *im, const glrp_tensor *t, glrp_error *err)
{
    if (t->rank != 3)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "needs a (N, C, H, W) input, got rank "
                              "%d", t->rank + 1);
    return 0;
}

static int finish_linear(importer *im, glrp_layer *L, const const_tensor *W,
                         const const_tensor *B, glrp_error *err)
{
    glrp_linear *lin = &L->lin;
    lin->wsize = W->count;
    lin->W = glrp_alloc(W->count, sizeof *lin->W);
    lin->b = glrp_alloc((size_t)lin->cout, sizeof *lin->b);
    if (!lin->W || !lin->b)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    for (size_t k = 0; k < W->count; k++)
        lin->W[k] = const_get_f(W, k);
    if (B) {
        if (B->count != (size_t)lin->cout)
            return imp_node_error(im, err, GLRP_ERR_INPUT, "bias has %zu values, expected %d",
                                  B->count, lin->cout);
        for (int k = 0; k < lin->cout; k++)
            lin->b[k] = const_get_f(B, (size_t)k);
    }
    L->linear_index = im->m->n_linear++;
    im->m->n_params += W->count + (size_t)lin->cout;
    return 0;
}

static int build_conv(importer *im, glrp_error *err)
{
    value *x = imp_input(im, 0), *w = imp_input(im, 1), *b = imp_input(im, 2);
    if (!x || !w || x->kind != VAL_ACT || w->kind != VAL_CONST || (b && b->kind != VAL_CONST))
        return imp_node_error(im, err, GLRP_ERR_INPUT, "Conv needs an activation input and "
                              "constant weights");
    const glrp_tensor *t = act_of(im, x);
    if (need_image(im, t, err))
        return err->code;
    if (w->c.rank != 4)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "only 2-D convolutions are supported "
                              "(weight rank %d)", w->c.rank);
    int64_t groups = imp_attr_int(im->node, "group", 1);
    int64_t cin = t->dims[0], cout = w->c.dims[0];
    if (groups < 1 || cin % groups || cout % groups || w->c.dims[1] * groups != cin)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "weight shape (%lld, %lld, ...) with "
                              "group %lld does not match %lld input channels",
                              (long long)cout, (long long)w->c.dims[1], (long long)groups,
                              (long long)cin);
    glrp_linear lin = {0};
    lin.cin = (int)cin, lin.cout = (int)cout, lin.groups = (int)groups;
    lin.kh = (int)w->c.dims[2], lin.kw = (int)w->c.dims[3];
    lin.ih = (int)t->dims[1], lin.iw = (int)t->dims[2];
    if (spatial_attrs(im, lin.ih, lin.iw, lin.kh, lin.kw, lin.stride, lin.dil, lin.pad, err))
        return err->code;
    int64_t dims[3] = {cout,
                       conv_out(lin.ih, lin.kh, lin.stride[0], lin.dil[0], lin.pad[0],
                                lin.pad[2], 0),
                       conv_out(lin.iw, lin.kw, lin.stride[1], lin.dil[1], lin.pad[1],
                                lin.pad[3], 0)};
    lin.oh = (int)dims[1], lin.ow = (int)dims[2];
    glrp_layer *L = new_layer(im, OP_CONV, &x->tensor, 1, 3, dims, err);
    if (!L)
        return err->code;
    L->lin = lin;
    return finish_linear(im, L, &w->c, b ? &b->c : NULL, err);
}

/* ONNX stores B as [in, out]; the engine keeps dense weights as [out, in]. */
static int transpose_weights(glrp_layer *L, glrp_error *err)
{
    const int fin = L->lin.cin, fout = L->lin.cout;
    float *T = glrp_alloc((size_t)fin * (size_t)fout, sizeof *T);
    if (!T)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    for (int i = 0; i < fin; i++)
        for (int o = 0; o < fout; o++)
            T[(size_t)o * fin + i] = L->lin.W[(size_t)i * fout + o];
    free(L->lin.W);
    L->lin.W = T;
    return 0;
}

/* A dense layer from x (N, fin) with weights W, stored [in, out] when transposed. */
static glrp_layer *new_dense(importer *im, const value *x, int64_t fin, int64_t fout,
                             const const_tensor *W, int transposed, glrp_error *err)
{
    glrp_layer *L = new_layer(im, OP_DENSE, &x->tensor, 1, 1, &fout, err);
    if (!L)
        return NULL;
    L->lin.cin = (int)fin, L->lin.cout = (int)fout, L->lin.groups = 1;
    L->lin.kh = L->lin.kw = 1;
    if (finish_linear(im, L, W, NULL, err) || (transposed && transpose_weights(L, err)))
        return NULL;
    return L;
}

/* Gemm: Y = alpha * A' B' + beta * C with A the (N, F) activation. */
static int build_gemm(importer *im, glrp_error *err)
{
    const Onnx__NodeProto *n = im->node;
    value *a = imp_input(im, 0), *bw = imp_input(im, 1), *c = imp_input(im, 2);
    if (!a || !bw || a->kind != VAL_ACT || bw->kind != VAL_CONST || (c && c->kind != VAL_CONST))
        return imp_node_error(im, err, GLRP_ERR_INPUT, "Gemm needs an activation as A and "
                              "constants as B and C");
    if (imp_attr_int(n, "transA", 0))
        return imp_node_error(im, err, GLRP_ERR_INPUT, "transA=1 would put the batch axis in "
                              "the contraction; not supported");
    const glrp_tensor *t = act_of(im, a);
    if (t->rank != 1)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "A must be (N, F), got rank %d "
                              "(missing Flatten?)", t->rank + 1);
    if (bw->c.rank != 2)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "B must be a matrix");
    int transB = (int)imp_attr_int(n, "transB", 0);
    float alpha = imp_attr_float(n, "alpha", 1.0f), beta = imp_attr_float(n, "beta", 1.0f);
    int64_t fin = transB ? bw->c.dims[1] : bw->c.dims[0];
    int64_t fout = transB ? bw->c.dims[0] : bw->c.dims[1];
    if (fin != t->dims[0])
        return imp_node_error(im, err, GLRP_ERR_INPUT, "B expects %lld features, the input "
                              "has %lld", (long long)fin, (long long)t->dims[0]);
    glrp_layer *L = new_dense(im, a, fin, fout, &bw->c, !transB, err);
    if (!L)
        return err->code;
    /* Scale W (now [out, in]) by alpha. */
    for (size_t k = 0; k < L->lin.wsize; k++)
        L->lin.W[k] *= alpha;
    if (c) {
        glrp_tensor out_t = {.rank = 1, .dims = {fout}, .numel = (size_t)fout};
        if (c->c.rank > 2 || !const_as_channel_vector(&c->c, &out_t, L->lin.b))
            return imp_node_error(im, err, GLRP_ERR_INPUT, "C must broadcast as a bias of %lld "
                                  "values", (long long)fout);
        for (int k = 0; k < L->lin.cout; k++)
            L->lin.b[k] *= beta;
    }
    return 0;
}

static int build_matmul(importer *im, glrp_error *err)
{
    value *a = imp_input(im, 0), *bw = imp_input(im, 1);
    if (!a || !bw || a->kind != VAL_ACT || bw->kind != VAL_CONST || bw->c.rank != 2)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "MatMul is supported as (N, F) "
                              "activation times a constant matrix");
    const glrp_tensor *t = act_of(im, a);
    if (t->rank != 1 || bw->c.dims[0] != t->dims[0])
        return imp_node_error(im, err, GLRP_ERR_INPUT, "MatMul of a rank-%d activation with a "
                              "(%lld, %lld) matrix is not supported", t->rank + 1,
                              (long long)bw->c.dims[0], (long long)bw->c.dims[1]);
    return new_dense(im, a, bw->c.dims[0], bw->c.dims[1], &bw->c, 1, err) ? 0 : err->code;
}

/* ---------------------------------------------------------- BatchNorm --- */

static int build_batchnorm(importer *im, glrp_error *err)
{
    value *x = imp_input(im, 0);
    value *p[4] = {imp_input(im, 1), imp_input(im, 2), imp_input(im, 3), imp_input(im, 4)};
    if (!x || x->kind != VAL_ACT)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "BatchNormalization needs an "
                              "activation input");
    const glrp_tensor *t = act_of(im, x);
    int64_t c = t->dims[0];
    for (int k = 0; k < 4; k++)
        if (!p[k] || p[k]->kind != VAL_CONST || p[k]->c.count != (size_t)c)
            return imp_node_error(im, err, GLRP_ERR_INPUT, "scale, bias, mean and var must be "
                                  "constants of %lld values", (long long)c);
    float eps = imp_attr_float(im->node, "epsilon", 1e-5f);
    float *scale = glrp_alloc((size_t)c, sizeof *scale), *shift = glrp_alloc((size_t)c,
                                                                              sizeof *shift);
    if (!scale || !shift) {
        free(scale);
        free(shift);
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    }
    for (int64_t k = 0; k < c; k++) {
        scale[k] = const_get_f(&p[0]->c, (size_t)k) /
                   sqrtf(const_get_f(&p[3]->c, (size_t)k) + eps);
        shift[k] = const_get_f(&p[1]->c, (size_t)k) -
                   const_get_f(&p[2]->c, (size_t)k) * scale[k];
    }
    glrp_layer *lin = sole_linear_producer(im, x);
    if (lin) {
        /* Fold: W' = W * scale[o], b' = b * scale[o] + shift[o]. */
        size_t per_out = lin->lin.wsize / (size_t)lin->lin.cout;
        for (int o = 0; o < lin->lin.cout; o++) {
            for (size_t k = 0; k < per_out; k++)
                lin->lin.W[(size_t)o * per_out + k] *= scale[o];
            lin->lin.b[o] = lin->lin.b[o] * scale[o] + shift[o];
        }
        free(scale);
        free(shift);
        return alias(im, x, 0, err);
    }
    /* Cannot fold: an affine layer (relevance passes through it), one value per channel. */
    int64_t pdims[3] = {1, 1, 1};
    pdims[3 - t->rank] = c;
    return affine_layer(im, x, pdims, scale, shift, err);
}

/* ------------------------------------------------ element-wise arithmetic --- */

static int build_arith(importer *im, char op, glrp_error *err)
{
    value *a = imp_input(im, 0), *b = imp_input(im, 1);
    if (!a || !b)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "needs two inputs");
    if (a->kind == VAL_ACT && b->kind == VAL_ACT) {
        if (op != '+')
            return imp_node_error(im, err, GLRP_ERR_INPUT, "%s of two activations is not "
                                  "supported (only Add, as in residual connections)",
                                  im->node->op_type);
        const glrp_tensor *ta = act_of(im, a), *tb = act_of(im, b);
        if (ta->rank != tb->rank || memcmp(ta->dims, tb->dims, (size_t)ta->rank * 8) != 0)
            return imp_node_error(im, err, GLRP_ERR_INPUT, "Add of activations with different "
                                  "shapes (broadcasting between activations is not "
                                  "supported)");
        int ins[2] = {a->tensor, b->tensor};
        return new_layer(im, OP_ADD, ins, 2, ta->rank, ta->dims, err) ? 0 : err->code;
    }
    int act_first = a->kind == VAL_ACT;
    value *x = act_first ? a : b, *c = act_first ? b : a;
    const glrp_tensor *t = act_of(im, x);
    if (op == '/' && !act_first)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "division of a constant by an "
                              "activation is not supported");
    /* A constant added right after a linear layer is its bias. */
    glrp_layer *lin = op == '+' || op == '-' ? sole_linear_producer(im, x) : NULL;
    if (lin) {
        float *bias = glrp_alloc((size_t)lin->lin.cout, sizeof *bias);
        if (!bias)
            return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
        if (const_as_channel_vector(&c->c, t, bias) && (op == '+' || act_first)) {
            for (int k = 0; k < lin->lin.cout; k++)
                lin->lin.b[k] += op == '+' ? bias[k] : -bias[k];
            free(bias);
            return alias(im, x, 0, err);
        }
        free(bias);
    }
    int64_t pdims[3] = {1, 1, 1};
    if (broadcast_shape(im, &c->c, t, pdims, err))
        return err->code;
    size_t count = c->c.count; /* = the product of pdims: the batch dimension is 1 */
    float *one = glrp_alloc(count, sizeof *one), *zero = glrp_alloc(count, sizeof *zero);
    if (!one || !zero) {
        free(one);
        free(zero);
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    }
    for (size_t p = 0; p < count; p++) {
        float v = const_get_f(&c->c, p);
        one[p] = 1.0f;
        zero[p] = 0.0f;
        switch (op) {
        case '+': zero[p] = v; break;
        case '-': if (act_first) zero[p] = -v; else { one[p] = -1.0f; zero[p] = v; } break;
        case '*': one[p] = v; break;
        default: one[p] = 1.0f / v; break;
        }
    }
    return affine_layer(im, x, pdims, one, zero, err);
}

/* ------------------------------------------------------------- pooling --- */

static int build_pool(importer *im, op_kind kind, glrp_error *err)
{
    value *x = imp_input(im, 0);
    if (!x || x->kind != VAL_ACT)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "needs an activation input");
    const glrp_tensor *t = act_of(im, x);
    if (need_image(im, t, err))
        return err->code;
    if (im->node->n_output > 1 && im->node->output[1][0])
        return imp_node_error(im, err, GLRP_ERR_INPUT, "the Indices output is not supported");
    glrp_pool p = {0};
    p.c = (int)t->dims[0], p.ih = (int)t->dims[1], p.iw = (int)t->dims[2];
    if (kind == OP_GLOBALAVGPOOL) {
        p.kh = p.ih, p.kw = p.iw;
        p.stride[0] = p.stride[1] = p.dil[0] = p.dil[1] = 1;
        p.oh = p.ow = 1;
        p.count_include_pad = 1;
    } else {
        int64_t k[4];
        if (imp_attr_ints(im->node, "kernel_shape", k, 4) != 2 || k[0] < 1 || k[1] < 1)
            return imp_node_error(im, err, GLRP_ERR_INPUT, "kernel_shape must be two positive "
                                  "values (2-D pooling)");
        p.kh = (int)k[0], p.kw = (int)k[1];
        if (spatial_attrs(im, p.ih, p.iw, p.kh, p.kw, p.stride, p.dil, p.pad, err))
            return err->code;
        int ceil_mode = (int)imp_attr_int(im->node, "ceil_mode", 0);
        p.count_include_pad = (int)imp_attr_int(im->node, "count_include_pad", 0);
        p.oh = (int)conv_out(p.ih, p.kh, p.stride[0], p.dil[0], p.pad[0], p.pad[2], ceil_mode);
        p.ow = (int)conv_out(p.iw, p.kw, p.stride[1], p.dil[1], p.pad[1], p.pad[3], ceil_mode);
        if (kind == OP_AVGPOOL && (p.dil[0] != 1 || p.dil[1] != 1))
            return imp_node_error(im, err, GLRP_ERR_INPUT, "dilated average pooling is not "
                                  "supported");
    }
    int64_t dims[3] = {p.c, p.oh, p.ow};
    glrp_layer *L = new_layer(im, kind, &x->tensor, 1, 3, dims, err);
    if (!L)
        return err->code;
    L->pool = p;
    return 0;
}

/* ReduceMean over the two spatial axes is a global average pool (PyTorch's
 * x.mean(dim=(2, 3))); other reductions are not supported. */
static int build_reduce_mean(importer *im, glrp_error *err)
{
    value *x = imp_input(im, 0);
    const glrp_tensor *t = act_of(im, x);
    if (need_image(im, t, err))
        return err->code;
    int64_t axes[8];
    int n = imp_attr_ints(im->node, "axes", axes, 8);
    if (n < 0) {
        value *a = imp_input(im, 1);
        if (!a || a->kind != VAL_CONST || a->c.count > 8)
            return imp_node_error(im, err, GLRP_ERR_INPUT, "ReduceMean needs constant axes");
        n = (int)a->c.count;
        for (int k = 0; k < n; k++)
            axes[k] = const_get_i(&a->c, (size_t)k);
    }
    int spatial = 0;
    for (int k = 0; k < n; k++) {
        int64_t a = axes[k] < 0 ? axes[k] + 4 : axes[k];
        if (a != 2 && a != 3)
            return imp_node_error(im, err, GLRP_ERR_INPUT, "ReduceMean over axis %lld is not "
                                  "supported (only the spatial axes 2 and 3)",
                                  (long long)axes[k]);
        spatial |= a == 2 ? 1 : 2;
    }
    if (spatial != 3)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "ReduceMean must reduce both spatial "
                              "axes (2, 3)");
    int keepdims = (int)imp_attr_int(im->node, "keepdims", 1);
    int64_t dims[3] = {t->dims[0], 1, 1};
    glrp_layer *L = new_layer(im, OP_GLOBALAVGPOOL, &x->tensor, 1, keepdims ? 3 : 1, dims, err);
    if (!L)
        return err->code;
    glrp_pool p = {.kh = (int)t->dims[1], .kw = (int)t->dims[2], .stride = {1, 1},
                   .dil = {1, 1}, .count_include_pad = 1, .c = (int)t->dims[0],
                   .ih = (int)t->dims[1], .iw = (int)t->dims[2], .oh = 1, .ow = 1};
    L->pool = p;
    return 0;
}

/* --------------------------------------------------------------- shapes --- */

static int build_reshape(importer *im, glrp_error *err)
{
    value *x = imp_input(im, 0);
    const glrp_tensor *t = act_of(im, x);
    int64_t dims[GLRP_MAX_RANK];
    int rank;
    int64_t batch = im->m->max_batch;
    if (!strcmp(im->node->op_type, "Flatten")) {
        int64_t axis = imp_attr_int(im->node, "axis", 1);
        if (axis < 0)
            axis += t->rank + 1;
        if (axis != 1)
            return imp_node_error(im, err, GLRP_ERR_INPUT, "Flatten with axis %lld mixes the "
                                  "batch axis; only axis 1 is supported", (long long)axis);
        rank = 1;
        dims[0] = (int64_t)t->numel;
    } else {
        value *s = imp_input(im, 1);
        if (!s || s->kind != VAL_CONST)
            return imp_node_error(im, err, GLRP_ERR_INPUT, "Reshape needs a shape known at "
                                  "load time");
        if (s->c.count < 1 || s->c.count > GLRP_MAX_RANK + 1)
            return imp_node_error(im, err, GLRP_ERR_INPUT, "Reshape to rank %zu not supported",
                                  s->c.count);
        int64_t target[GLRP_MAX_RANK + 1] = {0}, full[GLRP_MAX_RANK + 1] = {batch};
        for (int k = 0; k < t->rank; k++)
            full[k + 1] = t->dims[k];
        int allowzero = (int)imp_attr_int(im->node, "allowzero", 0);
        int infer = -1, n = (int)s->c.count;
        size_t known = 1, total = (size_t)batch * t->numel;
        for (int k = 0; k < n; k++) {
            target[k] = const_get_i(&s->c, (size_t)k);
            /* An exported fixed batch size (e.g. 1) stands for the batch axis. */
            if (k == 0 && im->declared_batch > 0 && target[0] == im->declared_batch)
                target[0] = batch;
            if (target[k] == 0 && !allowzero && k <= t->rank)
                target[k] = full[k];
            if (target[k] == -1 && infer < 0) {
                infer = k;
                continue;
            }
            if (target[k] <= 0)
                return imp_node_error(im, err, GLRP_ERR_INPUT, "bad Reshape dimension %lld",
                                      (long long)target[k]);
            known *= (size_t)target[k];
        }
        if (infer >= 0)
            target[infer] = known && total % known == 0 ? (int64_t)(total / known) : -1;
        size_t count = 1;
        for (int k = 0; k < n; k++)
            count *= (size_t)(target[k] > 0 ? target[k] : 0);
        if (count != total)
            return imp_node_error(im, err, GLRP_ERR_INPUT, "cannot reshape %zu elements per "
                                  "sample into the target shape", t->numel);
        if (target[0] != batch)
            return imp_node_error(im, err, GLRP_ERR_INPUT, "Reshape moves data across the "
                                  "batch axis (first target dimension %lld, batch %lld); not "
                                  "supported", (long long)target[0], (long long)batch);
        rank = n - 1;
        if (rank < 1)
            return imp_node_error(im, err, GLRP_ERR_INPUT, "Reshape to a scalar per sample");
        for (int k = 0; k < rank; k++)
            dims[k] = target[k + 1];
    }
    return new_layer(im, OP_RESHAPE, &x->tensor, 1, rank, dims, err) ? 0 : err->code;
}

static int build_concat(importer *im, glrp_error *err)
{
    const Onnx__NodeProto *n = im->node;
    int ins[64], n_in = 0;
    value *first = imp_input(im, 0);
    if (!first || first->kind != VAL_ACT)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "Concat mixes constants and "
                              "activations; not supported");
    const glrp_tensor *t0 = act_of(im, first);
    int64_t axis = imp_attr_int(n, "axis", 1);
    if (axis < 0)
        axis += t0->rank + 1;
    if (axis < 1 || axis > t0->rank)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "Concat along axis %lld (the batch axis "
                              "or out of range) is not supported", (long long)axis);
    int64_t dims[GLRP_MAX_RANK];
    memcpy(dims, t0->dims, sizeof dims);
    dims[axis - 1] = 0;
    for (size_t k = 0; k < n->n_input; k++) {
        value *v = imp_input(im, (int)k);
        if (!v)
            continue;
        if (v->kind != VAL_ACT)
            return imp_node_error(im, err, GLRP_ERR_INPUT, "Concat mixes constants and "
                                  "activations; not supported");
        if (n_in == 64)
            return imp_node_error(im, err, GLRP_ERR_INPUT, "Concat of more than 64 inputs");
        const glrp_tensor *t = act_of(im, v);
        for (int j = 0; j < t0->rank; j++)
            if (t->rank != t0->rank || (j != axis - 1 && t->dims[j] != t0->dims[j]))
                return imp_node_error(im, err, GLRP_ERR_INPUT, "Concat inputs have "
                                      "mismatched shapes");
        dims[axis - 1] += t->dims[axis - 1];
        ins[n_in++] = v->tensor;
    }
    glrp_layer *L = new_layer(im, OP_CONCAT, ins, n_in, t0->rank, dims, err);
    if (!L)
        return err->code;
    L->axis = (int)axis - 1;
    return 0;
}

static int build_pad(importer *im, glrp_error *err)
{
    value *x = imp_input(im, 0);
    const glrp_tensor *t = act_of(im, x);
    char buf[32];
    const char *mode = imp_attr_string(im->node, "mode", "constant", buf, sizeof buf);
    if (strcmp(mode, "constant") != 0)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "Pad mode '%s' is not supported (only "
                              "constant)", mode);
    int full_rank = t->rank + 1;
    int64_t pads[2 * (GLRP_MAX_RANK + 1)] = {0}, raw[2 * (GLRP_MAX_RANK + 1)];
    int n = imp_attr_ints(im->node, "pads", raw, 2 * (GLRP_MAX_RANK + 1));
    float value_ = imp_attr_float(im->node, "value", 0.0f);
    int64_t axes[GLRP_MAX_RANK + 1];
    int n_axes = full_rank;
    for (int k = 0; k < full_rank; k++)
        axes[k] = k;
    if (n < 0) {
        value *p = imp_input(im, 1), *cv = imp_input(im, 2), *ax = imp_input(im, 3);
        if (!p || p->kind != VAL_CONST || p->c.count > 2 * ((size_t)GLRP_MAX_RANK + 1))
            return imp_node_error(im, err, GLRP_ERR_INPUT, "pads must be a constant");
        n = (int)p->c.count;
        for (int k = 0; k < n; k++)
            raw[k] = const_get_i(&p->c, (size_t)k);
        if (cv) {
            if (cv->kind != VAL_CONST || cv->c.count != 1)
                return imp_node_error(im, err, GLRP_ERR_INPUT, "constant_value must be a "
                                      "scalar constant");
            value_ = const_get_f(&cv->c, 0);
        }
        if (ax) {
            if (ax->kind != VAL_CONST || ax->c.count > (size_t)full_rank)
                return imp_node_error(im, err, GLRP_ERR_INPUT, "axes must be a constant");
            n_axes = (int)ax->c.count;
            for (int k = 0; k < n_axes; k++) {
                axes[k] = const_get_i(&ax->c, (size_t)k);
                if (axes[k] < 0)
                    axes[k] += full_rank;
                if (axes[k] < 0 || axes[k] >= full_rank)
                    return imp_node_error(im, err, GLRP_ERR_INPUT, "axis out of range");
            }
        }
    }
    if (n != 2 * n_axes)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "pads has %d values for %d axes", n,
                              n_axes);
    for (int k = 0; k < n_axes; k++) {
        pads[axes[k]] = raw[k];
        pads[full_rank + axes[k]] = raw[n_axes + k];
    }
    if (pads[0] || pads[full_rank])
        return imp_node_error(im, err, GLRP_ERR_INPUT, "padding the batch axis is not "
                              "supported");
    int64_t dims[GLRP_MAX_RANK];
    for (int k = 0; k < t->rank; k++) {
        int64_t b = pads[k + 1], e = pads[full_rank + k + 1];
        if (b < 0 || e < 0 || b > 1 << 20 || e > 1 << 20)
            return imp_node_error(im, err, GLRP_ERR_INPUT, "negative or absurd pads are not "
                                  "supported");
        dims[k] = t->dims[k] + b + e;
    }
    glrp_layer *L = new_layer(im, OP_PAD, &x->tensor, 1, t->rank, dims, err);
    if (!L)
        return err->code;
    for (int k = 0; k < t->rank; k++) {
        L->pad_begin[k] = pads[k + 1];
        L->pad_end[k] = pads[full_rank + k + 1];
    }
    L->pad_value = value_;
    return 0;
}

static int build_softmax(importer *im, glrp_error *err)
{
    value *x = imp_input(im, 0);
    const glrp_tensor *t = act_of(im, x);
    int64_t axis = imp_attr_int(im->node, "axis", im->m->opset >= 13 ? -1 : 1);
    if (axis < 0)
        axis += t->rank + 1;
    if (t->rank != 1 || axis != 1)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "Softmax is supported only over the "
                              "class axis of (N, K) scores");
    return alias(im, x, 1, err);
}

/* ------------------------------------------------------------ dispatch --- */

int build_node(importer *im, glrp_error *err)
{
    const char *op = im->node->op_type;
    value *x = imp_input(im, 0);
    int first_is_act = x && x->kind == VAL_ACT;
    if (!strcmp(op, "Conv")) return build_conv(im, err);
    if (!strcmp(op, "Gemm")) return build_gemm(im, err);
    if (!strcmp(op, "MatMul")) return build_matmul(im, err);
    if (!strcmp(op, "Add")) return build_arith(im, '+', err);
    if (!strcmp(op, "Sub")) return build_arith(im, '-', err);
    if (!strcmp(op, "Mul")) return build_arith(im, '*', err);
    if (!strcmp(op, "Div")) return build_arith(im, '/', err);
    if (!first_is_act) {
        if (fold_is_foldable(op))
            return imp_node_error(im, err, GLRP_ERR_INPUT, "expects constant inputs");
        if (strcmp(op, "BatchNormalization") && strcmp(op, "Relu") && strcmp(op, "LeakyRelu") &&
            strcmp(op, "Sigmoid") && strcmp(op, "Tanh") && strcmp(op, "MaxPool") &&
            strcmp(op, "AveragePool") && strcmp(op, "GlobalAveragePool") &&
            strcmp(op, "ReduceMean") &&
            strcmp(op, "Pad") && strcmp(op, "Softmax"))
            goto unsupported;
        return imp_node_error(im, err, GLRP_ERR_INPUT, "first input must be an activation");
    }
    if (!strcmp(op, "BatchNormalization")) return build_batchnorm(im, err);
    if (!strcmp(op, "Relu")) return same_shape_layer(im, OP_RELU, x, err) ? 0 : err->code;
    if (!strcmp(op, "Sigmoid")) return same_shape_layer(im, OP_SIGMOID, x, err) ? 0 : err->code;
    if (!strcmp(op, "Tanh")) return same_shape_layer(im, OP_TANH, x, err) ? 0 : err->code;
    if (!strcmp(op, "LeakyRelu")) {
        glrp_layer *L = same_shape_layer(im, OP_LEAKYRELU, x, err);
        if (!L)
            return err->code;
        L->alpha = imp_attr_float(im->node, "alpha", 0.01f);
        return 0;
    }
    if (!strcmp(op, "MaxPool")) return build_pool(im, OP_MAXPOOL, err);
    if (!strcmp(op, "AveragePool")) return build_pool(im, OP_AVGPOOL, err);
    if (!strcmp(op, "GlobalAveragePool")) return build_pool(im, OP_GLOBALAVGPOOL, err);
    if (!strcmp(op, "ReduceMean")) return build_reduce_mean(im, err);
    if (!strcmp(op, "Flatten") || !strcmp(op, "Reshape")) return build_reshape(im, err);
    if (!strcmp(op, "Concat")) return build_concat(im, err);
    if (!strcmp(op, "Pad")) return build_pad(im, err);
    if (!strcmp(op, "Softmax")) return build_softmax(im, err);
    if (!strcmp(op, "Identity") || !strcmp(op, "Dropout")) return alias(im, x, 0, err);
unsupported:
    return imp_node_error(im, err, GLRP_ERR_INPUT, "unsupported operator %s. Supported: %s",
                          op, build_supported_ops);
}
