/* Each metric on hand-made relevance maps with known values. */
#include "analysis/metrics.h"
#include "check.h"

static void test_mass_accuracy(void)
{
    /* 4 pixels, mask on the first two; positive relevance 3 inside, 1 outside; the
     * negative value is clamped away. */
    float r[4] = {2, 1, 1, -5}, m[4] = {1, 1, 0, 0};
    CHECK_NEAR(metric_mass_accuracy(r, m, 4), 0.75, 1e-12);
    float neg[2] = {-1, -2}, m2[2] = {1, 0};
    CHECK(isnan(metric_mass_accuracy(neg, m2, 2)));
}

static void test_rank_accuracy(void)
{
    /* K = 2; the two highest are pixels 0 and 3; one is in the mask. */
    float r[4] = {5, 1, 0, 4}, m[4] = {1, 1, 0, 0};
    CHECK_NEAR(metric_rank_accuracy(r, m, 4), 0.5, 1e-12);
    float r2[4] = {5, 4, 0, 1};
    CHECK_NEAR(metric_rank_accuracy(r2, m, 4), 1.0, 1e-12);
    float empty[4] = {0, 0, 0, 0};
    CHECK(isnan(metric_rank_accuracy(r, empty, 4)));
}

static void test_border_ratio(void)
{
    /* 4x4, k = 1: the border is 12 of 16 pixels. All relevance on the centre: 0. All on
     * the border: (1) / (12/16). Uniform: 1. */
    float r[16] = {0};
    r[5] = r[6] = r[9] = r[10] = 1;
    CHECK_NEAR(metric_border_ratio(r, 4, 4, 1), 0.0, 1e-12);
    float b[16];
    for (int k = 0; k < 16; k++)
        b[k] = 1 - r[k];
    CHECK_NEAR(metric_border_ratio(b, 4, 4, 1), 16.0 / 12.0, 1e-12);
    float u[16];
    for (int k = 0; k < 16; k++)
        u[k] = -2;
    CHECK_NEAR(metric_border_ratio(u, 4, 4, 1), 1.0, 1e-12);
}

static void test_zero_input_share(void)
{
    /* Half the inputs are 0 and get a quarter of |R|: (0.25) / (0.5) = 0.5. */
    float x[4] = {0, 0, 1, 2}, R[4] = {0.5f, -0.5f, 1, 2};
    CHECK_NEAR(metric_zero_input_share(R, x, 4), 0.5, 1e-7);
    float R0[4] = {0, 0, 1, 2};
    CHECK_NEAR(metric_zero_input_share(R0, x, 4), 0.0, 1e-12);
    float nz[2] = {1, 2}, Rn[2] = {1, 1};
    CHECK(isnan(metric_zero_input_share(Rn, nz, 2)));
}

static void test_order_and_aopc(void)
{
    float r[5] = {1, 3, 3, -1, 2};
    int o[5];
    metric_order_desc(r, 5, o);
    CHECK(o[0] == 1 && o[1] == 2 && o[2] == 4 && o[3] == 0 && o[4] == 3);
    double f[4] = {2.0, 1.0, 0.5, 0.5};
    CHECK_NEAR(metric_aopc(f, 3), (0 + 1 + 1.5 + 1.5) / 4.0, 1e-12);
}

static void test_spearman_and_stats(void)
{
    float a[5] = {1, 2, 3, 4, 5}, b[5] = {10, 20, 30, 40, 50}, c[5] = {5, 4, 3, 2, 1};
    CHECK_NEAR(metric_spearman(a, b, 5), 1.0, 1e-12);
    CHECK_NEAR(metric_spearman(a, c, 5), -1.0, 1e-12);
    float t[4] = {1, 1, 2, 3}, u[4] = {1, 2, 3, 4};
    /* ranks (desc) of t: 3.5, 3.5, 2, 1; of u: 4, 3, 2, 1 -> rho = 0.9487 */
    CHECK_NEAR(metric_spearman(t, u, 4), 0.9486832981, 1e-9);
    stat_acc s = {0};
    stat_add(&s, 1), stat_add(&s, 3), stat_add(&s, NAN);
    CHECK_NEAR(stat_mean(&s), 2.0, 1e-12);
    CHECK_NEAR(stat_std(&s), sqrt(2.0), 1e-12);
    CHECK(s.undefined == 1);
}

int main(void)
{
    RUN(test_mass_accuracy);
    RUN(test_rank_accuracy);
    RUN(test_border_ratio);
    RUN(test_zero_input_share);
    RUN(test_order_and_aopc);
    RUN(test_spearman_and_stats);
    return check_report();
}
