#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int glrp_fail_msg(glrp_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

void glrp_error_prefix(glrp_error *err, const char *fmt, ...)
{
    if (!err)
        return;
    char prefix[512], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t p = strlen(prefix), o = strlen(old);
    if (p >= sizeof err->msg)
        p = sizeof err->msg - 1;
    if (p + o >= sizeof err->msg)
        o = sizeof err->msg - 1 - p;
    memcpy(err->msg, prefix, p);
    memcpy(err->msg + p, old, o);
    err->msg[p + o] = '\0';
}

int glrp_mul_ok(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return 0;
    *out = a * b;
    return 1;
}

void *glrp_alloc(size_t count, size_t size)
{
    size_t bytes;
    if (!glrp_mul_ok(count, size, &bytes))
        return NULL;
    return calloc(bytes ? bytes : 1, 1);
}

void *glrp_dup(const void *src, size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (p && bytes)
        memcpy(p, src, bytes);
    return p;
}

char *glrp_strdup(const char *s)
{
    return s ? glrp_dup(s, strlen(s) + 1) : NULL;
}

char *glrp_concat(const char *a, const char *b, const char *c)
{
    size_t len = strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = malloc(len);
    if (s)
        snprintf(s, len, "%s%s%s", a, b, c);
    return s;
}
