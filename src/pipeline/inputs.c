/* realpath(3) is XSI, beyond the POSIX level the build asks for. */
#include "pipeline/inputs.h"

#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "util/error.h"

/* How deep folders are searched: far beyond real archives, short of a runaway. */
#define MAX_DEPTH 64

void inputs_free(input_list *l)
{
    for (size_t k = 0; k < l->n; k++)
        free(l->v[k].path), free(l->v[k].name);
    free(l->v);
    memset(l, 0, sizeof *l);
}

int inputs_ext_matches(const char *name, const input_rules *r)
{
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name)
        return 0;
    for (int k = 0; k < r->n_exts; k++)
        if (!strcasecmp(dot + 1, r->exts[k]))
            return 1;
    return 0;
}

/* A list of paths: "@FILE", or a file ending in .txt or .lst. */
static int is_list_name(const char *p)
{
    const char *dot = strrchr(p, '.'), *slash = strrchr(p, '/');
    return dot && (!slash || dot > slash + 1) && (!strcasecmp(dot, ".txt") ||
                                                  !strcasecmp(dot, ".lst"));
}

static int has_glob_chars(const char *p)
{
    return strpbrk(p, "*?[") != NULL;
}

/* Absolute path of a file: its folder through realpath (so "./a.tif", "a.tif" and
 * "/x/a.tif" agree and ".." means what the file system says), its name kept as given (a
 * symbolic link keeps its own name, which becomes the output name). */
static char *absolute(const char *p, glrp_error *err)
{
    const char *slash = strrchr(p, '/');
    char dir[PATH_MAX], *real;
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == p)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - p), p);
    real = realpath(dir, NULL);
    if (!real) {
        glrp_fail(err, GLRP_ERR_INPUT, "%s: %s", p, strerror(errno));
        return NULL;
    }
    const char *base = slash ? slash + 1 : p;
    char *out = glrp_concat(real, strcmp(real, "/") ? "/" : "", base);
    if (!out)
        glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    free(real);
    return out;
}

static int add(input_list *l, char *abs_path, const struct stat *st, glrp_error *err)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        batch_input *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            free(abs_path);
            return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
        }
        l->v = v, l->cap = cap;
    }
    l->v[l->n++] = (batch_input){.path = abs_path, .dev = st->st_dev, .ino = st->st_ino};
    return 0;
}

static int add_file(input_list *l, const char *p, const struct stat *st, glrp_error *err)
{
    char *abs_path = absolute(p, err);
    return abs_path ? add(l, abs_path, st, err) : err->code;
}

/* Files with a wanted extension below folder dir (an absolute path). Hidden entries
 * (".name": our own temporaries among them) are left out; symbolic links to files count,
 * links to folders are not followed (no cycles). */
/* Recursion is bounded: MAX_DEPTH folders deep. */
static int walk(input_list *l, /* NOLINT(misc-no-recursion) */ const char *dir, const input_rules *r, const struct stat *excl,
                int depth, glrp_error *err)
{
    if (depth > MAX_DEPTH)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: folders nested deeper than %d", dir,
                         MAX_DEPTH);
    DIR *d = opendir(dir);
    if (!d)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: cannot read the folder: %s", dir,
                         strerror(errno));
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *p = glrp_concat(dir, strcmp(dir, "/") ? "/" : "", e->d_name);
        if (!p) {
            rc = glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
            break;
        }
        struct stat st;
        if (lstat(p, &st) != 0) {
            rc = glrp_fail(err, GLRP_ERR_INPUT, "%s: %s", p, strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            if (!excl || st.st_dev != excl->st_dev || st.st_ino != excl->st_ino)
                rc = walk(l, p, r, excl, depth + 1, err);
        } else if (inputs_ext_matches(e->d_name, r) &&
                   (!S_ISLNK(st.st_mode) || (stat(p, &st) == 0 && !S_ISDIR(st.st_mode)))) {
            rc = add(l, p, &st, err);
            p = NULL; /* owned by the list now */
        }
        free(p);
    }
    closedir(d);
    return rc;
}

static int add_dir(input_list *l, const char *p, const input_rules *r, glrp_error *err)
{
    char *real = realpath(p, NULL);
    if (!real)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: %s", p, strerror(errno));
    struct stat excl, st;
    int have_excl = r->exclude_dir && stat(r->exclude_dir, &excl) == 0;
    int rc = 0;
    /* The output folder holds .tif files of our own: never scenes. */
    if (!have_excl || stat(real, &st) != 0 || st.st_dev != excl.st_dev ||
        st.st_ino != excl.st_ino)
        rc = walk(l, real, r, have_excl ? &excl : NULL, 0, err);
    free(real);
    return rc;
}

/* A pattern: its matches, folders searched, files kept when their extension is wanted
 * (as in a folder: a pattern for everything in a folder must not pick up a README). */
static int add_glob(input_list *l, const char *pat, const input_rules *r, glrp_error *err)
{
    glob_t g;
    int grc = glob(pat, 0, NULL, &g);
    if (grc == GLOB_NOMATCH)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: the pattern matches no file", pat);
    if (grc != 0) {
        globfree(&g);
        return glrp_fail(err, grc == GLOB_NOSPACE ? GLRP_ERR_RUNTIME : GLRP_ERR_INPUT,
                         "%s: cannot expand the pattern", pat);
    }
    int rc = 0;
    for (size_t k = 0; k < g.gl_pathc && !rc; k++) {
        const char *m = g.gl_pathv[k];
        struct stat st;
        if (stat(m, &st) != 0)
            continue; /* a dangling link */
        if (S_ISDIR(st.st_mode))
            rc = add_dir(l, m, r, err);
        else if (inputs_ext_matches(m, r))
            rc = add_file(l, m, &st, err);
    }
    globfree(&g);
    return rc;
}

static int expand_one(input_list *l, const char *a, const input_rules *r, int in_list,
                      glrp_error *err);

/* One path per line; blank lines and lines starting with '#' are skipped, surrounding
 * white space is trimmed; relative paths are relative to the current folder (as for
 * tar -T and gdalbuildvrt -input_file_list). Lines are expanded like arguments. */
/* add_list -> expand_one -> add_list stops at one level: lists cannot name lists. */
static int add_list(input_list *l, /* NOLINT(misc-no-recursion) */ const char *p, const input_rules *r, glrp_error *err)
{
    FILE *f = fopen(p, "r");
    if (!f)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: cannot read the list: %s", p,
                         strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    long no = 0;
    int rc = 0;
    while (!rc && getline(&line, &cap, f) != -1) {
        no++;
        char *s = line, *e = line + strlen(line);
        while (*s == ' ' || *s == '\t')
            s++;
        while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
            *--e = '\0';
        if (!*s || *s == '#')
            continue;
        if ((rc = expand_one(l, s, r, 1, err)))
            glrp_error_prefix(err, "%s:%ld: ", p, no);
    }
    if (!rc && ferror(f))
        rc = glrp_fail(err, GLRP_ERR_INPUT, "%s: read error", p);
    free(line);
    fclose(f);
    return rc;
}

static int expand_one(input_list *l, const char *a, const input_rules *r, int in_list, /* NOLINT(misc-no-recursion) */
                      glrp_error *err)
{
    struct stat st;
    if (a[0] == '@' || (is_list_name(a) && stat(a, &st) == 0 && !S_ISDIR(st.st_mode))) {
        if (in_list)
            return glrp_fail(err, GLRP_ERR_INPUT, "%s: a list cannot name another list", a);
        return add_list(l, a[0] == '@' ? a + 1 : a, r, err);
    }
    if (stat(a, &st) == 0)
        return S_ISDIR(st.st_mode) ? add_dir(l, a, r, err) : add_file(l, a, &st, err);
    if (has_glob_chars(a))
        return add_glob(l, a, r, err);
    return glrp_fail(err, GLRP_ERR_INPUT, "%s: %s", a, strerror(errno));
}

static int by_path(const void *a, const void *b)
{
    return strcmp(((const batch_input *)a)->path, ((const batch_input *)b)->path);
}

/* Sorted by file identity, then position: the first of each run is the one kept. */
static const batch_input *sort_base;
static int by_identity(const void *a, const void *b)
{
    const batch_input *x = &sort_base[*(const size_t *)a], *y = &sort_base[*(const size_t *)b];
    if (x->dev != y->dev)
        return x->dev < y->dev ? -1 : 1;
    if (x->ino != y->ino)
        return x->ino < y->ino ? -1 : 1;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    return i < j ? -1 : i > j;
}

/* Sorts by path and keeps the first path of every file (the same file reached twice, by
 * two arguments or through a link, is one scene). */
static int dedupe(input_list *l, glrp_error *err)
{
    if (l->n == 0)
        return 0;
    qsort(l->v, l->n, sizeof *l->v, by_path);
    size_t *idx = glrp_alloc(l->n, sizeof *idx);
    unsigned char *drop = glrp_alloc(l->n, 1);
    if (!idx || !drop) {
        free(idx), free(drop);
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    }
    for (size_t k = 0; k < l->n; k++)
        idx[k] = k;
    sort_base = l->v;
    qsort(idx, l->n, sizeof *idx, by_identity);
    for (size_t k = 1; k < l->n; k++) {
        const batch_input *a = &l->v[idx[k - 1]], *b = &l->v[idx[k]];
        if (a->dev == b->dev && a->ino == b->ino)
            drop[idx[k]] = 1;
    }
    size_t n = 0;
    for (size_t k = 0; k < l->n; k++) {
        if (drop[k])
            free(l->v[k].path);
        else
            l->v[n++] = l->v[k];
    }
    l->n = n;
    free(idx), free(drop);
    return 0;
}

int inputs_expand(char *const *args, int n, const input_rules *r, input_list *l,
                  glrp_error *err)
{
    memset(l, 0, sizeof *l);
    int rc = 0;
    for (int k = 0; k < n && !rc; k++)
        rc = expand_one(l, args[k], r, 0, err);
    if (!rc)
        rc = dedupe(l, err);
    if (rc)
        inputs_free(l);
    return rc;
}
