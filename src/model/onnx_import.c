/*
 * ONNX import: reads the protobuf with protobuf-c (code generated at build time from the
 * onnx.proto that Debian's libonnx-dev ships), walks the nodes in file order (ONNX
 * requires topological order) and either folds them into constants or lowers them into
 * engine layers. Shapes are inferred node by node for the planned batch size.
 */
#include <cblas.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/import.h"
#include "util/error.h"

#define MAX_MODEL_BYTES ((size_t)2 << 30) /* protobuf's own message limit */

/* ---------------------------------------------------------------- values --- */

/* A ValueInfo's name; protobuf-c leaves an absent optional string NULL. */
static const char *vi_name(const Onnx__ValueInfoProto *v)
{
    return v->name ? v->name : "";
}

value *imp_find(importer *im, const char *name)
{
    if (!name)
        return NULL;
    for (int k = im->n_vals - 1; k >= 0; k--)
        if (strcmp(im->vals[k].name, name) == 0)
            return &im->vals[k];
    return NULL;
}

value *imp_define(importer *im, const char *name, glrp_error *err)
{
    if (imp_find(im, name)) {
        imp_node_error(im, err, GLRP_ERR_INPUT, "value '%s' is defined twice", name);
        return NULL;
    }
    /* vals never moves (reserve_values sized it for every name the graph can define):
       the op builders hold pointers to their inputs while they define their outputs. */
    if (im->n_vals == im->cap_vals) {
        imp_node_error(im, err, GLRP_ERR_RUNTIME, "more values than the graph declares "
                       "(internal error)");
        return NULL;
    }
    value *v = &im->vals[im->n_vals];
    memset(v, 0, sizeof *v);
    v->name = glrp_strdup(name);
    if (!v->name) {
        glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
        return NULL;
    }
    v->tensor = -1;
    im->n_vals++;
    return v;
}

/* Room for every value the graph can define: initializers, inputs and node outputs. */
static int reserve_values(importer *im, glrp_error *err)
{
    const Onnx__GraphProto *g = im->g;
    size_t n = g->n_initializer + g->n_input;
    for (size_t k = 0; k < g->n_node; k++)
        n += g->node[k]->n_output;
    if (n > (size_t)INT_MAX / 2)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: a graph of %zu values is absurd", im->path,
                         n);
    im->vals = glrp_alloc(n ? n : 1, sizeof *im->vals);
    if (!im->vals)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory for %zu graph values", n);
    im->cap_vals = (int)n;
    return 0;
}

value *imp_input(importer *im, int k)
{
    const Onnx__NodeProto *n = im->node;
    if (k >= (int)n->n_input || n->input[k][0] == '\0')
        return NULL;
    return imp_find(im, n->input[k]);
}

const char *imp_node_name(const importer *im)
{
    return im->node && im->node->name && im->node->name[0] ? im->node->name : "(unnamed)";
}

int imp_node_error(importer *im, glrp_error *err, int code, const char *fmt, ...)
{
    char detail[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (im->node)
        return glrp_fail(err, code, "%s: node %d '%s' (op %s, opset %lld): %s", im->path,
                         im->node_index, imp_node_name(im), im->node->op_type,
                         (long long)im->m->opset, detail);
    return glrp_fail(err, code, "%s: %s", im->path, detail);
}

/* ------------------------------------------------------------ attributes --- */

const Onnx__AttributeProto *imp_attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t k = 0; k < n->n_attribute; k++)
        if (n->attribute[k]->name && strcmp(n->attribute[k]->name, name) == 0)
            return n->attribute[k];
    return NULL;
}

int64_t imp_attr_int(const Onnx__NodeProto *n, const char *name, int64_t def)
{
    const Onnx__AttributeProto *a = imp_attr(n, name);
    return a && a->has_i ? a->i : def;
}

float imp_attr_float(const Onnx__NodeProto *n, const char *name, float def)
{
    const Onnx__AttributeProto *a = imp_attr(n, name);
    return a && a->has_f ? a->f : def;
}

const char *imp_attr_string(const Onnx__NodeProto *n, const char *name, const char *def,
                            char *buf, size_t bufsize)
{
    const Onnx__AttributeProto *a = imp_attr(n, name);
    if (!a || !a->has_s)
        return def;
    /* protobuf-c leaves data NULL for an empty string, and memcpy from NULL is undefined
       even for zero bytes. */
    size_t len = a->s.len < bufsize - 1 ? a->s.len : bufsize - 1;
    if (len)
        memcpy(buf, a->s.data, len);
    buf[len] = '\0';
    return buf;
}

int imp_attr_ints(const Onnx__NodeProto *n, const char *name, int64_t *out, int max)
{
    const Onnx__AttributeProto *a = imp_attr(n, name);
    if (!a)
        return -1;
    int count = (int)(a->n_ints < (size_t)max ? a->n_ints : (size_t)max);
    for (int k = 0; k < count; k++)
        out[k] = a->ints[k];
    return (int)a->n_ints;
}

/* ------------------------------------------------------------------ file --- */

static int read_file(const char *path, uint8_t **buf, size_t *len, glrp_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: cannot open model: %s", path,
                         strerror(errno));
    uint8_t *data = NULL;
    size_t size = 0, cap = 0;
    for (;;) {
        if (size == cap) {
            if (cap >= MAX_MODEL_BYTES) {
                fclose(f);
                free(data);
                return glrp_fail(err, GLRP_ERR_INPUT, "%s: larger than 2 GiB, not an ONNX model "
                                 "geolrp can read (ONNX external data is not supported)", path);
            }
            cap = cap ? cap * 2 : 1 << 20;
            uint8_t *p = realloc(data, cap);
            if (!p) {
                fclose(f);
                free(data);
                return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: out of memory", path);
            }
            data = p;
        }
        size_t got = fread(data + size, 1, cap - size, f);
        size += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f) ? errno : 0; /* a folder opens, and fails only here (EISDIR) */
    fclose(f);
    if (bad) {
        free(data);
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: cannot read model: %s", path,
                         strerror(bad));
    }
    *buf = data;
    *len = size;
    return 0;
}

/* ------------------------------------------------------------ the graph --- */

static int64_t model_opset(const Onnx__ModelProto *mp)
{
    for (size_t k = 0; k < mp->n_opset_import; k++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[k];
        if (!o->domain || o->domain[0] == '\0' || strcmp(o->domain, "ai.onnx") == 0)
            return o->has_version ? o->version : 1;
    }
    return 0;
}

static int add_initializers(importer *im, glrp_error *err)
{
    Onnx__GraphProto *g = im->g;
    for (size_t k = 0; k < g->n_initializer; k++) {
        const Onnx__TensorProto *t = g->initializer[k];
        char what[300];
        snprintf(what, sizeof what, "initializer '%s'", t->name ? t->name : "");
        value *v = imp_define(im, t->name ? t->name : "", err);
        if (!v)
            return err->code;
        v->kind = VAL_CONST;
        int rc = const_from_tensor_proto(t, what, &v->c, err);
        if (rc) {
            glrp_error_prefix(err, "%s: ", im->path);
            return rc;
        }
    }
    return 0;
}

/* The graph input that is not an initializer is the model input. */
static int add_input(importer *im, glrp_error *err)
{
    Onnx__GraphProto *g = im->g;
    const Onnx__ValueInfoProto *in = NULL;
    int count = 0;
    for (size_t k = 0; k < g->n_input; k++) {
        if (imp_find(im, vi_name(g->input[k])))
            continue;
        in = g->input[k];
        count++;
    }
    if (count != 1)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: the graph has %d inputs besides its "
                         "initializers; geolrp explains models with exactly one input",
                         im->path, count);
    const Onnx__TypeProto *tp = in->type;
    if (!tp || !tp->tensor_type || !tp->tensor_type->shape)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: input '%s' has no tensor shape", im->path,
                         vi_name(in));
    const Onnx__TensorShapeProto *sh = tp->tensor_type->shape;
    if (tp->tensor_type->has_elem_type && tp->tensor_type->elem_type != 1)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: input '%s' has element type %d; geolrp "
                         "needs float32 (type 1)", im->path, vi_name(in),
                         tp->tensor_type->elem_type);
    int rank = (int)sh->n_dim;
    if (rank != 2 && rank != 4)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: input '%s' has rank %d; geolrp takes "
                         "(N, F) or (N, C, H, W)", im->path, vi_name(in), rank);
    struct glrp_model *m = im->m;
    const int index = m->n_tensors;
    glrp_tensor *t = &m->tensors[index];
    memset(t, 0, sizeof *t);
    t->name = glrp_strdup(vi_name(in));
    if (!t->name)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    m->n_tensors++; /* owned by the model from here on, also on the error paths below */
    t->rank = rank - 1;
    t->numel = 1;
    t->producer = -1;
    const Onnx__TensorShapeProto__Dimension *d0 = sh->dim[0];
    im->declared_batch = d0->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                             ? d0->dim_value : 0;
    for (int k = 1; k < rank; k++) {
        const Onnx__TensorShapeProto__Dimension *d = sh->dim[k];
        if (d->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ||
            d->dim_value <= 0)
            return glrp_fail(err, GLRP_ERR_INPUT, "%s: input '%s' dimension %d is symbolic or "
                             "not positive; only the batch axis may be dynamic", im->path,
                             vi_name(in), k);
        t->dims[k - 1] = d->dim_value;
        size_t n;
        if (!glrp_mul_ok(t->numel, (size_t)d->dim_value, &n) || n > GLRP_MAX_ELEMENTS)
            return glrp_fail(err, GLRP_ERR_INPUT, "%s: input '%s' is absurdly large", im->path,
                             vi_name(in));
        t->numel = n;
    }
    value *v = imp_define(im, vi_name(in), err);
    if (!v)
        return err->code;
    v->kind = VAL_ACT;
    v->tensor = index;
    m->input = index;
    return 0;
}

/* How often is a name read by later nodes or the graph output? Needed to decide whether a
 * BatchNorm or bias Add may be folded into the layer that produces its input. */
int imp_uses(const importer *im, const char *name)
{
    const Onnx__GraphProto *g = im->g;
    int uses = 0;
    for (size_t k = 0; k < g->n_node; k++)
        for (size_t j = 0; j < g->node[k]->n_input; j++)
            if (strcmp(g->node[k]->input[j], name) == 0)
                uses++;
    for (size_t k = 0; k < g->n_output; k++)
        if (strcmp(vi_name(g->output[k]), name) == 0)
            uses++;
    return uses;
}

static int import_nodes(importer *im, glrp_error *err)
{
    Onnx__GraphProto *g = im->g;
    for (size_t k = 0; k < g->n_node; k++) {
        const Onnx__NodeProto *n = g->node[k];
        im->node = n;
        im->node_index = (int)k;
        if (!n->op_type)
            return imp_node_error(im, err, GLRP_ERR_INPUT, "node without op type");
        if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx") != 0)
            return imp_node_error(im, err, GLRP_ERR_INPUT, "operator domain '%s' is not "
                                  "supported; geolrp supports the standard ONNX domain: %s",
                                  n->domain, build_supported_ops);
        int all_const = 1, any_input = 0;
        for (size_t j = 0; j < n->n_input; j++) {
            if (n->input[j][0] == '\0')
                continue;
            value *v = imp_find(im, n->input[j]);
            if (!v)
                return imp_node_error(im, err, GLRP_ERR_INPUT, "input '%s' is not produced "
                                      "by any earlier node (graph not in topological order, "
                                      "or an unsupported output is used)", n->input[j]);
            if (v->is_softmax)
                return imp_node_error(im, err, GLRP_ERR_INPUT, "reads the output of a "
                                      "Softmax; geolrp supports Softmax only as the final "
                                      "operation");
            any_input = 1;
            if (v->kind != VAL_CONST)
                all_const = 0;
        }
        int rc;
        if (fold_is_foldable(n->op_type) && (all_const || !any_input ||
                                             strcmp(n->op_type, "Shape") == 0))
            rc = fold_node(im, err);
        else
            rc = build_node(im, err);
        if (rc)
            return rc;
    }
    im->node = NULL;
    return 0;
}

static int set_output(importer *im, glrp_error *err)
{
    Onnx__GraphProto *g = im->g;
    if (g->n_output != 1)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: the graph has %zu outputs; geolrp explains "
                         "models with exactly one output", im->path, g->n_output);
    value *v = imp_find(im, vi_name(g->output[0]));
    if (!v || v->kind != VAL_ACT)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: output '%s' does not depend on the input",
                         im->path, vi_name(g->output[0]));
    im->m->output = v->tensor;
    im->m->final_softmax = v->is_softmax;
    if (im->m->output == im->m->input)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: the model has no layers", im->path);
    return 0;
}

static int copy_metadata(importer *im, const Onnx__ModelProto *mp, glrp_error *err)
{
    struct glrp_model *m = im->m;
    if (mp->n_metadata_props == 0)
        return 0;
    m->meta = glrp_alloc(mp->n_metadata_props, sizeof *m->meta);
    if (!m->meta)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    for (size_t k = 0; k < mp->n_metadata_props; k++) {
        const Onnx__StringStringEntryProto *e = mp->metadata_props[k];
        m->meta[k].key = glrp_strdup(e->key ? e->key : "");
        m->meta[k].value = glrp_strdup(e->value ? e->value : "");
        m->n_meta++;
        if (!m->meta[k].key || !m->meta[k].value)
            return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    }
    return 0;
}

static void free_values(importer *im)
{
    for (int k = 0; k < im->n_vals; k++) {
        free(im->vals[k].name);
        const_free(&im->vals[k].c);
    }
    free(im->vals);
}

static int import_model(importer *im, const Onnx__ModelProto *mp, glrp_error *err)
{
    struct glrp_model *m = im->m;
    if (!mp->graph)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: not an ONNX model (no graph)", im->path);
    im->g = mp->graph;
    m->opset = model_opset(mp);
    if (m->opset < 9 || m->opset > 18)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: ONNX opset %lld is not supported (geolrp "
                         "supports opsets 9 to 18)", im->path, (long long)m->opset);
    m->producer = glrp_strdup(mp->producer_name ? mp->producer_name : "");
    /* Every node makes at most one activation tensor, plus the input. */
    m->tensors = glrp_alloc(im->g->n_node + 1, sizeof *m->tensors);
    m->layers = glrp_alloc(im->g->n_node + 1, sizeof *m->layers);
    if (!m->tensors || !m->layers || !m->producer)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    int rc;
    if ((rc = reserve_values(im, err)) || (rc = copy_metadata(im, mp, err)) ||
        (rc = add_initializers(im, err)) || (rc = add_input(im, err)))
        return rc;
    if ((rc = import_nodes(im, err)) || (rc = set_output(im, err)))
        return rc;
    return 0;
}

int glrp_model_load_memory(const void *data, size_t len, const char *name, int max_batch,
                           glrp_model **out, glrp_error *err)
{
    *out = NULL;
    if (max_batch < 1)
        return glrp_fail(err, GLRP_ERR_INPUT, "batch size must be at least 1 (got %d)",
                         max_batch);
    if (len == 0)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: empty file, not an ONNX model", name);
    /* geolrp parallelises over samples; BLAS inside stays single-threaded (deterministic). */
    openblas_set_num_threads(1);
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, data);
    if (!mp)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: not a valid ONNX model (protobuf decoding "
                         "failed: the file is truncated, corrupt or not ONNX)", name);
    struct glrp_model *m = glrp_alloc(1, sizeof *m);
    if (!m) {
        onnx__model_proto__free_unpacked(mp, NULL);
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    }
    m->max_batch = max_batch;
    m->input = m->output = -1;
    m->path = glrp_strdup(name);
    importer im = {.m = m, .path = name, .file_bytes = len};
    int rc = m->path ? import_model(&im, mp, err)
                     : glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    free_values(&im);
    onnx__model_proto__free_unpacked(mp, NULL);
    if (!rc)
        rc = glrp_graph_finish(m, err);
    if (!rc)
        rc = glrp_graph_alloc_buffers(m, err);
    if (rc) {
        glrp_graph_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

int glrp_model_load(const char *path, int max_batch, glrp_model **out, glrp_error *err)
{
    *out = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = read_file(path, &buf, &len, err);
    if (rc)
        return rc;
    rc = glrp_model_load_memory(buf, len, path, max_batch, out, err);
    free(buf);
    return rc;
}
