/*
 * The engine: forward ops and relevance ops over a planned model.
 *
 * Each op file keeps an operator's forward pass and its relevance pass side by side.
 * Relevance functions write (not add) the relevance of one input; the driver in
 * explain.c sums contributions when a tensor feeds several layers.
 */
#ifndef GLRP_ENGINE_ENGINE_H
#define GLRP_ENGINE_ENGINE_H

#include <stdint.h>

#include "model/graph.h"

/* Stabiliser of every rule: v + eps * sgn(v) with sgn(0) = +1. */
static inline float glrp_stab(float v, float eps)
{
    return v + (v >= 0.0f ? eps : -eps);
}

/* s = R / stab(z); a zero denominator (possible only with eps = 0) gives 0. */
static inline float glrp_stab_div(float r, float z, float eps)
{
    float d = glrp_stab(z, eps);
    return d == 0.0f ? 0.0f : r / d;
}

/* The norm rule (average pooling, residual Add) uses the reference library's own fixed
 * stabiliser, whatever epsilon the linear layers use. */
#define GLRP_NORM_EPS 1e-6f

/* ---- linear.c: dense and convolution as GEMMs ---- */
/* z = W x (no bias) for n samples, on the calling thread; col is scratch of
 * linear_col_floats(L) floats. */
void linear_forward(const glrp_layer *L, const float *W, const float *x, float *z, int n,
                    float *col);
/* g = W^T s for n samples (for a convolution: the transposed convolution). */
void linear_transpose(const glrp_layer *L, const float *W, const float *s, float *g, int n,
                      float *col);
void linear_add_bias(const glrp_layer *L, const float *b, float *z, int n);
size_t linear_col_floats(const glrp_layer *L);
/* Floating-point operations issued to the GEMMs so far (2 M N K per call), for benchmarks. */
uint64_t linear_flops(void);
size_t linear_in_numel(const glrp_layer *L);
size_t linear_out_numel(const glrp_layer *L);

/* ---- pool.c ---- */
void maxpool_forward(const glrp_pool *p, const float *x, float *y, int n);
void maxpool_relevance_wta(const glrp_pool *p, const float *x, const float *R, float *Rin,
                           int n);
void avgpool_forward(const glrp_pool *p, const float *x, float *y, int n);
/* Norm rule: R_in = x * J^T (R / stab(avgpool(x))). y is avgpool(x). */
void avgpool_relevance(const glrp_pool *p, const float *x, const float *y, const float *R,
                       float *Rin, int n);

/* ---- eltwise.c: activations, affine, add, concat, reshape, pad ---- */
void activation_forward(const glrp_layer *L, const float *x, float *y, size_t count);
void affine_forward(const glrp_layer *L, const float *x, float *y, size_t numel, int n);
void add_forward(const float *a, const float *b, float *y, size_t count);
void add_relevance(const float *xk, const float *y, const float *R, float *Rin, size_t count);
/* Samples [s0, s0 + n) of the model's activations. */
void concat_forward(const struct glrp_model *m, const glrp_layer *L, int s0, int n);
void concat_relevance(const struct glrp_model *m, const glrp_layer *L, int k, const float *R,
                      float *Rin, int n);
void pad_forward(const struct glrp_model *m, const glrp_layer *L, const float *x, float *y,
                 int n);
void pad_relevance(const struct glrp_model *m, const glrp_layer *L, const float *R, float *Rin,
                   int n);

/* ---- forward.c ---- */
/* Samples are processed in fixed chunks of ENGINE_CHUNK, each chunk through every layer on
 * one thread with single-threaded BLAS: threads never split a sample's arithmetic, so
 * results are bit-identical for any thread count, and there is no barrier per layer. */
#ifndef ENGINE_CHUNK /* -DENGINE_CHUNK=N for tuning (bench/engine_bench.c) */
#define ENGINE_CHUNK 4
#endif
int engine_chunks(int n);
/* Runs layers [0, upto) on n samples already in m->act[m->input]; m->col must hold
 * m->col_floats floats per thread. */
void engine_forward(struct glrp_model *m, int n, int upto);

/* ---- rules (rules/ *.c): relevance through one linear layer ---- */
typedef struct {
    const struct glrp_model *m;
    const glrp_layer *L;
    glrp_rule rule;
    int n;
    const float *x;    /* layer input, n * in_numel */
    const float *z;    /* layer output W x + b as computed by the forward pass */
    const float *R;    /* relevance at the output, n * out_numel */
    float *Rin;        /* written: relevance at the input, n * in_numel */
    const float *low, *high; /* zbox: bounds at the layer input, in_numel each */
    float *col;        /* scratch for convolutions */
} rule_ctx;

int rule_epsilon(const rule_ctx *c);
int rule_zplus(const rule_ctx *c);
int rule_alphabeta(const rule_ctx *c);
int rule_gamma(const rule_ctx *c);
int rule_zbox(const rule_ctx *c);
int rule_flat(const rule_ctx *c);
int rule_wsquare(const rule_ctx *c);

/* rules/common.c: shared pieces of the rules */
int rule_apply(const rule_ctx *c);
/* Allocates count floats or returns NULL; used for rule scratch. */
float *rule_buf(size_t count);
void split_sign(const float *x, float *pos, float *neg, size_t count);
int any_negative(const float *x, size_t count);
/* z[i] += b[channel of i] for each sample, b per output channel, then s = R/stab(z). */
void stab_divide(const float *R, const float *z, float eps, float *s, size_t count);
/* Broadcasts a per-sample vector to n samples (for inputs that do not vary: bounds, 1). */
void repeat_sample(const float *one, float *out, size_t numel, int n);

/* rules/stack.c: several weight variants through one im2col and one GEMM */
/* L with k_in copies of its input channels and k_out of its output channels (weights
 * NULL: the caller passes a stacked weight from stack_weights). */
glrp_layer linear_stacked(const glrp_layer *L, int k_in, int k_out);
/* Convolution scratch a rule may need for L: the largest stacking any rule uses. */
size_t rule_col_floats(const glrp_layer *L);
/* The stacked weight whose block (mo, mi) is blocks[mo * k_in + mi] (NULL: zeros), each in
 * L's weight layout. */
void stack_weights(const glrp_layer *L, int k_out, int k_in, const float *const *blocks,
                   float *A);
/* n samples of k arrays shaped like L's input (output when `output`) into the stacked
 * layout, and back. */
void stack_channels(const glrp_layer *L, int output, int k, const float *const *parts,
                    float *dst, int n);
void unstack_channels(const glrp_layer *L, int output, int k, const float *src,
                      float *const *parts, int n);
/* k per-output-channel vectors (biases) in the stacked channel order. */
void stack_bias(const glrp_layer *L, int k, const float *const *parts, float *dst);
/* R_in = x+ g+ + x- g- with [g+; g-] = A^T s over the stacked layer S with k_in input
 * copies (1 when x- is zero). */
int stacked_relevance_in(const rule_ctx *c, const glrp_layer *S, const float *A, const float *s,
                         int k_in, const float *xp, const float *xn);
/* u = Wa x+ + Wb x- + bias_u and v = Wb x+ + Wa x- + bias_v in one stacked pass; scale
 * makes them s_u, s_v in place (count values each); R_in = x+ (Wa^T s_u + Wb^T s_v) +
 * x- (Wb^T s_u + Wa^T s_v). Alpha-beta and gamma are this with their own weights. */
typedef void (*signed_pair_scale)(const rule_ctx *c, float *u, float *v, size_t count);
int rule_signed_pair(const rule_ctx *c, const float *Wa, const float *Wb, const float *bias_u,
                     const float *bias_v, signed_pair_scale scale);

/* ---- composite.c ---- */
glrp_rule composite_rule_for(const struct glrp_model *m, const glrp_rules *r,
                             const glrp_layer *L);

#endif
