#include "io/npy.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/tmpfile.h"
#include "util/error.h"

#define MAGIC "\x93NUMPY"
#define MAX_HEADER (1 << 20)

/* ------------------------------------------------------------ header --- */

typedef struct {
    const char *p, *end;
} cursor;

static void skip_space(cursor *c)
{
    while (c->p < c->end && isspace((unsigned char)*c->p))
        c->p++;
}

static int accept(cursor *c, char ch)
{
    skip_space(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

static int parse_string(cursor *c, char *out, size_t size)
{
    skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return 0;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (n + 1 < size)
            out[n++] = *c->p;
        c->p++;
    }
    if (c->p >= c->end)
        return 0;
    c->p++;
    out[n] = '\0';
    return 1;
}

static int parse_word(cursor *c, const char *word)
{
    skip_space(c);
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) >= n && strncmp(c->p, word, n) == 0) {
        c->p += n;
        return 1;
    }
    return 0;
}

int npy_parse_header(const char *text, size_t len, int *rank, int64_t *shape, char *descr,
                     size_t descr_size, int *fortran, glrp_error *err)
{
    cursor c = {text, text + len};
    int have_descr = 0, have_order = 0, have_shape = 0;
    if (!accept(&c, '{'))
        return glrp_fail(err, GLRP_ERR_INPUT, "header is not a dictionary");
    while (!accept(&c, '}')) {
        char key[32];
        if (!parse_string(&c, key, sizeof key) || !accept(&c, ':'))
            return glrp_fail(err, GLRP_ERR_INPUT, "malformed header dictionary");
        if (!strcmp(key, "descr")) {
            if (!parse_string(&c, descr, descr_size))
                return glrp_fail(err, GLRP_ERR_INPUT, "'descr' is not a string (structured "
                                 "arrays are not supported)");
            have_descr = 1;
        } else if (!strcmp(key, "fortran_order")) {
            if (parse_word(&c, "True"))
                *fortran = 1;
            else if (parse_word(&c, "False"))
                *fortran = 0;
            else
                return glrp_fail(err, GLRP_ERR_INPUT, "'fortran_order' is not True or False");
            have_order = 1;
        } else if (!strcmp(key, "shape")) {
            if (!accept(&c, '('))
                return glrp_fail(err, GLRP_ERR_INPUT, "'shape' is not a tuple");
            *rank = 0;
            while (!accept(&c, ')')) {
                skip_space(&c);
                char *end;
                errno = 0;
                long long v = c.p < c.end && isdigit((unsigned char)*c.p)
                                  ? strtoll(c.p, &end, 10) : -1;
                if (v < 0 || errno || end > c.end)
                    return glrp_fail(err, GLRP_ERR_INPUT, "'shape' holds something other than "
                                     "non-negative integers");
                if (*rank == NPY_MAX_RANK)
                    return glrp_fail(err, GLRP_ERR_INPUT, "rank above %d", NPY_MAX_RANK);
                shape[(*rank)++] = v;
                c.p = end;
                if (!accept(&c, ',') && (skip_space(&c), c.p < c.end && *c.p != ')'))
                    return glrp_fail(err, GLRP_ERR_INPUT, "malformed 'shape' tuple");
            }
            have_shape = 1;
        } else {
            return glrp_fail(err, GLRP_ERR_INPUT, "unknown header key '%s'", key);
        }
        if (!accept(&c, ',')) {
            if (!accept(&c, '}'))
                return glrp_fail(err, GLRP_ERR_INPUT, "malformed header dictionary");
            break;
        }
    }
    if (!have_descr || !have_order || !have_shape)
        return glrp_fail(err, GLRP_ERR_INPUT, "header lacks %s",
                         !have_descr ? "'descr'" : !have_order ? "'fortran_order'" : "'shape'");
    return 0;
}

/* ------------------------------------------------------------ reading --- */

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int open_fail(npy_reader *r, glrp_error *err, const char *path)
{
    glrp_error_prefix(err, "%s: ", path);
    npy_close(r);
    return err->code;
}

int npy_open(const char *path, npy_reader *r, glrp_error *err)
{
    memset(r, 0, sizeof *r);
    r->f = fopen(path, "rb");
    if (!r->f)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: cannot open: %s", path, strerror(errno));
    r->path = glrp_strdup(path);
    unsigned char pre[12];
    size_t got = fread(pre, 1, 10, r->f);
    if (got < 10 || memcmp(pre, MAGIC, 6) != 0) {
        glrp_fail(err, GLRP_ERR_INPUT, "not a NumPy .npy file (bad magic)");
        return open_fail(r, err, path);
    }
    int major = pre[6], minor = pre[7];
    size_t hlen, prefix;
    if (major == 1 && minor == 0) {
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
        prefix = 10;
    } else if (major == 2 && minor == 0) {
        if (fread(pre + 10, 1, 2, r->f) != 2) {
            glrp_fail(err, GLRP_ERR_INPUT, "truncated header");
            return open_fail(r, err, path);
        }
        hlen = le32(pre + 8);
        prefix = 12;
    } else {
        glrp_fail(err, GLRP_ERR_INPUT, ".npy format version %d.%d is not supported (1.0 and "
                  "2.0 are)", major, minor);
        return open_fail(r, err, path);
    }
    if (hlen > MAX_HEADER) {
        glrp_fail(err, GLRP_ERR_INPUT, "header of %zu bytes is implausibly large", hlen);
        return open_fail(r, err, path);
    }
    char *text = malloc(hlen + 1);
    if (!text) {
        glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
        return open_fail(r, err, path);
    }
    if (fread(text, 1, hlen, r->f) != hlen) {
        free(text);
        glrp_fail(err, GLRP_ERR_INPUT, "truncated header");
        return open_fail(r, err, path);
    }
    text[hlen] = '\0';
    char descr[32];
    int fortran = 0;
    int rc = npy_parse_header(text, hlen, &r->rank, r->shape, descr, sizeof descr, &fortran,
                              err);
    free(text);
    if (rc)
        return open_fail(r, err, path);
    if (strcmp(descr, "<f4") != 0) {
        glrp_fail(err, GLRP_ERR_INPUT, "dtype '%s'; geolrp needs little-endian float32 ('<f4'): "
                  "convert with x.astype(numpy.float32)", descr);
        return open_fail(r, err, path);
    }
    if (fortran) {
        glrp_fail(err, GLRP_ERR_INPUT, "array is in Fortran order; geolrp needs C order: save "
                  "numpy.ascontiguousarray(x)");
        return open_fail(r, err, path);
    }
    r->count = 1;
    for (int k = 0; k < r->rank; k++)
        if (!glrp_mul_ok(r->count, (size_t)r->shape[k], &r->count) ||
            r->count > ((size_t)1 << 40)) {
            glrp_fail(err, GLRP_ERR_INPUT, "shape is absurdly large");
            return open_fail(r, err, path);
        }
    struct stat st;
    size_t data_at = prefix + hlen;
    if (fstat(fileno(r->f), &st) == 0 && S_ISREG(st.st_mode) &&
        (size_t)st.st_size < data_at + r->count * sizeof(float)) {
        glrp_fail(err, GLRP_ERR_INPUT, "truncated: holds %lld bytes of data, its shape needs "
                  "%zu", (long long)st.st_size - (long long)data_at, r->count * sizeof(float));
        return open_fail(r, err, path);
    }
    return 0;
}

int npy_read(npy_reader *r, float *dst, size_t count, glrp_error *err)
{
    if (count > r->count - r->read_count)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: read past the end of the array", r->path);
    if (fread(dst, sizeof *dst, count, r->f) != count)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: truncated or unreadable at element %zu",
                         r->path, r->read_count);
    r->read_count += count;
    return 0;
}

int npy_rewind(npy_reader *r, glrp_error *err)
{
    long back = (long)(r->read_count * sizeof(float));
    if (fseek(r->f, -back, SEEK_CUR) != 0)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: cannot seek: %s", r->path, strerror(errno));
    r->read_count = 0;
    return 0;
}

void npy_close(npy_reader *r)
{
    if (r->f)
        fclose(r->f);
    free(r->path);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------ writing --- */

size_t npy_format_header(int rank, const int64_t *shape, unsigned char *buf, size_t size)
{
    char dict[512];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int k = 0; k < rank; k++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld,%s", (long long)shape[k],
                      k + 1 < rank ? " " : "");
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    /* Pad so that the data starts on a 64-byte boundary, header ends with '\n'. */
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hlen = (size_t)n + pad + 1;
    if (10 + hlen > size)
        return 0;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 255),
                             (unsigned char)(hlen >> 8)};
    memcpy(buf, pre, 10);
    memcpy(buf + 10, dict, (size_t)n);
    memset(buf + 10 + n, ' ', pad);
    buf[10 + hlen - 1] = '\n';
    return 10 + hlen;
}

int npy_create(const char *path, int rank, const int64_t *shape, npy_writer *w,
               glrp_error *err)
{
    memset(w, 0, sizeof *w);
    unsigned char head[640];
    size_t hlen = npy_format_header(rank, shape, head, sizeof head);
    w->count = 1;
    for (int k = 0; k < rank; k++)
        w->count *= (size_t)shape[k];
    if (tmpfile_create(path, &w->tmp, &w->f, err))
        return err->code;
    w->path = glrp_strdup(path);
    if (!hlen || !w->path || fwrite(head, 1, hlen, w->f) != hlen) {
        glrp_fail(err, GLRP_ERR_RUNTIME, "%s: cannot write: %s", path, strerror(errno));
        npy_abort(w);
        return GLRP_ERR_RUNTIME;
    }
    return 0;
}

int npy_write(npy_writer *w, const float *src, size_t count, glrp_error *err)
{
    if (fwrite(src, sizeof *src, count, w->f) != count)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: cannot write: %s", w->path,
                         strerror(errno));
    w->written += count;
    return 0;
}

int npy_commit(npy_writer *w, outset *set, glrp_error *err)
{
    if (w->written != w->count) {
        glrp_fail(err, GLRP_ERR_RUNTIME, "%s: %zu of %zu elements written", w->path, w->written,
                  w->count);
        npy_abort(w);
        return GLRP_ERR_RUNTIME;
    }
    FILE *f = w->f;
    w->f = NULL;
    int rc = tmpfile_commit(f, w->tmp, w->path, set, err);
    free(w->tmp);
    free(w->path);
    w->tmp = w->path = NULL;
    return rc;
}

void npy_abort(npy_writer *w)
{
    if (w->tmp)
        tmpfile_discard(w->f, w->tmp);
    else if (w->f)
        fclose(w->f);
    free(w->tmp);
    free(w->path);
    memset(w, 0, sizeof *w);
}
