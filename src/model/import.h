/*
 * Internals of the ONNX importer, shared by its three files:
 *   onnx_import.c  reading the file, initializers, the node loop, dispatch;
 *   fold_const.c   evaluating constant sub-graphs (shape arithmetic) at load time;
 *   build_layers.c turning operators on activations into engine layers.
 */
#ifndef GLRP_MODEL_IMPORT_H
#define GLRP_MODEL_IMPORT_H

#include "model/graph.h"
#include "onnx.pb-c.h"

#define CONST_MAX_RANK 8

typedef enum { VAL_NONE = 0, VAL_CONST, VAL_ACT } value_kind;
typedef enum { CT_F32 = 0, CT_I64 } const_type;

/* A constant tensor known at load time. Floating types are held as float32, integer and
 * boolean types as int64: all the shape arithmetic needs. */
typedef struct {
    const_type type;
    int rank;
    int64_t dims[CONST_MAX_RANK];
    size_t count;
    float *f;
    int64_t *i;
} const_tensor;

/* A named value of the ONNX graph: a constant or an activation tensor of the engine. */
typedef struct {
    char *name;
    value_kind kind;
    const_tensor c;
    int tensor;      /* VAL_ACT: index into model tensors */
    int is_softmax;  /* VAL_ACT produced by a Softmax: only allowed as graph output */
} value;

typedef struct {
    struct glrp_model *m;
    const char *path;
    Onnx__GraphProto *g;
    value *vals;
    int n_vals, cap_vals;
    int64_t declared_batch; /* the input's batch dim in the file, 0 when symbolic */
    int node_index;         /* index of the node being imported */
    const Onnx__NodeProto *node;
    size_t file_bytes;      /* size of the ONNX file: bounds what folding may allocate */
    size_t folded_bytes;    /* memory taken so far by constants computed while loading */
} importer;

/* Limits that stop absurd files before they cost memory. */
#define GLRP_MAX_ELEMENTS ((size_t)1 << 31) /* per tensor, per sample */

/* --- values (onnx_import.c) --- */
value *imp_find(importer *im, const char *name);
value *imp_define(importer *im, const char *name, glrp_error *err);
/* Input k of the node, or NULL (optional input absent or k out of range). */
value *imp_input(importer *im, int k);
int imp_node_error(importer *im, glrp_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
const char *imp_node_name(const importer *im);
/* How many node inputs and graph outputs read a name. */
int imp_uses(const importer *im, const char *name);

/* --- attributes (onnx_import.c) --- */
const Onnx__AttributeProto *imp_attr(const Onnx__NodeProto *n, const char *name);
int64_t imp_attr_int(const Onnx__NodeProto *n, const char *name, int64_t def);
float imp_attr_float(const Onnx__NodeProto *n, const char *name, float def);
const char *imp_attr_string(const Onnx__NodeProto *n, const char *name, const char *def,
                            char *buf, size_t bufsize);
/* Copies up to max ints of an INTS attribute; returns the count, -1 when absent. */
int imp_attr_ints(const Onnx__NodeProto *n, const char *name, int64_t *out, int max);

/* --- constants (fold_const.c) --- */
void const_free(const_tensor *c);
int const_from_tensor_proto(const Onnx__TensorProto *t, const char *what, const_tensor *out,
                            glrp_error *err);
int const_copy(const const_tensor *src, const_tensor *dst);
/* Reads a constant as int64 values (converting floats). */
int64_t const_get_i(const const_tensor *c, size_t k);
float const_get_f(const const_tensor *c, size_t k);
/* Folds a node whose inputs are all constant; 1 when it handled the op type. */
int fold_is_foldable(const char *op_type);
int fold_node(importer *im, glrp_error *err);

/* --- layers (build_layers.c) --- */
/* Imports a node that reads an activation; unsupported ops are errors. */
int build_node(importer *im, glrp_error *err);
extern const char *const build_supported_ops;

#endif
