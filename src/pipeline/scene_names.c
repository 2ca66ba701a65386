#include "pipeline/scene_names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

static const char *base_of(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Where the extension starts in p's file name (its end when there is none). */
static const char *ext_of(const char *p)
{
    const char *b = base_of(p), *dot = strrchr(b, '.');
    return dot && dot != b ? dot : p + strlen(p);
}

/* p from after the folder prefix of length skip, extension dropped (or kept with its '.'
 * as '_'), '/' as "__". */
static char *rel_name(const char *p, size_t skip, int keep_ext)
{
    const char *end = keep_ext ? p + strlen(p) : ext_of(p), *ext = ext_of(p);
    char *out = malloc(2 * (size_t)(end - p) + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *c = p + skip; c < end; c++) {
        if (*c == '/')
            *o++ = '_', *o++ = '_';
        else
            *o++ = (c == ext && *c == '.') ? '_' : *c;
    }
    *o = '\0';
    return out;
}

static const input_list *sort_list;
static int by_name(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    int c = strcmp(sort_list->v[i].name, sort_list->v[j].name);
    return c ? c : (i < j ? -1 : i > j);
}

/* Renames every scene whose name is shared by another, with rel_name(step) or "~K".
 * Returns the number of scenes still sharing a name after it, or -1 without memory. */
static long rename_collisions(input_list *l, size_t *idx, int step)
{
    for (size_t k = 0; k < l->n; k++)
        idx[k] = k;
    sort_list = l;
    qsort(idx, l->n, sizeof *idx, by_name);
    long shared = 0;
    for (size_t a = 0; a < l->n;) {
        size_t b = a + 1;
        while (b < l->n && !strcmp(l->v[idx[a]].name, l->v[idx[b]].name))
            b++;
        if (b - a > 1) {
            shared += (long)(b - a);
            if (step >= 0) {
                /* The deepest folder the group shares (paths are absolute). */
                const char *first = l->v[idx[a]].path;
                size_t common = (size_t)(base_of(first) - first);
                for (size_t k = a + 1; k < b; k++) {
                    const char *p = l->v[idx[k]].path;
                    size_t m = 0;
                    while (m < common && p[m] == first[m])
                        m++;
                    while (m > 0 && first[m - 1] != '/')
                        m--;
                    common = m;
                }
                for (size_t k = a; k < b; k++) {
                    batch_input *in = &l->v[idx[k]];
                    char *n;
                    if (step < 2) {
                        n = rel_name(in->path, common, step == 1);
                    } else {
                        size_t len = strlen(in->name) + 24;
                        n = malloc(len);
                        if (n)
                            snprintf(n, len, "%s~%zu", in->name, idx[k] + 1);
                    }
                    if (!n)
                        return -1;
                    free(in->name);
                    in->name = n;
                }
            }
        }
        a = b;
    }
    return shared;
}

int scene_names_assign(input_list *l, glrp_error *err)
{
    for (size_t k = 0; k < l->n; k++) {
        const char *b = base_of(l->v[k].path);
        free(l->v[k].name);
        l->v[k].name = strndup(b, (size_t)(ext_of(l->v[k].path) - b));
        if (!l->v[k].name)
            return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    }
    size_t *idx = glrp_alloc(l->n ? l->n : 1, sizeof *idx);
    if (!idx)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    long left = 1;
    for (int step = 0; step < 3 && left > 0; step++)
        left = rename_collisions(l, idx, step);
    if (left > 0)
        left = rename_collisions(l, idx, -1); /* only counts */
    free(idx);
    if (left < 0)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    if (left > 0)
        return glrp_fail(err, GLRP_ERR_INPUT, "cannot give %ld scenes distinct output names; "
                         "rename them", left);
    return 0;
}
