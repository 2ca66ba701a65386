/* Forward ops against direct loops, the transposed passes against their adjoint identity,
 * and the pooling conventions (ties, divisors) on hand-worked cases. */
#include "check.h"
#include "engine/engine.h"
#include "layers.h"

/* Direct convolution, the definition, for comparison with im2col + GEMM. */
static float naive_conv_at(const glrp_linear *l, const float *x, int o, int oy, int ox)
{
    int cin_g = l->cin / l->groups, cout_g = l->cout / l->groups, g = o / cout_g;
    float sum = 0;
    for (int c = 0; c < cin_g; c++)
        for (int ki = 0; ki < l->kh; ki++)
            for (int kj = 0; kj < l->kw; kj++) {
                int iy = oy * l->stride[0] - l->pad[0] + ki * l->dil[0];
                int ix = ox * l->stride[1] - l->pad[1] + kj * l->dil[1];
                if (iy < 0 || iy >= l->ih || ix < 0 || ix >= l->iw)
                    continue;
                sum += l->W[((o * cin_g + c) * l->kh + ki) * l->kw + kj] *
                       x[((g * cin_g + c) * l->ih + iy) * l->iw + ix];
            }
    return sum;
}

static void test_conv_matches_definition(void)
{
    /* Shallow layers go through im2col; stride-1 undilated layers with at least 24 input
     * channels per group through the shifted-window GEMMs (linear.c). */
    static const struct {
        int cin, cout, groups, stride, dil, pad[4];
    } cases[] = {
        {4, 4, 1, 1, 1, {0, 0, 0, 0}}, {4, 4, 2, 2, 1, {1, 1, 1, 1}},
        {4, 4, 4, 1, 1, {2, 0, 1, 3}}, {4, 4, 1, 2, 2, {0, 0, 0, 0}},
        {4, 4, 2, 1, 2, {1, 1, 1, 1}}, {4, 4, 4, 2, 2, {2, 0, 1, 3}},
        {24, 5, 1, 1, 1, {1, 1, 1, 1}}, {48, 6, 2, 1, 1, {2, 0, 1, 3}},
        {30, 3, 1, 1, 1, {0, 0, 0, 0}}, {26, 4, 1, 1, 1, {4, 3, 0, 5}},
    };
    unsigned seed = 3;
    for (size_t v = 0; v < sizeof cases / sizeof cases[0]; v++) {
        const int cin = cases[v].cin, cout = cases[v].cout;
        float *w = malloc((size_t)cout * cin / cases[v].groups * 6 * sizeof *w);
        for (int k = 0; k < cout * cin / cases[v].groups * 6; k++)
            w[k] = check_rand(&seed);
        glrp_layer L = conv_layer(cin, cout, cases[v].groups, 9, 8, 3, 2, cases[v].stride,
                                  cases[v].stride, cases[v].dil, 1, cases[v].pad, w);
        size_t in = linear_in_numel(&L), out = linear_out_numel(&L);
        float *x = malloc(2 * in * sizeof *x), *z = malloc(2 * out * sizeof *z),
              *col = malloc(linear_col_floats(&L) * sizeof *col);
        for (size_t k = 0; k < 2 * in; k++)
            x[k] = check_rand(&seed);
        linear_forward(&L, L.lin.W, x, z, 2, col);
        double worst = 0;
        for (int s = 0; s < 2; s++)
            for (int o = 0; o < cout; o++)
                for (int oy = 0; oy < L.lin.oh; oy++)
                    for (int ox = 0; ox < L.lin.ow; ox++) {
                        float want = naive_conv_at(&L.lin, x + s * in, o, oy, ox);
                        float got = z[s * out + (size_t)((o * L.lin.oh + oy) * L.lin.ow + ox)];
                        worst = fmax(worst, fabs(want - got) / (1 + fabs(want)));
                    }
        CHECK(worst < 1e-5);
        free(x), free(z), free(col), free(w);
        free_layer(&L);
    }
}

/* <W x, s> == <x, W^T s> for conv and dense: the transposed pass is the adjoint. */
static void test_transpose_is_adjoint(void)
{
    const int pad[4] = {1, 2, 0, 1};
    unsigned seed = 11;
    /* Strided or dilated: GEMM then col2im. Stride 1, undilated: the flipped-kernel
     * convolution, with asymmetric pads, pads wider than the kernel, a 3 x 2 kernel and
     * 1 x 1, grouped and not. */
    const int wide[4] = {3, 0, 2, 4}, none[4] = {0, 0, 0, 0};
    static float w[48 * 30 * 3 * 3];
    for (size_t k = 0; k < sizeof w / sizeof w[0]; k++)
        w[k] = check_rand(&seed);
    /* The last three are deep enough (>= 24 channels per group on the input side of the
     * forward or of the transposed pass) for the shifted-window GEMMs. */
    glrp_layer layers[9] = {conv_layer(6, 6, 2, 7, 9, 3, 3, 2, 1, 1, 2, pad, w),
                            dense_layer(6, 9, w, NULL),
                            conv_layer(6, 6, 2, 7, 9, 3, 3, 1, 1, 1, 1, pad, w),
                            conv_layer(3, 3, 1, 5, 6, 3, 2, 1, 1, 1, 1, wide, w),
                            conv_layer(6, 3, 1, 4, 5, 1, 1, 1, 1, 1, 1, none, w),
                            conv_layer(3, 6, 3, 6, 4, 2, 3, 1, 1, 1, 1, pad, w),
                            conv_layer(24, 30, 1, 7, 9, 3, 3, 1, 1, 1, 1, pad, w),
                            conv_layer(48, 48, 2, 6, 5, 3, 2, 1, 1, 1, 1, wide, w),
                            conv_layer(4, 26, 1, 5, 7, 3, 3, 1, 1, 1, 1, pad, w)};
    for (int li = 0; li < 9; li++) {
        glrp_layer *L = &layers[li];
        size_t in = linear_in_numel(L), out = linear_out_numel(L);
        float *x = malloc(3 * in * sizeof *x), *z = malloc(3 * out * sizeof *z),
              *s = malloc(3 * out * sizeof *s), *g = malloc(3 * in * sizeof *g),
              *col = malloc((linear_col_floats(L) + 1) * sizeof *col);
        for (size_t k = 0; k < 3 * in; k++)
            x[k] = check_rand(&seed);
        for (size_t k = 0; k < 3 * out; k++)
            s[k] = check_rand(&seed);
        linear_forward(L, L->lin.W, x, z, 3, col);
        linear_transpose(L, L->lin.W, s, g, 3, col);
        double a = 0, b = 0;
        for (size_t k = 0; k < 3 * out; k++)
            a += (double)z[k] * s[k];
        for (size_t k = 0; k < 3 * in; k++)
            b += (double)x[k] * g[k];
        CHECK_NEAR(a, b, 1e-4 * (fabs(a) + 1));
        free(x), free(z), free(s), free(g), free(col);
        free_layer(L);
    }
}

static void test_dense_bias(void)
{
    float w[6] = {1, 0, -1, 2, 1, 1}, b[2] = {0.5f, -1}, x[3] = {1, 2, 3}, z[2];
    glrp_layer L = dense_layer(3, 2, w, b);
    linear_forward(&L, L.lin.W, x, z, 1, NULL);
    linear_add_bias(&L, L.lin.b, z, 1);
    CHECK_NEAR(z[0], 1 - 3 + 0.5, 1e-6);
    CHECK_NEAR(z[1], 2 + 2 + 3 - 1, 1e-6);
    free_layer(&L);
}

static glrp_pool pool_of(int ih, int iw, int k, int s, int pt, int pl, int pb, int pr)
{
    glrp_pool p = {.kh = k, .kw = k, .stride = {s, s}, .dil = {1, 1}, .pad = {pt, pl, pb, pr},
                   .c = 1, .ih = ih, .iw = iw};
    p.oh = (ih + pt + pb - k) / s + 1;
    p.ow = (iw + pl + pr - k) / s + 1;
    return p;
}

static void test_maxpool_ties_and_overlap(void)
{
    /* 2x3 input, kernel 2, stride 1: two overlapping windows. Ties go to the first in
     * scan order; overlapping windows add up at a shared winner. */
    float x[6] = {5, 5, 1,
                  0, 5, 2};
    glrp_pool p = pool_of(2, 3, 2, 1, 0, 0, 0, 0);
    float y[2], r[2] = {1, 10}, rin[6];
    maxpool_forward(&p, x, y, 1);
    CHECK(y[0] == 5 && y[1] == 5);
    maxpool_relevance_wta(&p, x, r, rin, 1);
    CHECK(rin[0] == 1);  /* first 5 in window 0 */
    CHECK(rin[1] == 10); /* first 5 in window 1 */
    CHECK(rin[4] == 0);  /* a tie, not first */
    double sum = 0;
    for (int k = 0; k < 6; k++)
        sum += rin[k];
    CHECK_NEAR(sum, 11, 0);
}

static void test_avgpool_divisors(void)
{
    /* 3x3 input of ones, kernel 2, stride 2, padding bottom/right 1: the last windows hang
     * over the padding. Divisor 4 with count_include_pad, else the real inputs. */
    float x[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, y[4];
    glrp_pool p = pool_of(3, 3, 2, 2, 0, 0, 1, 1);
    CHECK(p.oh == 2 && p.ow == 2);
    p.count_include_pad = 1;
    avgpool_forward(&p, x, y, 1);
    CHECK_NEAR(y[0], 1, 1e-7);
    CHECK_NEAR(y[1], 0.5, 1e-7);
    CHECK_NEAR(y[3], 0.25, 1e-7);
    p.count_include_pad = 0;
    avgpool_forward(&p, x, y, 1);
    CHECK_NEAR(y[1], 1, 1e-7);
    CHECK_NEAR(y[3], 1, 1e-7);
    /* Norm rule: each window's relevance splits in proportion to its inputs. */
    float v[9] = {1, 3, 2, 0, 4, 1, 1, 1, 1}, r[4] = {8, 1, 1, 1}, rin[9];
    avgpool_forward(&p, v, y, 1);
    avgpool_relevance(&p, v, y, r, rin, 1);
    CHECK_NEAR(rin[0], 8 * 1 / 8.0, 1e-5);
    CHECK_NEAR(rin[1], 8 * 3 / 8.0, 1e-5);
    CHECK_NEAR(rin[4], 8 * 4 / 8.0, 1e-5);
    CHECK_NEAR(rin[3], 0, 1e-7); /* a zero input gets nothing */
}

static void test_add_norm(void)
{
    float a[2] = {1, -3}, b[2] = {3, 1}, y[2], r[2] = {4, 6}, ra[2], rb[2];
    add_forward(a, b, y, 2);
    add_relevance(a, y, r, ra, 2);
    add_relevance(b, y, r, rb, 2);
    CHECK_NEAR(ra[0], 1, 1e-5);
    CHECK_NEAR(rb[0], 3, 1e-5);
    CHECK_NEAR(ra[1], -3 * 6 / -2.0, 1e-4);
    CHECK_NEAR(ra[1] + rb[1], 6, 1e-4);
}

static void test_activations(void)
{
    glrp_layer L;
    memset(&L, 0, sizeof L);
    float x[3] = {-2, 0, 3}, y[3];
    L.kind = OP_LEAKYRELU;
    L.alpha = 0.1f;
    activation_forward(&L, x, y, 3);
    CHECK_NEAR(y[0], -0.2, 1e-7);
    CHECK(y[1] == 0 && y[2] == 3);
    L.kind = OP_SIGMOID;
    activation_forward(&L, x, y, 3);
    CHECK_NEAR(y[1], 0.5, 1e-7);
    L.kind = OP_TANH;
    activation_forward(&L, x, y, 3);
    CHECK_NEAR(y[2], tanh(3.0), 1e-6);
}

int main(void)
{
    RUN(test_conv_matches_definition);
    RUN(test_transpose_is_adjoint);
    RUN(test_dense_bias);
    RUN(test_maxpool_ties_and_overlap);
    RUN(test_avgpool_divisors);
    RUN(test_add_norm);
    RUN(test_activations);
    return check_report();
}
