/*
 * Constant folding at load time. PyTorch exports `x.view(x.size(0), -1)` as a small
 * program over shapes (Shape, Gather, Unsqueeze, Concat, ...) feeding a Reshape. Because
 * geolrp plans a model for a known batch size, all of it can be evaluated here, once, and
 * the engine never sees it.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/import.h"
#include "util/error.h"

void const_free(const_tensor *c)
{
    free(c->f);
    free(c->i);
    c->f = NULL;
    c->i = NULL;
}

int64_t const_get_i(const const_tensor *c, size_t k)
{
    if (c->type == CT_I64)
        return c->i[k];
    /* Converting NaN, infinities or huge floats to an integer is undefined: clamp them to
     * values every shape check rejects. */
    float f = c->f[k];
    if (!(f > -9.0e15f))
        return f < 0 ? INT64_MIN / 2 : 0;
    if (!(f < 9.0e15f))
        return INT64_MAX / 2;
    return (int64_t)f;
}

float const_get_f(const const_tensor *c, size_t k)
{
    return c->type == CT_F32 ? c->f[k] : (float)c->i[k];
}

/* Sets the type, shape and element count of c, with nothing allocated yet. */
static int const_shape(const_tensor *c, const_type type, int rank, const int64_t *dims,
                       glrp_error *err)
{
    memset(c, 0, sizeof *c);
    if (rank < 0 || rank > CONST_MAX_RANK)
        return glrp_fail(err, GLRP_ERR_INPUT, "tensor of rank %d (at most %d)", rank,
                         CONST_MAX_RANK);
    c->type = type;
    c->rank = rank;
    c->count = 1;
    for (int k = 0; k < rank; k++) {
        if (dims[k] < 0)
            return glrp_fail(err, GLRP_ERR_INPUT, "negative dimension %lld",
                             (long long)dims[k]);
        c->dims[k] = dims[k];
        size_t n;
        if (!glrp_mul_ok(c->count, (size_t)dims[k], &n) || n > GLRP_MAX_ELEMENTS)
            return glrp_fail(err, GLRP_ERR_INPUT, "tensor with absurd size (more than 2^31 "
                             "elements)");
        c->count = n;
    }
    return 0;
}

static size_t const_bytes(const const_tensor *c)
{
    return c->count * (c->type == CT_F32 ? sizeof *c->f : sizeof *c->i);
}

/* Allocates the elements of a tensor shaped by const_shape. */
static int const_data(const_tensor *c, glrp_error *err)
{
    if (c->type == CT_F32)
        c->f = glrp_alloc(c->count, sizeof *c->f);
    else
        c->i = glrp_alloc(c->count, sizeof *c->i);
    if (!c->f && !c->i)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory for a tensor of %zu elements",
                         c->count);
    return 0;
}

static int const_alloc(const_tensor *c, const_type type, int rank, const int64_t *dims,
                       glrp_error *err)
{
    int rc = const_shape(c, type, rank, dims, err);
    return rc ? rc : const_data(c, err);
}

/* Constants computed while loading may take this much memory in all: four times the file
 * (room for a Cast and a Reshape of every weight) plus 64 MiB, which holds the shape
 * arithmetic and a float32 ConstantOfShape mask of a 13 x 1024 x 1024 input (52 MiB).
 * Without a bound, a few hundred bytes (ConstantOfShape of a huge shape, found by
 * fuzz_onnx, or a chain of Identity nodes over one weight) ask for gigabytes, whereas
 * constants read from the file are bounded by its size already. */
static int fold_charge(importer *im, size_t bytes, glrp_error *err)
{
    size_t budget = 4 * im->file_bytes + ((size_t)64 << 20);
    if (bytes > budget - im->folded_bytes)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "constants computed while loading "
                              "would take %zu MiB, more than the %zu MiB allowed for this "
                              "%zu-byte file (4 x its size + 64 MiB)",
                              (im->folded_bytes >> 20) + (bytes >> 20), budget >> 20,
                              im->file_bytes);
    im->folded_bytes += bytes;
    return 0;
}

/* const_copy for the result of a folded node, charged to the load's budget. */
static int fold_copy(importer *im, const const_tensor *src, const_tensor *dst,
                     glrp_error *err)
{
    int rc = fold_charge(im, const_bytes(src), err);
    if (rc)
        return rc;
    return const_copy(src, dst) ? glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory") : 0;
}

/* const_alloc for the result of a folded node, charged to the load's budget. */
static int fold_alloc(importer *im, const_tensor *c, const_type type, int rank,
                      const int64_t *dims, glrp_error *err)
{
    int rc = const_shape(c, type, rank, dims, err);
    if (rc)
        return imp_node_error(im, err, rc, "%s", err->msg);
    rc = fold_charge(im, const_bytes(c), err);
    return rc ? rc : const_data(c, err);
}

int const_copy(const const_tensor *src, const_tensor *dst)
{
    *dst = *src;
    dst->f = NULL;
    dst->i = NULL;
    if (src->f && !(dst->f = glrp_dup(src->f, src->count * sizeof *src->f)))
        return GLRP_ERR_RUNTIME;
    if (src->i && !(dst->i = glrp_dup(src->i, src->count * sizeof *src->i)))
        return GLRP_ERR_RUNTIME;
    return 0;
}

/* ONNX TensorProto.DataType values. */
enum { DT_FLOAT = 1, DT_UINT8, DT_INT8, DT_UINT16, DT_INT16, DT_INT32, DT_INT64, DT_STRING,
       DT_BOOL, DT_FLOAT16, DT_DOUBLE, DT_UINT32, DT_UINT64 };

static float half_to_float(uint16_t h)
{
    int sign = h >> 15, exp = (h >> 10) & 31, frac = h & 1023;
    float v;
    if (exp == 0)
        v = ldexpf((float)frac, -24);
    else if (exp == 31)
        v = frac ? NAN : INFINITY;
    else
        v = ldexpf((float)(frac | 1024), exp - 25);
    return sign ? -v : v;
}

static int elem_size(int dt)
{
    switch (dt) {
    case DT_UINT8: case DT_INT8: case DT_BOOL: return 1;
    case DT_UINT16: case DT_INT16: case DT_FLOAT16: return 2;
    case DT_FLOAT: case DT_INT32: case DT_UINT32: return 4;
    case DT_INT64: case DT_DOUBLE: case DT_UINT64: return 8;
    default: return 0;
    }
}

/* Element k of little-endian raw bytes as double (exact for every type but 64-bit ints,
 * which go through int64 below). */
static void raw_element(int dt, const uint8_t *p, float *f, int64_t *i)
{
    switch (dt) {
    case DT_FLOAT: { float v; memcpy(&v, p, 4); *f = v; break; }
    case DT_DOUBLE: { double v; memcpy(&v, p, 8); *f = (float)v; break; }
    case DT_FLOAT16: { uint16_t v; memcpy(&v, p, 2); *f = half_to_float(v); break; }
    case DT_UINT8: case DT_BOOL: *i = p[0]; break;
    case DT_INT8: *i = p[0] < 128 ? p[0] : (int64_t)p[0] - 256; break; /* two's complement */
    case DT_UINT16: { uint16_t v; memcpy(&v, p, 2); *i = v; break; }
    case DT_INT16: { int16_t v; memcpy(&v, p, 2); *i = v; break; }
    case DT_INT32: { int32_t v; memcpy(&v, p, 4); *i = v; break; }
    case DT_UINT32: { uint32_t v; memcpy(&v, p, 4); *i = v; break; }
    case DT_INT64: { int64_t v; memcpy(&v, p, 8); *i = v; break; }
    case DT_UINT64: { uint64_t v; memcpy(&v, p, 8); *i = (int64_t)v; break; }
    }
}

static int is_float_type(int dt)
{
    return dt == DT_FLOAT || dt == DT_DOUBLE || dt == DT_FLOAT16;
}

int const_from_tensor_proto(const Onnx__TensorProto *t, const char *what, const_tensor *out,
                            glrp_error *err)
{
    memset(out, 0, sizeof *out);
    if (t->has_data_location &&
        t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s uses ONNX external data, which geolrp does "
                         "not read; save the model with its weights inside the file "
                         "(onnx.save_model(model, path, save_as_external_data=False))", what);
    int dt = t->has_data_type ? t->data_type : 0;
    int size = elem_size(dt);
    if (!size)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s has data type %d, which geolrp does not "
                         "support", what, dt);
    if (t->n_dims > CONST_MAX_RANK)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s has rank %zu (at most %d supported)", what,
                         t->n_dims, CONST_MAX_RANK);
    int rc = const_alloc(out, is_float_type(dt) ? CT_F32 : CT_I64, (int)t->n_dims, t->dims,
                         err);
    if (rc) {
        glrp_error_prefix(err, "%s: ", what);
        return rc;
    }
    size_t n = out->count;
    float fv = 0;
    int64_t iv = 0;
    if (t->has_raw_data) {
        if (t->raw_data.len != n * (size_t)size) {
            const_free(out);
            return glrp_fail(err, GLRP_ERR_INPUT, "%s holds %zu bytes of raw data, its shape "
                             "needs %zu (file truncated or corrupt)", what, t->raw_data.len,
                             n * (size_t)size);
        }
        for (size_t k = 0; k < n; k++) {
            raw_element(dt, t->raw_data.data + k * (size_t)size, &fv, &iv);
            if (out->f) out->f[k] = fv; else out->i[k] = iv;
        }
        return 0;
    }
    size_t have;
    switch (dt) {
    case DT_FLOAT: have = t->n_float_data; break;
    case DT_DOUBLE: have = t->n_double_data; break;
    case DT_INT64: have = t->n_int64_data; break;
    case DT_UINT32: case DT_UINT64: have = t->n_uint64_data; break;
    default: have = t->n_int32_data; break;
    }
    if (have != n) {
        const_free(out);
        return glrp_fail(err, GLRP_ERR_INPUT, "%s holds %zu values, its shape needs %zu", what,
                         have, n);
    }
    for (size_t k = 0; k < n; k++) {
        switch (dt) {
        case DT_FLOAT: out->f[k] = t->float_data[k]; break;
        case DT_DOUBLE: out->f[k] = (float)t->double_data[k]; break;
        case DT_FLOAT16: out->f[k] = half_to_float((uint16_t)t->int32_data[k]); break;
        case DT_INT64: out->i[k] = t->int64_data[k]; break;
        case DT_UINT32: case DT_UINT64: out->i[k] = (int64_t)t->uint64_data[k]; break;
        default: out->i[k] = t->int32_data[k]; break;
        }
    }
    return 0;
}

/* ------------------------------------------------------------- folding --- */

static const char *const foldable[] = {
    "Constant", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast",
    "ConstantOfShape", "Identity", "Add", "Sub", "Mul", "Div", "Reshape", "Flatten",
    "Dropout", "Slice", NULL
};

int fold_is_foldable(const char *op_type)
{
    for (int k = 0; foldable[k]; k++)
        if (strcmp(foldable[k], op_type) == 0)
            return 1;
    return 0;
}

/* Defines the node's first output as a constant and hands back its storage. */
static const_tensor *define_out(importer *im, glrp_error *err)
{
    if (im->node->n_output < 1) {
        imp_node_error(im, err, GLRP_ERR_INPUT, "node has no output");
        return NULL;
    }
    value *v = imp_define(im, im->node->output[0], err);
    if (!v)
        return NULL;
    v->kind = VAL_CONST;
    return &v->c;
}

static int norm_axis(importer *im, int64_t axis, int rank, glrp_error *err, int64_t *out)
{
    if (axis < -rank || axis >= rank)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "axis %lld out of range for rank %d",
                              (long long)axis, rank);
    *out = axis < 0 ? axis + rank : axis;
    return 0;
}

static int fold_constant(importer *im, glrp_error *err)
{
    const Onnx__NodeProto *n = im->node;
    const_tensor *c = define_out(im, err);
    if (!c)
        return err->code;
    const Onnx__AttributeProto *a;
    if ((a = imp_attr(n, "value")) && a->t) {
        int rc = const_from_tensor_proto(a->t, "Constant value", c, err);
        if (rc)
            imp_node_error(im, err, rc, "%s", err->msg);
        return rc;
    }
    int64_t one = 1;
    if ((a = imp_attr(n, "value_float")) && a->has_f) {
        if (fold_alloc(im, c, CT_F32, 0, &one, err))
            return err->code;
        c->f[0] = a->f;
        return 0;
    }
    if ((a = imp_attr(n, "value_int")) && a->has_i) {
        if (fold_alloc(im, c, CT_I64, 0, &one, err))
            return err->code;
        c->i[0] = a->i;
        return 0;
    }
    if ((a = imp_attr(n, "value_floats"))) {
        int64_t d = (int64_t)a->n_floats;
        if (fold_alloc(im, c, CT_F32, 1, &d, err))
            return err->code;
        for (size_t k = 0; k < a->n_floats; k++)
            c->f[k] = a->floats[k];
        return 0;
    }
    if ((a = imp_attr(n, "value_ints"))) {
        int64_t d = (int64_t)a->n_ints;
        if (fold_alloc(im, c, CT_I64, 1, &d, err))
            return err->code;
        for (size_t k = 0; k < a->n_ints; k++)
            c->i[k] = a->ints[k];
        return 0;
    }
    return imp_node_error(im, err, GLRP_ERR_INPUT, "Constant without a supported value "
                          "attribute");
}

/* Shape of an activation is known for the planned batch: (max_batch, dims...). */
static int fold_shape(importer *im, glrp_error *err)
{
    value *x = imp_input(im, 0);
    int64_t full[CONST_MAX_RANK];
    int rank;
    if (!x)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "missing input");
    if (x->kind == VAL_ACT) {
        const glrp_tensor *t = &im->m->tensors[x->tensor];
        rank = t->rank + 1;
        full[0] = im->m->max_batch;
        for (int k = 0; k < t->rank; k++)
            full[k + 1] = t->dims[k];
    } else {
        rank = x->c.rank;
        memcpy(full, x->c.dims, sizeof full);
    }
    int64_t start = imp_attr_int(im->node, "start", 0);
    int64_t end = imp_attr_int(im->node, "end", rank);
    if (start < 0) start += rank;
    if (end < 0) end += rank;
    if (start < 0) start = 0;
    if (end > rank) end = rank;
    if (end < start) end = start;
    const_tensor *c = define_out(im, err);
    int64_t len = end - start;
    if (!c || fold_alloc(im, c, CT_I64, 1, &len, err))
        return err->code;
    for (int64_t k = start; k < end; k++)
        c->i[k - start] = full[k];
    return 0;
}

static int fold_gather(importer *im, glrp_error *err)
{
    value *d = imp_input(im, 0), *ix = imp_input(im, 1);
    if (!d || !ix)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "Gather needs data and indices");
    int64_t axis = 0;
    if (norm_axis(im, imp_attr_int(im->node, "axis", 0), d->c.rank, err, &axis))
        return err->code;
    int64_t dims[CONST_MAX_RANK];
    int rank = 0;
    for (int k = 0; k < axis; k++)
        dims[rank++] = d->c.dims[k];
    for (int k = 0; k < ix->c.rank; k++)
        dims[rank++] = ix->c.dims[k];
    for (int k = (int)axis + 1; k < d->c.rank; k++)
        dims[rank++] = d->c.dims[k];
    if (rank < 0 || rank > CONST_MAX_RANK)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "Gather result rank too large");
    size_t outer = 1, inner = 1, nidx = ix->c.count, adim = (size_t)d->c.dims[axis];
    for (int k = 0; k < axis; k++)
        outer *= (size_t)d->c.dims[k];
    for (int k = (int)axis + 1; k < d->c.rank; k++)
        inner *= (size_t)d->c.dims[k];
    const_tensor *c = define_out(im, err);
    if (!c || fold_alloc(im, c, d->c.type, rank, dims, err))
        return err->code;
    for (size_t o = 0; o < outer; o++)
        for (size_t j = 0; j < nidx; j++) {
            int64_t q = const_get_i(&ix->c, j);
            if (q < 0)
                q += (int64_t)adim;
            if (q < 0 || (size_t)q >= adim)
                return imp_node_error(im, err, GLRP_ERR_INPUT, "Gather index %lld out of "
                                      "range", (long long)const_get_i(&ix->c, j));
            size_t src = (o * adim + (size_t)q) * inner, dst = (o * nidx + j) * inner;
            for (size_t k = 0; k < inner; k++) {
                if (c->f) c->f[dst + k] = d->c.f[src + k];
                else c->i[dst + k] = d->c.i[src + k];
            }
        }
    return 0;
}

/* Axes come from an attribute before opset 13 and from the second input after. */
static int read_axes(importer *im, int64_t *axes, int *n_axes, glrp_error *err)
{
    int n = imp_attr_ints(im->node, "axes", axes, CONST_MAX_RANK);
    if (n < 0) {
        value *a = imp_input(im, 1);
        n = 0;
        if (a) {
            if (a->c.count > CONST_MAX_RANK)
                return imp_node_error(im, err, GLRP_ERR_INPUT, "too many axes");
            for (size_t k = 0; k < a->c.count; k++)
                axes[n++] = const_get_i(&a->c, k);
        }
    }
    if (n > CONST_MAX_RANK)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "too many axes");
    *n_axes = n;
    return 0;
}

static int fold_unsqueeze_squeeze(importer *im, int unsqueeze, glrp_error *err)
{
    value *x = imp_input(im, 0);
    int64_t axes[CONST_MAX_RANK];
    int n_axes = 0;
    if (!x || read_axes(im, axes, &n_axes, err))
        return x ? err->code : imp_node_error(im, err, GLRP_ERR_INPUT, "missing input");
    int64_t dims[CONST_MAX_RANK];
    int rank = 0;
    if (unsqueeze) {
        int out_rank = x->c.rank + n_axes;
        if (out_rank > CONST_MAX_RANK)
            return imp_node_error(im, err, GLRP_ERR_INPUT, "result rank too large");
        int is_new[CONST_MAX_RANK] = {0};
        for (int k = 0; k < n_axes; k++) {
            int64_t a = 0;
            if (norm_axis(im, axes[k], out_rank, err, &a))
                return err->code;
            is_new[a] = 1;
        }
        int src = 0;
        for (int k = 0; k < out_rank; k++)
            dims[rank++] = is_new[k] ? 1 : x->c.dims[src++];
    } else {
        int drop[CONST_MAX_RANK] = {0};
        for (int k = 0; k < n_axes; k++) {
            int64_t a = 0;
            if (norm_axis(im, axes[k], x->c.rank, err, &a))
                return err->code;
            drop[a] = 1;
        }
        for (int k = 0; k < x->c.rank; k++) {
            if (n_axes == 0 && x->c.dims[k] == 1)
                continue;
            if (drop[k]) {
                if (x->c.dims[k] != 1)
                    return imp_node_error(im, err, GLRP_ERR_INPUT, "cannot squeeze axis %d "
                                          "of size %lld", k, (long long)x->c.dims[k]);
                continue;
            }
            dims[rank++] = x->c.dims[k];
        }
    }
    const_tensor *c = define_out(im, err);
    if (!c || fold_copy(im, &x->c, c, err))
        return err->code;
    c->rank = rank;
    memcpy(c->dims, dims, sizeof dims);
    return 0;
}

static int fold_concat(importer *im, glrp_error *err)
{
    const Onnx__NodeProto *n = im->node;
    value *first = imp_input(im, 0);
    if (!first)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "Concat without inputs");
    int64_t axis = 0;
    int rank = first->c.rank;
    if (norm_axis(im, imp_attr_int(n, "axis", 0), rank, err, &axis))
        return err->code;
    int64_t dims[CONST_MAX_RANK];
    memcpy(dims, first->c.dims, sizeof dims);
    dims[axis] = 0;
    int any_float = 0;
    for (size_t k = 0; k < n->n_input; k++) {
        value *v = imp_input(im, (int)k);
        if (!v)
            continue;
        if (v->c.rank != rank)
            return imp_node_error(im, err, GLRP_ERR_INPUT, "Concat of different ranks");
        for (int j = 0; j < rank; j++)
            if (j != axis && v->c.dims[j] != first->c.dims[j])
                return imp_node_error(im, err, GLRP_ERR_INPUT, "Concat of mismatched shapes");
        dims[axis] += v->c.dims[axis];
        any_float |= v->c.type == CT_F32;
    }
    const_tensor *c = define_out(im, err);
    if (!c || fold_alloc(im, c, any_float ? CT_F32 : CT_I64, rank, dims, err))
        return err->code;
    size_t outer = 1, inner = 1;
    for (int j = 0; j < axis; j++)
        outer *= (size_t)dims[j];
    for (int j = (int)axis + 1; j < rank; j++)
        inner *= (size_t)dims[j];
    size_t at = 0, out_row = (size_t)dims[axis] * inner;
    for (size_t k = 0; k < n->n_input; k++) {
        value *v = imp_input(im, (int)k);
        if (!v)
            continue;
        size_t row = (size_t)v->c.dims[axis] * inner;
        for (size_t o = 0; o < outer; o++)
            for (size_t e = 0; e < row; e++) {
                size_t src = o * row + e, dst = o * out_row + at + e;
                if (c->f) c->f[dst] = const_get_f(&v->c, src);
                else c->i[dst] = const_get_i(&v->c, src);
            }
        at += row;
    }
    return 0;
}

static int fold_cast(importer *im, glrp_error *err)
{
    value *x = imp_input(im, 0);
    int to = (int)imp_attr_int(im->node, "to", DT_FLOAT);
    if (!x)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "missing input");
    if (!elem_size(to))
        return imp_node_error(im, err, GLRP_ERR_INPUT, "Cast to type %d not supported", to);
    const_tensor *c = define_out(im, err);
    if (!c || fold_alloc(im, c, is_float_type(to) ? CT_F32 : CT_I64, x->c.rank, x->c.dims, err))
        return err->code;
    for (size_t k = 0; k < c->count; k++) {
        if (c->f) c->f[k] = const_get_f(&x->c, k);
        else c->i[k] = to == DT_BOOL ? const_get_f(&x->c, k) != 0 : const_get_i(&x->c, k);
    }
    return 0;
}

static int fold_constant_of_shape(importer *im, glrp_error *err)
{
    value *s = imp_input(im, 0);
    if (!s || s->c.count > CONST_MAX_RANK)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "ConstantOfShape needs a shape of rank "
                              "at most %d", CONST_MAX_RANK);
    const_tensor fill = {.type = CT_F32};
    float zero = 0;
    fill.f = &zero;
    fill.count = 1;
    const_tensor parsed = {0};
    const Onnx__AttributeProto *a = imp_attr(im->node, "value");
    if (a && a->t) {
        if (const_from_tensor_proto(a->t, "ConstantOfShape value", &parsed, err))
            return imp_node_error(im, err, err->code, "%s", err->msg);
        if (parsed.count != 1) {
            const_free(&parsed);
            return imp_node_error(im, err, GLRP_ERR_INPUT, "value must hold one element");
        }
        fill = parsed;
    }
    int64_t dims[CONST_MAX_RANK];
    for (size_t k = 0; k < s->c.count; k++)
        dims[k] = const_get_i(&s->c, k);
    const_tensor *c = define_out(im, err);
    int rc = !c || fold_alloc(im, c, fill.type, (int)s->c.count, dims, err);
    for (size_t k = 0; !rc && k < c->count; k++) {
        if (fill.type == CT_F32)
            c->f[k] = fill.f[0];
        else
            c->i[k] = fill.i[0];
    }
    const_free(&parsed);
    return rc ? err->code : 0;
}

/* Element-wise arithmetic with numpy broadcasting, for shape arithmetic and for constant
 * sub-graphs such as folded normalisation parameters. */
static int fold_binary(importer *im, char op, glrp_error *err)
{
    value *a = imp_input(im, 0), *b = imp_input(im, 1);
    if (!a || !b)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "needs two inputs");
    int rank = a->c.rank > b->c.rank ? a->c.rank : b->c.rank;
    if (rank < 0 || rank > CONST_MAX_RANK) /* const_alloc keeps it so; the loops rely on it */
        return imp_node_error(im, err, GLRP_ERR_INPUT, "operands of rank %d", rank);
    int64_t dims[CONST_MAX_RANK];
    for (int k = 0; k < rank; k++) {
        int ka = k - (rank - a->c.rank), kb = k - (rank - b->c.rank);
        int64_t da = ka >= 0 ? a->c.dims[ka] : 1, db = kb >= 0 ? b->c.dims[kb] : 1;
        if (da != db && da != 1 && db != 1)
            return imp_node_error(im, err, GLRP_ERR_INPUT, "shapes do not broadcast");
        dims[k] = da == 1 ? db : da;
    }
    int is_float = a->c.type == CT_F32 || b->c.type == CT_F32;
    const_tensor *c = define_out(im, err);
    if (!c || fold_alloc(im, c, is_float ? CT_F32 : CT_I64, rank, dims, err))
        return err->code;
    for (size_t e = 0; e < c->count; e++) {
        /* Decompose e into coordinates and map them into each operand. */
        size_t rem = e, ia = 0, ib = 0, sa = 1, sb = 1;
        for (int k = rank - 1; k >= 0; k--) {
            size_t coord = rem % (size_t)dims[k];
            rem /= (size_t)dims[k];
            int ka = k - (rank - a->c.rank), kb = k - (rank - b->c.rank);
            if (ka >= 0) {
                if (a->c.dims[ka] != 1) ia += coord * sa;
                sa *= (size_t)a->c.dims[ka];
            }
            if (kb >= 0) {
                if (b->c.dims[kb] != 1) ib += coord * sb;
                sb *= (size_t)b->c.dims[kb];
            }
        }
        if (is_float) {
            float x = const_get_f(&a->c, ia), y = const_get_f(&b->c, ib);
            c->f[e] = op == '+' ? x + y : op == '-' ? x - y : op == '*' ? x * y : x / y;
        } else {
            int64_t x = const_get_i(&a->c, ia), y = const_get_i(&b->c, ib), r = 0;
            int overflow = 0;
            if (op == '/' && (y == 0 || (x == INT64_MIN && y == -1)))
                return imp_node_error(im, err, GLRP_ERR_INPUT, "integer division by zero or "
                                      "overflow");
            if (op == '+') overflow = __builtin_add_overflow(x, y, &r);
            else if (op == '-') overflow = __builtin_sub_overflow(x, y, &r);
            else if (op == '*') overflow = __builtin_mul_overflow(x, y, &r);
            else r = x / y;
            if (overflow)
                return imp_node_error(im, err, GLRP_ERR_INPUT, "integer overflow in constant "
                                      "arithmetic");
            c->i[e] = r;
        }
    }
    return 0;
}

static int fold_reshape(importer *im, glrp_error *err)
{
    value *x = imp_input(im, 0), *s = imp_input(im, 1);
    int64_t dims[CONST_MAX_RANK];
    int rank;
    if (!x)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "missing input");
    if (strcmp(im->node->op_type, "Flatten") == 0) {
        int64_t axis = 0;
        if (norm_axis(im, imp_attr_int(im->node, "axis", 1), x->c.rank + 1, err, &axis))
            return err->code;
        dims[0] = dims[1] = 1;
        for (int k = 0; k < x->c.rank; k++)
            dims[k < axis ? 0 : 1] *= x->c.dims[k];
        rank = 2;
    } else {
        if (!s || s->c.count > CONST_MAX_RANK)
            return imp_node_error(im, err, GLRP_ERR_INPUT, "Reshape needs a constant shape");
        rank = (int)s->c.count;
        int infer = -1;
        size_t known = 1;
        for (int k = 0; k < rank; k++) {
            dims[k] = const_get_i(&s->c, k);
            if (k < x->c.rank && dims[k] == 0) /* 0 copies the input's dimension */
                dims[k] = x->c.dims[k];
            if (dims[k] == -1) {
                infer = k;
                continue;
            }
            if (dims[k] <= 0)
                return imp_node_error(im, err, GLRP_ERR_INPUT, "bad Reshape dimension");
            known *= (size_t)dims[k];
        }
        if (infer >= 0)
            dims[infer] = known ? (int64_t)(x->c.count / known) : 0;
    }
    const_tensor *c = define_out(im, err);
    if (!c || fold_copy(im, &x->c, c, err))
        return err->code;
    size_t count = 1;
    for (int k = 0; k < rank; k++)
        count *= (size_t)dims[k];
    if (count != x->c.count)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "Reshape changes the element count");
    c->rank = rank;
    memcpy(c->dims, dims, sizeof dims);
    return 0;
}

/* Slice on constants (1-D shape vectors in practice, any rank handled per axis). */
static int fold_slice(importer *im, glrp_error *err)
{
    value *x = imp_input(im, 0);
    if (!x)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "missing input");
    int rank = x->c.rank;
    if (rank < 0 || rank > CONST_MAX_RANK)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "input of rank %d", rank);
    int64_t starts[CONST_MAX_RANK], ends[CONST_MAX_RANK], axes[CONST_MAX_RANK],
        steps[CONST_MAX_RANK];
    /* Opset < 10: attributes. imp_attr_ints copies at most CONST_MAX_RANK values but
     * returns how many the file holds: check that before using n as a bound. */
    int n = imp_attr_ints(im->node, "starts", starts, CONST_MAX_RANK);
    if (n > CONST_MAX_RANK)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "too many axes");
    if (n >= 0) {
        if (imp_attr_ints(im->node, "ends", ends, CONST_MAX_RANK) != n)
            return imp_node_error(im, err, GLRP_ERR_INPUT, "starts and ends differ in length");
        int na = imp_attr_ints(im->node, "axes", axes, CONST_MAX_RANK);
        if (na >= 0 && na != n)
            return imp_node_error(im, err, GLRP_ERR_INPUT, "starts and axes differ in length");
        for (int k = 0; na < 0 && k < n; k++) axes[k] = k;
        for (int k = 0; k < n; k++) steps[k] = 1;
    } else {
        value *vs = imp_input(im, 1), *ve = imp_input(im, 2), *va = imp_input(im, 3),
              *vp = imp_input(im, 4);
        if (!vs || !ve || vs->c.count > CONST_MAX_RANK || ve->c.count != vs->c.count)
            return imp_node_error(im, err, GLRP_ERR_INPUT, "Slice needs starts and ends");
        n = (int)vs->c.count;
        for (int k = 0; k < n; k++) {
            starts[k] = const_get_i(&vs->c, k);
            ends[k] = const_get_i(&ve->c, k);
            axes[k] = va && (size_t)k < va->c.count ? const_get_i(&va->c, k) : k;
            steps[k] = vp && (size_t)k < vp->c.count ? const_get_i(&vp->c, k) : 1;
        }
    }
    if (n > CONST_MAX_RANK)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "too many axes");
    int64_t lo[CONST_MAX_RANK], step[CONST_MAX_RANK], dims[CONST_MAX_RANK];
    for (int k = 0; k < rank; k++) {
        lo[k] = 0;
        step[k] = 1;
        dims[k] = x->c.dims[k];
    }
    for (int k = 0; k < n; k++) {
        int64_t a = 0;
        if (norm_axis(im, axes[k], rank, err, &a))
            return err->code;
        int64_t d = x->c.dims[a], s = starts[k], e = ends[k], st = steps[k];
        if (st <= 0)
            return imp_node_error(im, err, GLRP_ERR_INPUT, "Slice with step %lld not "
                                  "supported", (long long)st);
        if (s < 0) s += d;
        if (e < 0) e += d;
        s = s < 0 ? 0 : s > d ? d : s;
        e = e < 0 ? 0 : e > d ? d : e;
        lo[a] = s;
        step[a] = st;
        dims[a] = e > s ? (e - s + st - 1) / st : 0;
    }
    const_tensor *c = define_out(im, err);
    if (!c || fold_alloc(im, c, x->c.type, rank, dims, err))
        return err->code;
    for (size_t e = 0; e < c->count; e++) {
        size_t rem = e, src = 0, stride = 1;
        for (int k = rank - 1; k >= 0; k--) {
            size_t coord = rem % (size_t)dims[k];
            rem /= (size_t)dims[k];
            src += ((size_t)lo[k] + coord * (size_t)step[k]) * stride;
            stride *= (size_t)x->c.dims[k];
        }
        if (c->f) c->f[e] = x->c.f[src];
        else c->i[e] = x->c.i[src];
    }
    return 0;
}

static int fold_identity(importer *im, glrp_error *err)
{
    value *x = imp_input(im, 0);
    if (!x)
        return imp_node_error(im, err, GLRP_ERR_INPUT, "missing input");
    const_tensor *c = define_out(im, err);
    if (!c)
        return err->code;
    return fold_copy(im, &x->c, c, err);
}

int fold_node(importer *im, glrp_error *err)
{
    const char *op = im->node->op_type;
    if (!strcmp(op, "Constant")) return fold_constant(im, err);
    if (!strcmp(op, "Shape")) return fold_shape(im, err);
    if (!strcmp(op, "Gather")) return fold_gather(im, err);
    if (!strcmp(op, "Unsqueeze")) return fold_unsqueeze_squeeze(im, 1, err);
    if (!strcmp(op, "Squeeze")) return fold_unsqueeze_squeeze(im, 0, err);
    if (!strcmp(op, "Concat")) return fold_concat(im, err);
    if (!strcmp(op, "Cast")) return fold_cast(im, err);
    if (!strcmp(op, "ConstantOfShape")) return fold_constant_of_shape(im, err);
    if (!strcmp(op, "Add")) return fold_binary(im, '+', err);
    if (!strcmp(op, "Sub")) return fold_binary(im, '-', err);
    if (!strcmp(op, "Mul")) return fold_binary(im, '*', err);
    if (!strcmp(op, "Div")) return fold_binary(im, '/', err);
    if (!strcmp(op, "Reshape") || !strcmp(op, "Flatten")) return fold_reshape(im, err);
    if (!strcmp(op, "Slice")) return fold_slice(im, err);
    return fold_identity(im, err); /* Identity, Dropout */
}
