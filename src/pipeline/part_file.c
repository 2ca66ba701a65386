#include "pipeline/part_file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "io/npy.h"
#include "io/tmpfile.h"
#include "util/error.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "part files hold little-endian float32; this platform is big-endian"
#endif

#define MAGIC "GEOLRP-PART\n"
#define MAGIC_LEN 16
#define TRAILER_LEN 32
#define MAX_JSON ((uint64_t)1 << 30)
#define NPY_HEAD_MAX 640

static void magic_bytes(unsigned char m[MAGIC_LEN])
{
    memcpy(m, MAGIC, 12); /* NOLINT(bugprone-not-null-terminated-result): bytes, not a string */
    uint32_t v = PART_FORMAT_VERSION;
    for (int k = 0; k < 4; k++)
        m[12 + k] = (unsigned char)(v >> (8 * k));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        p[k] = (unsigned char)(v >> (8 * k));
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--)
        v = v << 8 | p[k];
    return v;
}

/* ----------------------------------------------------------- writing --- */

static int put(part_writer *w, const void *p, size_t n, glrp_error *err)
{
    if (n && fwrite(p, 1, n, w->f) != n)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: cannot write: %s", w->path,
                         strerror(errno));
    sha256_update(w->sha, p, n);
    w->at += n;
    return 0;
}

static int put_npy_header(part_writer *w, int rank, const int64_t *shape, glrp_error *err)
{
    unsigned char head[NPY_HEAD_MAX];
    size_t n = npy_format_header(rank, shape, head, sizeof head);
    if (!n)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: array header too long", w->path);
    return put(w, head, n, err);
}

int part_writer_create(part_writer *w, const char *path, int bands, int width, long long rows,
                       glrp_error *err)
{
    memset(w, 0, sizeof *w);
    w->bands = bands, w->width = width, w->rows = rows;
    w->path = glrp_strdup(path);
    w->sha = sha256_begin();
    w->seam_tiles = json_array();
    w->row = glrp_alloc((size_t)(bands + 2) * (size_t)width, sizeof *w->row);
    if (!w->path || !w->sha || !w->seam_tiles || !w->row) {
        part_writer_abort(w);
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    }
    int rc = tmpfile_create(path, &w->tmp, &w->f, err);
    unsigned char m[MAGIC_LEN];
    magic_bytes(m);
    if (!rc)
        rc = put(w, m, sizeof m, err);
    if (rc)
        part_writer_abort(w);
    return rc;
}

int part_writer_seam(part_writer *w, const float *values, int th, int tw, int h, int x0,
                     int y0, int cols, glrp_error *err)
{
    if (w->seam_written)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: a tile over earlier parts came after "
                         "the first row (internal error)", w->path);
    size_t need = (size_t)w->bands * (size_t)h * (size_t)tw;
    if (w->seam_n + need > w->seam_cap) {
        size_t cap = w->seam_cap ? w->seam_cap : 1 << 16;
        while (cap < w->seam_n + need)
            cap *= 2;
        float *p = realloc(w->seam, cap * sizeof *p);
        if (!p)
            return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory for the tiles over earlier "
                             "parts");
        w->seam = p, w->seam_cap = cap;
    }
    for (int b = 0; b < w->bands; b++)
        memcpy(w->seam + w->seam_n + (size_t)b * h * tw, values + (size_t)b * th * tw,
               (size_t)h * tw * sizeof *values);
    w->seam_n += need;
    json_t *t = json_pack("[i, i, i, i]", x0, y0, cols, h);
    if (!t || json_array_append_new(w->seam_tiles, t))
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    return 0;
}

static int write_seam(part_writer *w, glrp_error *err)
{
    int64_t shape[1] = {(int64_t)w->seam_n};
    w->seam_offset = w->at;
    int rc = put_npy_header(w, 1, shape, err);
    if (!rc)
        rc = put(w, w->seam, w->seam_n * sizeof *w->seam, err);
    free(w->seam);
    w->seam = NULL;
    w->seam_written = 1;
    if (rc)
        return rc;
    int64_t rshape[3] = {w->rows, w->bands + 2, w->width};
    w->rows_offset = w->at;
    return put_npy_header(w, 3, rshape, err);
}

int part_writer_row(part_writer *w, const float *sums, const float *weight,
                    const uint8_t *valid, glrp_error *err)
{
    int rc;
    if (!w->seam_written && (rc = write_seam(w, err)))
        return rc;
    if (w->rows_written >= w->rows)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: more rows than the %lld announced "
                         "(internal error)", w->path, w->rows);
    const size_t W = (size_t)w->width, B = (size_t)w->bands;
    memcpy(w->row, sums, B * W * sizeof *sums);
    memcpy(w->row + B * W, weight, W * sizeof *weight);
    for (size_t x = 0; x < W; x++)
        w->row[(B + 1) * W + x] = valid[x] ? 1.0f : 0.0f;
    w->rows_written++;
    return put(w, w->row, (B + 2) * W * sizeof *w->row, err);
}

int part_writer_commit(part_writer *w, json_t *doc, glrp_error *err)
{
    int rc = 0;
    if (!w->seam_written)
        rc = write_seam(w, err);
    if (!rc && w->rows_written != w->rows)
        rc = glrp_fail(err, GLRP_ERR_RUNTIME, "%s: %lld of %lld rows written (internal error)",
                       w->path, w->rows_written, w->rows);
    char hex[65];
    uint64_t json_at = w->at;
    if (!rc) {
        sha256_end(w->sha, hex);
        w->sha = NULL;
        json_t *data = json_pack("{s:{s:I, s:I, s:O}, s:{s:I, s:[I, i, i]}, s:s}", "seam",
                                 "offset", (json_int_t)w->seam_offset, "count",
                                 (json_int_t)w->seam_n, "tiles", w->seam_tiles, "rows",
                                 "offset", (json_int_t)w->rows_offset, "shape",
                                 (json_int_t)w->rows, w->bands + 2, w->width, "sha256", hex);
        char *text = data && !json_object_set_new(doc, "data", data)
                         ? json_dumps(doc, JSON_INDENT(1) | JSON_REAL_PRECISION(17))
                         : NULL;
        if (!text) {
            rc = glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
        } else {
            size_t len = strlen(text);
            unsigned char tr[TRAILER_LEN];
            memcpy(tr, "GLRPJSON", 8); /* NOLINT(bugprone-not-null-terminated-result): bytes */
            put_u64(tr + 8, json_at);
            put_u64(tr + 16, (uint64_t)len);
            memcpy(tr + 24, "GLRPEND\n", 8); /* NOLINT(bugprone-not-null-terminated-result) */
            if (fwrite(text, 1, len, w->f) != len || fwrite(tr, 1, sizeof tr, w->f) != sizeof tr)
                rc = glrp_fail(err, GLRP_ERR_RUNTIME, "%s: cannot write: %s", w->path,
                               strerror(errno));
            free(text);
        }
    }
    if (!rc) {
        FILE *f = w->f;
        w->f = NULL;
        rc = tmpfile_commit(f, w->tmp, w->path, NULL, err);
        free(w->tmp);
        w->tmp = NULL;
    }
    part_writer_abort(w);
    return rc;
}

void part_writer_abort(part_writer *w)
{
    if (w->tmp)
        tmpfile_discard(w->f, w->tmp);
    else if (w->f)
        fclose(w->f);
    sha256_discard(w->sha);
    json_decref(w->seam_tiles);
    free(w->tmp), free(w->path), free(w->seam), free(w->row);
    memset(w, 0, sizeof *w);
}

/* ----------------------------------------------------------- reading --- */

static int bad(part_reader *r, glrp_error *err, const char *what)
{
    return glrp_fail(err, GLRP_ERR_INPUT, "%s: not a complete geolrp part file (%s)", r->path,
                     what);
}

static int get(part_reader *r, void *p, size_t n, glrp_error *err)
{
    if (n && fread(p, 1, n, r->f) != n)
        return ferror(r->f) ? glrp_fail(err, GLRP_ERR_RUNTIME, "%s: read error: %s", r->path,
                                        strerror(errno))
                            : bad(r, err, "truncated");
    if (r->sha)
        sha256_update(r->sha, p, n);
    r->at += n;
    return 0;
}

/* A float32 C-order .npy header at the current position; its shape. */
static int get_npy_header(part_reader *r, int *rank, int64_t *shape, glrp_error *err)
{
    unsigned char pre[10];
    int rc = get(r, pre, sizeof pre, err);
    if (rc)
        return rc;
    if (memcmp(pre, "\x93NUMPY\x01\x00", 8) != 0)
        return bad(r, err, "array header");
    size_t hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
    char text[1 << 16];
    if ((rc = get(r, text, hlen, err)))
        return rc;
    char descr[32];
    int fortran = 0;
    glrp_error e2 = {0};
    if (npy_parse_header(text, hlen, rank, shape, descr, sizeof descr, &fortran, &e2) ||
        strcmp(descr, "<f4") || fortran)
        return bad(r, err, "array header");
    return 0;
}

static const json_t *member(const json_t *o, const char *a, const char *b)
{
    const json_t *v = json_object_get(o, a);
    return b ? json_object_get(v, b) : v;
}

int part_reader_open(part_reader *r, const char *path, glrp_error *err)
{
    memset(r, 0, sizeof *r);
    r->path = glrp_strdup(path);
    if (!r->path)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    r->f = fopen(path, "rb");
    if (!r->f)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(r->f), &sb) != 0 || !S_ISREG(sb.st_mode))
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: not a regular file", path);
    uint64_t size = (uint64_t)sb.st_size;
    unsigned char m[MAGIC_LEN], want[MAGIC_LEN], tr[TRAILER_LEN];
    magic_bytes(want);
    int rc = get(r, m, sizeof m, err);
    if (rc)
        return rc;
    if (memcmp(m, want, 12) != 0)
        return bad(r, err, "no GEOLRP-PART magic");
    if (memcmp(m, want, sizeof m) != 0)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: part file format version %u; this geolrp "
                         "reads version %d", path, (unsigned)m[12] | (unsigned)m[13] << 8,
                         PART_FORMAT_VERSION);
    if (size < MAGIC_LEN + TRAILER_LEN || fseeko(r->f, -(off_t)TRAILER_LEN, SEEK_END) != 0 ||
        (rc = get(r, tr, sizeof tr, err)))
        return rc ? rc : bad(r, err, "truncated");
    if (memcmp(tr, "GLRPJSON", 8) || memcmp(tr + 24, "GLRPEND\n", 8))
        return bad(r, err, "no trailer: truncated or still being written");
    r->json_offset = get_u64(tr + 8);
    uint64_t len = get_u64(tr + 16);
    if (len > MAX_JSON || r->json_offset < MAGIC_LEN ||
        r->json_offset + len + TRAILER_LEN != size)
        return bad(r, err, "trailer does not match the file size");
    char *text = malloc((size_t)len + 1);
    if (!text)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    if (fseeko(r->f, (off_t)r->json_offset, SEEK_SET) != 0 || (rc = get(r, text, len, err))) {
        free(text);
        return rc ? rc : bad(r, err, "truncated");
    }
    json_error_t je;
    r->doc = json_loadb(text, (size_t)len, 0, &je);
    free(text);
    if (!r->doc)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: part document: %s (line %d)", path, je.text,
                         je.line);
    const json_t *fmt = json_object_get(r->doc, "format");
    if (!json_is_string(fmt) || strcmp(json_string_value(fmt), PART_FORMAT))
        return bad(r, err, "format is not geolrp-part");
    const json_t *so = member(r->doc, "data", "seam"), *ro = member(r->doc, "data", "rows");
    const json_t *shape = json_object_get(ro, "shape");
    if (!json_is_integer(json_object_get(so, "offset")) ||
        !json_is_integer(json_object_get(so, "count")) ||
        !json_is_array(json_object_get(so, "tiles")) ||
        !json_is_integer(json_object_get(ro, "offset")) || json_array_size(shape) != 3 ||
        !json_is_string(member(r->doc, "data", "sha256")))
        return bad(r, err, "data description");
    r->seam_offset = (uint64_t)json_integer_value(json_object_get(so, "offset"));
    r->seam_count = (uint64_t)json_integer_value(json_object_get(so, "count"));
    r->rows_offset = (uint64_t)json_integer_value(json_object_get(ro, "offset"));
    /* Both array headers, and where the arrays end. */
    int rank;
    int64_t sh[NPY_MAX_RANK];
    if (fseeko(r->f, MAGIC_LEN, SEEK_SET) != 0)
        return bad(r, err, "truncated");
    r->at = MAGIC_LEN;
    if (r->seam_offset != MAGIC_LEN || (rc = get_npy_header(r, &rank, sh, err)))
        return rc ? rc : bad(r, err, "seam offset");
    if (rank != 1 || (uint64_t)sh[0] != r->seam_count)
        return bad(r, err, "seam array shape");
    uint64_t seam_end = r->at + r->seam_count * sizeof(float);
    if (seam_end != r->rows_offset || r->rows_offset >= r->json_offset ||
        fseeko(r->f, (off_t)r->rows_offset, SEEK_SET) != 0)
        return bad(r, err, "rows offset");
    r->at = r->rows_offset;
    if ((rc = get_npy_header(r, &rank, sh, err)))
        return rc;
    for (int k = 0; k < 3; k++)
        if (rank != 3 || sh[k] != json_integer_value(json_array_get(shape, (size_t)k)))
            return bad(r, err, "rows array shape");
    if (sh[1] < 3 || sh[2] < 1 || sh[1] > 4096 || sh[2] > (1 << 24) ||
        r->at + (uint64_t)sh[0] * (uint64_t)sh[1] * (uint64_t)sh[2] * sizeof(float) !=
            r->json_offset)
        return bad(r, err, "rows array size");
    r->rows = sh[0];
    r->row_floats = (int)(sh[1] * sh[2]);
    fclose(r->f);
    r->f = NULL;
    return 0;
}

int part_reader_begin(part_reader *r, glrp_error *err)
{
    r->f = fopen(r->path, "rb");
    if (!r->f)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: cannot open: %s", r->path, strerror(errno));
    r->sha = sha256_begin();
    if (!r->sha)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    r->at = 0;
    unsigned char m[MAGIC_LEN];
    int rank;
    int64_t sh[NPY_MAX_RANK];
    int rc = get(r, m, sizeof m, err);
    return rc ? rc : get_npy_header(r, &rank, sh, err);
}

int part_reader_seam(part_reader *r, float *dst, size_t count, glrp_error *err)
{
    return get(r, dst, count * sizeof *dst, err);
}

int part_reader_rows_begin(part_reader *r, glrp_error *err)
{
    int rank;
    int64_t sh[NPY_MAX_RANK];
    if (r->at != r->rows_offset)
        return bad(r, err, "seam size");
    return get_npy_header(r, &rank, sh, err);
}

int part_reader_row(part_reader *r, float *dst, glrp_error *err)
{
    return get(r, dst, (size_t)r->row_floats * sizeof *dst, err);
}

int part_reader_verify(part_reader *r, glrp_error *err)
{
    if (r->at != r->json_offset)
        return bad(r, err, "data not read to its end");
    char hex[65];
    sha256_end(r->sha, hex);
    r->sha = NULL;
    if (strcmp(hex, json_string_value(member(r->doc, "data", "sha256"))))
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: the data do not match their SHA-256: the "
                         "part file is corrupt", r->path);
    fclose(r->f);
    r->f = NULL;
    return 0;
}

void part_reader_close(part_reader *r)
{
    if (r->f)
        fclose(r->f);
    sha256_discard(r->sha);
    json_decref(r->doc);
    free(r->path);
    memset(r, 0, sizeof *r);
}
