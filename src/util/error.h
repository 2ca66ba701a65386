/* Error reporting helpers: every failure carries a message naming what is at fault. */
#ifndef GLRP_UTIL_ERROR_H
#define GLRP_UTIL_ERROR_H

#include "geolrp/geolrp.h"

#if defined(__GNUC__)
#define GLRP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define GLRP_PRINTF(a, b)
#endif

/* Sets err (when not NULL) and returns code, so callers can `return glrp_fail(...)`.
 * err->code and the returned code are set visibly at each call: static analysers
 * (clang-tidy) do not look into variadic functions, and without this they follow error
 * paths as if they returned 0. err and code are evaluated twice: pass plain values. */
int glrp_fail_msg(glrp_error *err, int code, const char *fmt, ...) GLRP_PRINTF(3, 4);
static inline int glrp_fail_code(glrp_error *err, int set, int code)
{
    (void)set;
    if (err)
        err->code = code;
    return code;
}
#define glrp_fail(err, code, ...) \
    glrp_fail_code((err), glrp_fail_msg((err), (code), __VA_ARGS__), (code))

/* Prefixes an existing message with more context ("file.onnx: " + msg). */
void glrp_error_prefix(glrp_error *err, const char *fmt, ...) GLRP_PRINTF(2, 3);

/* Allocation helpers: NULL on failure or on a size that overflows. */
void *glrp_alloc(size_t count, size_t size);  /* zeroed */
void *glrp_dup(const void *src, size_t bytes);
char *glrp_strdup(const char *s);
/* a, b and c joined into a new string (paths, names); NULL when out of memory. */
char *glrp_concat(const char *a, const char *b, const char *c);
/* count * size with an overflow check; 0 on overflow. */
int glrp_mul_ok(size_t a, size_t b, size_t *out);

#endif
