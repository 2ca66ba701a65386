/*
 * geolrp: Layer-wise Relevance Propagation for classifiers of geospatial rasters.
 *
 * Public C API of the engine. A model is loaded once from an ONNX file for a fixed
 * maximum batch size; explanations are then computed batch by batch. All tensors are
 * float32, NCHW (or N x F for dense inputs), batch axis first, C order.
 *
 * Every function that can fail returns 0 on success or a glrp_status code, and fills a
 * glrp_error with a message that names the file, node or option at fault.
 */
#ifndef GEOLRP_GEOLRP_H
#define GEOLRP_GEOLRP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GEOLRP_VERSION "0.1.0"

/* The codes double as the command's exit codes. */
typedef enum {
    GLRP_OK = 0,
    GLRP_ERR_RUNTIME = 1, /* out of memory, I/O failure, numerical failure */
    GLRP_ERR_INPUT = 2    /* bad file, unsupported model, bad option value */
} glrp_status;

typedef struct {
    int code;
    char msg[1024];
} glrp_error;

typedef struct glrp_model glrp_model;

/* ---- model ------------------------------------------------------------------------ */

/* Loads an ONNX model and plans it for batches of at most max_batch samples. */
int glrp_model_load(const char *path, int max_batch, glrp_model **out, glrp_error *err);
/* The same from bytes in memory; name appears in error messages. */
int glrp_model_load_memory(const void *data, size_t len, const char *name, int max_batch,
                           glrp_model **out, glrp_error *err);
void glrp_model_free(glrp_model *m);

/* Per-sample input shape (without the batch axis): rank 1 (F) or 3 (C, H, W). */
int glrp_model_input_rank(const glrp_model *m);
const int64_t *glrp_model_input_dims(const glrp_model *m);
size_t glrp_model_input_size(const glrp_model *m); /* elements per sample */
int glrp_model_num_outputs(const glrp_model *m);   /* K, scores per sample */
int glrp_model_max_batch(const glrp_model *m);

/* Value of an ONNX metadata_props key, or NULL. */
const char *glrp_model_metadata(const glrp_model *m, const char *key);

/* Writes a human-readable description (nodes, shapes, parameters, rules) to a FILE*. */
struct glrp_rules;
void glrp_model_describe(const glrp_model *m, const struct glrp_rules *rules, void *file);

/* ---- rules ------------------------------------------------------------------------ */

typedef enum {
    GLRP_RULE_DEFAULT = 0, /* as the composite says */
    GLRP_RULE_EPSILON,
    GLRP_RULE_ZPLUS,
    GLRP_RULE_ALPHABETA,
    GLRP_RULE_GAMMA,
    GLRP_RULE_ZBOX,
    GLRP_RULE_FLAT,
    GLRP_RULE_WSQUARE,
    GLRP_RULE_PASS
} glrp_rule_kind;

typedef enum { GLRP_INIT_LOGIT = 0, GLRP_INIT_ONE, GLRP_INIT_PROB } glrp_init;
/* "logit", "one", "prob" <-> glrp_init; parse returns non-zero for anything else. */
int glrp_init_parse(const char *name, glrp_init *out);
const char *glrp_init_name(glrp_init init);
typedef enum { GLRP_MAXPOOL_WTA = 0, GLRP_MAXPOOL_PROPORTIONAL } glrp_maxpool_mode;

/* A rule with its parameters, as one linear layer uses it. */
typedef struct {
    glrp_rule_kind kind;
    float eps;   /* stabiliser; 0 gives LRP-0 */
    float gamma; /* gamma rule */
    float alpha, beta;
} glrp_rule;

typedef struct glrp_rule_override {
    char *node; /* ONNX node name, or "#K" for the K-th linear layer */
    glrp_rule rule;
} glrp_rule_override;

/* How a model is explained: a composite, its parameters, and per-layer overrides. */
typedef struct glrp_rules {
    char composite[64];
    float eps, gamma, alpha, beta;
    /* zbox bounds on the model input, one per input channel (n_bounds == channels) or a
     * single value for all (n_bounds == 1); NULL when no layer uses zbox. */
    const float *low, *high;
    int n_bounds;
    glrp_rule_override *overrides;
    int n_overrides;
    glrp_maxpool_mode maxpool;
} glrp_rules;

/* Defaults: composite epsilon-plus-flat, eps 1e-6, gamma 0.25, alpha 2, beta 1. */
void glrp_rules_init(glrp_rules *r);

/* Names of composites and presets, NULL-terminated, for help texts and checks. */
extern const char *const glrp_composite_names[];
/* Parses a rule name (epsilon, lrp0, zplus, alpha-beta, alpha1-beta0, alpha2-beta1,
 * gamma, zbox, flat, wsquare, pass) with parameters taken from r. */
int glrp_rule_parse(const char *name, const glrp_rules *r, glrp_rule *out);

/* A rule's name with its parameters, e.g. "gamma(0.25)", written to buf. */
const char *glrp_rule_name(const glrp_rule *r, char *buf, size_t size);

/* Checks the rules against the model: composite known, overrides name real linear
 * layers, alpha - beta == 1, bounds present and sized when zbox is used. */
int glrp_rules_check(const glrp_model *m, const glrp_rules *r, glrp_error *err);
/* Linear layers (Conv, Gemm, MatMul) in graph order: their count, whether the k-th is a
 * first layer (no linear layer between it and the input), and the rule it gets. */
int glrp_model_num_linear(const glrp_model *m);
int glrp_model_linear_is_first(const glrp_model *m, int k);
glrp_rule glrp_rule_for_linear(const glrp_model *m, const glrp_rules *r, int k);

/* True when some linear layer gets the zbox rule under r. */
int glrp_rules_need_bounds(const glrp_model *m, const glrp_rules *r);

/* ---- running ---------------------------------------------------------------------- */

/* scores: n x K outputs before any final softmax. */
int glrp_forward(glrp_model *m, const float *x, int n, float *scores, glrp_error *err);

/* Target: an index >= 0, or GLRP_TARGET_PREDICTED for the argmax of the scores. */
#define GLRP_TARGET_PREDICTED (-1)

typedef struct {
    int target;              /* explained output */
    float score;             /* its score (logit) */
    double relevance_start;  /* relevance put in at the output */
    double relevance_input;  /* relevance that reached the input */
} glrp_sample_stats;

/* Explains n samples: relevance (n x input size), optional scores (n x K) and
 * per-sample stats (n entries, may be NULL). */
int glrp_explain(glrp_model *m, const glrp_rules *rules, int target, glrp_init init,
                 const float *x, int n, float *relevance, float *scores,
                 glrp_sample_stats *stats, glrp_error *err);

/* Model randomisation sanity check: re-initialises the weights of the last `count` linear
 * layers (every linear layer when count < 0) with uniform noise of the same standard
 * deviation as the trained weights, and their biases with zeros. */
int glrp_model_randomize(glrp_model *m, int count, uint64_t seed);

/* As glrp_explain, with one target per sample (GLRP_TARGET_PREDICTED allowed). */
int glrp_explain_targets(glrp_model *m, const glrp_rules *rules, const int *targets,
                         glrp_init init, const float *x, int n, float *relevance,
                         float *scores, glrp_sample_stats *stats, glrp_error *err);

/* Threads used by the BLAS. Results do not depend on it. */
void glrp_set_threads(int n);

#ifdef __cplusplus
}
#endif
#endif
