/*
 * The planned network: what the ONNX importer produces and the engine runs.
 *
 * Import folds everything that does not depend on the input (initializers, shape
 * arithmetic, BatchNorm after a linear layer, constant biases) so that what remains is a
 * short list of layers over activation tensors, in topological order. Each activation has
 * a per-sample shape; the batch axis is implicit and at most max_batch long.
 */
#ifndef GLRP_MODEL_GRAPH_H
#define GLRP_MODEL_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "geolrp/geolrp.h"

#define GLRP_MAX_RANK 3
/* Activation and relevance buffers of one plan may not exceed this. */
#define GLRP_MAX_PLAN_BYTES (8.0 * 1024 * 1024 * 1024) /* per-sample rank: (F) or (C, H, W) */

typedef enum {
    OP_DENSE,     /* y = W x + b, W is [out, in] */
    OP_CONV,      /* 2-D convolution, groups, pads (t, l, b, r), strides, dilations */
    OP_AFFINE,    /* y = x * scale + shift, element-wise (normalisation, unfoldable BN) */
    OP_RELU,
    OP_LEAKYRELU,
    OP_SIGMOID,
    OP_TANH,
    OP_MAXPOOL,
    OP_AVGPOOL,
    OP_GLOBALAVGPOOL,
    OP_ADD,       /* sum of two activations (residual) */
    OP_CONCAT,    /* along a per-sample axis */
    OP_RESHAPE,   /* Flatten and Reshape: same data, new shape */
    OP_PAD        /* constant padding of per-sample axes */
} op_kind;

typedef struct {
    char *name;
    int rank;                    /* per-sample rank */
    int64_t dims[GLRP_MAX_RANK]; /* per-sample dims */
    size_t numel;                /* elements per sample */
    int producer;                /* layer index, -1 for the model input */
    int consumers;               /* number of layer inputs reading it */
} glrp_tensor;

typedef struct {
    int cin, cout, groups;
    int kh, kw;
    int stride[2], dil[2];
    int pad[4]; /* top, left, bottom, right */
    int ih, iw, oh, ow;
    float *W;    /* dense: [cout, cin]; conv: [cout, cin/groups, kh, kw] */
    float *b;    /* [cout], never NULL (zeros when the model has none) */
    float *Wpos; /* max(W, 0) */
    float *Wneg; /* min(W, 0) */
    size_t wsize;
} glrp_linear;

typedef struct {
    int kh, kw, stride[2], dil[2], pad[4];
    int count_include_pad;
    int c, ih, iw, oh, ow;
} glrp_pool;

typedef struct {
    op_kind kind;
    char *name;    /* ONNX node name (or "<op_type>_<index>" when the node has none) */
    char *op_type; /* ONNX op type it came from */
    int n_in;
    int *in;       /* activation tensor indices */
    int out;
    int linear_index; /* position among linear layers, -1 otherwise */
    glrp_linear lin;  /* OP_DENSE, OP_CONV */
    glrp_pool pool;   /* pooling ops */
    float alpha;      /* LeakyRelu slope */
    /* OP_AFFINE: y = x * scale[p] + shift[p]. The parameters keep their own broadcast
     * shape, so a per-channel normalisation stores C values, not one per pixel: with the
     * per-sample tensor seen as 3-D (left-padded with 1s), element (i, j, k) reads
     * p = i * aff_stride[0] + j * aff_stride[1] + k * aff_stride[2], the stride being 0
     * along a broadcast axis. */
    float *scale, *shift;
    size_t aff_dims[3], aff_stride[3];
    int axis;             /* OP_CONCAT: per-sample axis */
    int64_t pad_begin[GLRP_MAX_RANK], pad_end[GLRP_MAX_RANK]; /* OP_PAD */
    float pad_value;
    /* Which layers precede this one with no linear layer in between? Set for linear
     * layers: 1 when no linear layer lies between the model input and this layer. */
    int is_first_linear;
} glrp_layer;

typedef struct {
    char *key, *value;
} glrp_meta;

struct glrp_model {
    char *path;
    int64_t opset;
    char *producer;
    int max_batch;

    glrp_tensor *tensors;
    int n_tensors;
    int input;  /* tensor index of the model input */
    int output; /* tensor index of the output explained (softmax removed) */
    int final_softmax;

    glrp_layer *layers;
    int n_layers;
    int n_linear;
    size_t n_params;

    glrp_meta *meta;
    int n_meta;

    /* Activations and relevance, one buffer of max_batch * numel per tensor. */
    float **act;
    float **rel;
    /* Convolution scratch of every thread, sized by the engine on first use for the
     * largest convolution and the largest stacking a rule uses (explain.c). */
    float *col;
    size_t col_floats;   /* per thread; 0 until first use */
    size_t col_capacity; /* floats allocated in col */
};

/* Frees every buffer the model owns. */
void glrp_graph_free(struct glrp_model *m);
/* Allocates activation and relevance buffers for max_batch samples. */
int glrp_graph_alloc_buffers(struct glrp_model *m, glrp_error *err);
/* Computes Wpos/Wneg and the is_first_linear flags. */
int glrp_graph_finish(struct glrp_model *m, glrp_error *err);

#endif
