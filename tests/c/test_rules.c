/*
 * Each rule on hand-worked cases. The dense case: x = (1, -2), W = [[1, 2], [-1, 3]],
 * b = (0.5, -1), R = (1, 2); z = W x + b = (-2.5, -8). Expected values follow
 * lrp-rules.md step by step (worked out in the comments).
 */
#include "check.h"
#include "engine/engine.h"
#include "layers.h"

static const float X[2] = {1, -2}, W[4] = {1, 2, -1, 3}, B[2] = {0.5f, -1}, R[2] = {1, 2};
static const float Z[2] = {-2.5f, -8};

static void run_dense(glrp_rule rule, const float *low, const float *high, float *rin)
{
    glrp_layer L = dense_layer(2, 2, W, B);
    rule_ctx c = {NULL, &L, rule, 1, X, Z, R, rin, low, high, NULL};
    CHECK(rule_apply(&c) == 0);
    free_layer(&L);
}

static glrp_rule rule_of(glrp_rule_kind kind, float eps)
{
    glrp_rule r = {kind, eps, 0.25f, 2.0f, 1.0f};
    return r;
}

static void test_epsilon(void)
{
    float rin[2];
    /* s = R / z = (-0.4, -0.25); W^T s = (-0.15, -1.55); R_in = x * W^T s. */
    run_dense(rule_of(GLRP_RULE_EPSILON, 0.0f), NULL, NULL, rin);
    CHECK_NEAR(rin[0], -0.15, 1e-6);
    CHECK_NEAR(rin[1], 3.1, 1e-6);
    /* The bias absorbed 0.05 of the 3 put in. */
    CHECK_NEAR(rin[0] + rin[1], 2.95, 1e-6);
    run_dense(rule_of(GLRP_RULE_EPSILON, 0.5f), NULL, NULL, rin);
    /* stab(-2.5) = -3, stab(-8) = -8.5: s = (-1/3, -2/8.5). */
    CHECK_NEAR(rin[0], 1 * (-1.0 / 3 + 2.0 / 8.5), 1e-6);
    CHECK_NEAR(rin[1], -2 * (2 * -1.0 / 3 + 3 * -2.0 / 8.5), 1e-6);
}

static void test_lrp0_zero_denominator(void)
{
    /* z = 0 exactly with eps = 0: 0/0 is taken as 0, never NaN. */
    float w[1] = {1}, x[1] = {0}, z[1] = {0}, r[1] = {1}, rin[1] = {-1};
    glrp_layer L = dense_layer(1, 1, w, NULL);
    rule_ctx c = {NULL, &L, rule_of(GLRP_RULE_EPSILON, 0.0f), 1, x, z, r, rin, NULL, NULL, NULL};
    CHECK(rule_apply(&c) == 0);
    CHECK(rin[0] == 0.0f);
    free_layer(&L);
}

static void test_zplus(void)
{
    /* u = W+ x+ + W- x- + b+ = (1.5, 0); only x+ = (1, 0) carries relevance, and the
     * second output's huge s = 2 / 1e-6 meets only zero inputs. */
    float rin[2];
    run_dense(rule_of(GLRP_RULE_ZPLUS, 1e-6f), NULL, NULL, rin);
    CHECK_NEAR(rin[0], 1.0 / 1.500001, 1e-6);
    CHECK_NEAR(rin[1], 0.0, 1e-6);
}

static void test_alphabeta(void)
{
    /* u = (1.5, 0), v = W- x+ + W+ x- + b- = (-4, -8). */
    float rin[2];
    run_dense(rule_of(GLRP_RULE_ALPHABETA, 1e-6f), NULL, NULL, rin);
    CHECK_NEAR(rin[0], 1.08333248, 1e-5);
    CHECK_NEAR(rin[1], -2.49999956, 1e-5);
    glrp_rule ab10 = {GLRP_RULE_ALPHABETA, 1e-6f, 0, 1.0f, 0.0f};
    run_dense(ab10, NULL, NULL, rin); /* alpha 1 beta 0 is z+ */
    CHECK_NEAR(rin[0], 1.0 / 1.500001, 1e-6);
    CHECK_NEAR(rin[1], 0.0, 1e-6);
}

static void test_gamma(void)
{
    /* Both z < 0, so only the v path: N = W + W-/4, P = W + W+/4,
     * v = N x+ + P x- + (b + b-/4) = (-3.5, -10); s_v = (-2/7, -0.2);
     * R_in = x+ N^T s_v + x- P^T s_v = (-0.0357143, 2.9285714). */
    float rin[2];
    run_dense(rule_of(GLRP_RULE_GAMMA, 1e-6f), NULL, NULL, rin);
    CHECK_NEAR(rin[0], -0.03571423, 1e-6);
    CHECK_NEAR(rin[1], 2.92857087, 1e-6);
}

static void test_zbox(void)
{
    /* l = -3, h = 2: z = W x - W+ l - W- h = (9, -6) ... see lrp-rules.md. */
    const float low[2] = {-3, -3}, high[2] = {2, 2};
    float rin[2];
    run_dense(rule_of(GLRP_RULE_ZBOX, 1e-6f), low, high, rin);
    CHECK_NEAR(rin[0], 1.16666643, 1e-5);
    CHECK_NEAR(rin[1], 1.8333329, 1e-5);
}

static void test_flat_and_wsquare_dense(void)
{
    float rin[2];
    /* flat: each output spreads evenly over its 2 inputs: (1 + 2) / 2 each. */
    run_dense(rule_of(GLRP_RULE_FLAT, 1e-6f), NULL, NULL, rin);
    CHECK_NEAR(rin[0], 1.5, 1e-5);
    CHECK_NEAR(rin[1], 1.5, 1e-5);
    /* wsquare: z = (1 + 4 + 0.25, 1 + 9 + 1) = (5.25, 11). */
    run_dense(rule_of(GLRP_RULE_WSQUARE, 1e-6f), NULL, NULL, rin);
    CHECK_NEAR(rin[0], 1 / 5.25 + 2 * 1 / 11.0, 1e-5);
    CHECK_NEAR(rin[1], 4 / 5.25 + 2 * 9 / 11.0, 1e-5);
}

static void test_flat_conv_border(void)
{
    /* 3x3 input, 3x3 kernel, zero padding 1, R = 1 everywhere. Fields at the corners
     * count 4 inputs, at the edges 6, in the middle 9: padding shrinks border counts. */
    const int pad[4] = {1, 1, 1, 1};
    glrp_layer L = conv_layer(1, 1, 1, 3, 3, 3, 3, 1, 1, 1, 1, pad, NULL);
    float x[9], z[9], r[9], rin[9], col[128];
    CHECK(linear_col_floats(&L) <= 128);
    for (int k = 0; k < 9; k++)
        x[k] = (float)(k % 2), r[k] = 1.0f, z[k] = 0;
    rule_ctx c = {NULL, &L, rule_of(GLRP_RULE_FLAT, 1e-6f), 1, x, z, r, rin, NULL, NULL, col};
    CHECK(rule_apply(&c) == 0);
    CHECK_NEAR(rin[4], 4 / 4.0 + 4 / 6.0 + 1 / 9.0, 1e-5);
    CHECK_NEAR(rin[0], 1 / 4.0 + 2 / 6.0 + 1 / 9.0, 1e-5);
    CHECK_NEAR(rin[1], 2 / 4.0 + 3 / 6.0 + 1 / 9.0, 1e-5); /* 2 corners, 3 edges, centre */
    double sum = 0;
    for (int k = 0; k < 9; k++)
        sum += rin[k];
    CHECK_NEAR(sum, 9.0, 1e-4); /* flat conserves: no bias */
    /* Zero-valued inputs (x[0] = 0) still get relevance under flat. */
    CHECK(rin[0] > 0.1f);
    free_layer(&L);
}

static void test_epsilon_conserves_without_bias(void)
{
    /* A random conv with strides, dilation, groups and asymmetric padding: LRP-0 without
     * bias conserves relevance exactly (up to float rounding). */
    const int pad[4] = {1, 0, 2, 1};
    float w[4 * 2 * 3 * 3];
    unsigned seed = 7;
    for (size_t k = 0; k < sizeof w / sizeof *w; k++)
        w[k] = check_rand(&seed);
    glrp_layer L = conv_layer(4, 4, 2, 7, 6, 3, 3, 2, 1, 1, 2, pad, w);
    size_t in = linear_in_numel(&L), out = linear_out_numel(&L);
    float *x = malloc(2 * in * sizeof *x), *z = malloc(2 * out * sizeof *z),
          *r = malloc(2 * out * sizeof *r), *rin = malloc(2 * in * sizeof *rin),
          *col = malloc(linear_col_floats(&L) * sizeof *col);
    for (size_t k = 0; k < 2 * in; k++)
        x[k] = check_rand(&seed);
    linear_forward(&L, L.lin.W, x, z, 2, col);
    for (size_t k = 0; k < 2 * out; k++)
        r[k] = z[k]; /* relevance = output, as with logit init */
    rule_ctx c = {NULL, &L, rule_of(GLRP_RULE_EPSILON, 0.0f), 2, x, z, r, rin, NULL, NULL, col};
    CHECK(rule_apply(&c) == 0);
    for (int s = 0; s < 2; s++) {
        double a = 0, b = 0;
        for (size_t k = 0; k < out; k++)
            a += r[s * out + k];
        for (size_t k = 0; k < in; k++)
            b += rin[s * in + k];
        CHECK_NEAR(b, a, 1e-4 * fabs(a) + 1e-5);
    }
    /* z+ on non-negative inputs and no bias: conserves and is non-negative. */
    for (size_t k = 0; k < 2 * in; k++)
        x[k] = fabsf(x[k]);
    linear_forward(&L, L.lin.W, x, z, 2, col);
    for (size_t k = 0; k < 2 * out; k++)
        r[k] = fabsf(z[k]);
    c.rule = rule_of(GLRP_RULE_ZPLUS, 1e-6f);
    CHECK(rule_apply(&c) == 0);
    int nonneg = 1;
    for (size_t k = 0; k < 2 * in; k++)
        nonneg &= rin[k] >= 0.0f;
    CHECK(nonneg);
    free(x), free(z), free(r), free(rin), free(col);
    free_layer(&L);
}

int main(void)
{
    RUN(test_epsilon);
    RUN(test_lrp0_zero_denominator);
    RUN(test_zplus);
    RUN(test_alphabeta);
    RUN(test_gamma);
    RUN(test_zbox);
    RUN(test_flat_and_wsquare_dense);
    RUN(test_flat_conv_border);
    RUN(test_epsilon_conserves_without_bias);
    return check_report();
}
