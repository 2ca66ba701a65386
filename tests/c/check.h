/* A minimal test harness: CHECK records a failure and goes on; main returns non-zero when
 * anything failed, and prints "N passed, N failed". */
#ifndef GLRP_TESTS_CHECK_H
#define GLRP_TESTS_CHECK_H

#include <math.h>
#include <stdio.h>

extern int check_passed, check_failed;

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (cond) {                                                                          \
            check_passed++;                                                                  \
        } else {                                                                             \
            check_failed++;                                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);         \
        }                                                                                    \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                \
    do {                                                                                     \
        double a_ = (a), b_ = (b);                                                           \
        if (fabs(a_ - b_) <= (tol)) {                                                        \
            check_passed++;                                                                  \
        } else {                                                                             \
            check_failed++;                                                                  \
            fprintf(stderr, "%s:%d: %s = %.9g, expected %s = %.9g\n", __FILE__, __LINE__, #a,  \
                    a_, #b, b_);                                                             \
        }                                                                                    \
    } while (0)

/* Runs a test function and reports its name. */
#define RUN(fn)                                                                              \
    do {                                                                                     \
        int before_ = check_failed;                                                          \
        fn();                                                                                \
        fprintf(stderr, "%s %s\n", check_failed == before_ ? "ok  " : "FAIL", #fn);          \
    } while (0)

int check_report(void);
/* Deterministic pseudo-random floats in [-1, 1). */
float check_rand(unsigned *state);

#endif
