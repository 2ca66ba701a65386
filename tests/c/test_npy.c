/* .npy reader and writer: round trips, both header versions, and every refusal. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "io/npy.h"

static char dir[] = "/tmp/geolrp-npy-XXXXXX";

static const char *path_in_dir(const char *name)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

static void write_raw(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, len, f);
    fclose(f);
}

/* A v1 file with the given header dict and n floats of data. */
static void write_npy(const char *path, int major, const char *dict, size_t n)
{
    FILE *f = fopen(path, "wb");
    size_t hlen = strlen(dict);
    fwrite("\x93NUMPY", 1, 6, f);
    fputc(major, f);
    fputc(0, f);
    if (major == 1) {
        fputc((int)(hlen & 255), f);
        fputc((int)(hlen >> 8), f);
    } else {
        unsigned char l[4] = {(unsigned char)hlen, (unsigned char)(hlen >> 8), 0, 0};
        fwrite(l, 1, 4, f);
    }
    fwrite(dict, 1, hlen, f);
    for (size_t k = 0; k < n; k++) {
        float v = (float)k;
        fwrite(&v, 4, 1, f);
    }
    fclose(f);
}

static void test_round_trip(void)
{
    const char *p = path_in_dir("rt.npy");
    int64_t shape[3] = {2, 3, 4};
    float data[24];
    for (int k = 0; k < 24; k++)
        data[k] = (float)k * 0.5f - 3.0f;
    npy_writer w;
    glrp_error err = {0};
    CHECK(npy_create(p, 3, shape, &w, &err) == 0);
    CHECK(npy_write(&w, data, 10, &err) == 0);
    CHECK(npy_write(&w, data + 10, 14, &err) == 0);
    CHECK(access(p, F_OK) != 0); /* not visible before commit */
    CHECK(npy_commit(&w, NULL, &err) == 0);
    npy_reader r;
    CHECK(npy_open(p, &r, &err) == 0);
    CHECK(r.rank == 3 && r.shape[0] == 2 && r.shape[1] == 3 && r.shape[2] == 4);
    float back[24];
    CHECK(npy_read(&r, back, 24, &err) == 0);
    CHECK(memcmp(back, data, sizeof data) == 0);
    CHECK(npy_read(&r, back, 1, &err) != 0); /* past the end */
    CHECK(npy_rewind(&r, &err) == 0);
    CHECK(npy_read(&r, back, 2, &err) == 0 && back[1] == data[1]);
    npy_close(&r);
}

static void test_header_alignment(void)
{
    /* numpy aligns the data to 64 bytes; so must we. */
    const char *p = path_in_dir("align.npy");
    int64_t shape[1] = {3};
    float data[3] = {1, 2, 3};
    npy_writer w;
    glrp_error err = {0};
    CHECK(npy_create(p, 1, shape, &w, &err) == 0);
    npy_write(&w, data, 3, &err);
    CHECK(npy_commit(&w, NULL, &err) == 0);
    FILE *f = fopen(p, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    CHECK((size - 12) % 64 == 0);
}

static void test_version2(void)
{
    const char *p = path_in_dir("v2.npy");
    write_npy(p, 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }\n", 5);
    npy_reader r;
    glrp_error err = {0};
    CHECK(npy_open(p, &r, &err) == 0);
    CHECK(r.rank == 1 && r.shape[0] == 5);
    float v[5];
    CHECK(npy_read(&r, v, 5, &err) == 0 && v[4] == 4.0f);
    npy_close(&r);
}

static int open_fails_with(const char *name, const char *needle)
{
    npy_reader r;
    glrp_error err = {0};
    int rc = npy_open(path_in_dir(name), &r, &err);
    int ok = rc == GLRP_ERR_INPUT && strstr(err.msg, needle) && strstr(err.msg, name);
    if (!ok)
        fprintf(stderr, "  %s: rc %d, message '%s'\n", name, rc, err.msg);
    return ok;
}

static void test_refusals(void)
{
    write_raw(path_in_dir("magic.npy"), "NOTNUMPY-at-all", 15);
    CHECK(open_fails_with("magic.npy", "bad magic"));
    write_npy(path_in_dir("f8.npy"), 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 4);
    CHECK(open_fails_with("f8.npy", "'<f8'"));
    write_npy(path_in_dir("be.npy"), 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 2);
    CHECK(open_fails_with("be.npy", "'>f4'"));
    write_npy(path_in_dir("fort.npy"), 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 4);
    CHECK(open_fails_with("fort.npy", "Fortran"));
    write_npy(path_in_dir("short.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (10,), }", 3);
    CHECK(open_fails_with("short.npy", "truncated"));
    write_npy(path_in_dir("v3.npy"), 3, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 1);
    CHECK(open_fails_with("v3.npy", "version 3.0"));
    write_npy(path_in_dir("shape.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", 2);
    CHECK(open_fails_with("shape.npy", "shape"));
    write_npy(path_in_dir("nodict.npy"), 1, "[1, 2, 3]", 0);
    CHECK(open_fails_with("nodict.npy", "dictionary"));
    write_npy(path_in_dir("nokey.npy"), 1, "{'descr': '<f4', 'shape': (1,), }", 1);
    CHECK(open_fails_with("nokey.npy", "fortran_order"));
    write_raw(path_in_dir("tiny.npy"), "\x93NUMPY\x01", 7);
    CHECK(open_fails_with("tiny.npy", "bad magic"));
    CHECK(open_fails_with("does-not-exist.npy", "cannot open"));
}

static void test_header_parser(void)
{
    int rank = -1, fortran = -1;
    int64_t shape[8];
    char descr[16];
    glrp_error err = {0};
    const char *ok = "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (3, 1, 2)}";
    CHECK(npy_parse_header(ok, strlen(ok), &rank, shape, descr, sizeof descr, &fortran, &err) == 0);
    CHECK(rank == 3 && shape[0] == 3 && shape[2] == 2 && fortran == 0);
    const char *scalar = "{'descr': '<f4', 'fortran_order': False, 'shape': (), }";
    CHECK(npy_parse_header(scalar, strlen(scalar), &rank, shape, descr, sizeof descr, &fortran,
                           &err) == 0 && rank == 0);
    const char *neg = "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }";
    CHECK(npy_parse_header(neg, strlen(neg), &rank, shape, descr, sizeof descr, &fortran, &err));
    const char *unterminated = "{'descr': '<f4";
    CHECK(npy_parse_header(unterminated, strlen(unterminated), &rank, shape, descr, sizeof descr,
                           &fortran, &err));
    const char *extra = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}";
    CHECK(npy_parse_header(extra, strlen(extra), &rank, shape, descr, sizeof descr, &fortran,
                           &err));
}

static void test_abort_leaves_nothing(void)
{
    const char *p = path_in_dir("aborted.npy");
    int64_t shape[1] = {4};
    npy_writer w;
    glrp_error err = {0};
    CHECK(npy_create(p, 1, shape, &w, &err) == 0);
    char *tmp = strdup(w.tmp);
    npy_abort(&w);
    CHECK(access(p, F_OK) != 0);
    CHECK(access(tmp, F_OK) != 0);
    free(tmp);
    /* Committing fewer elements than the shape needs is refused and cleans up. */
    float v = 1;
    CHECK(npy_create(p, 1, shape, &w, &err) == 0);
    npy_write(&w, &v, 1, &err);
    CHECK(npy_commit(&w, NULL, &err) == GLRP_ERR_RUNTIME);
    CHECK(access(p, F_OK) != 0);
    /* A folder that does not exist: an error naming the path. */
    CHECK(npy_create("/nonexistent-dir/x.npy", 1, shape, &w, &err) == GLRP_ERR_RUNTIME &&
          strstr(err.msg, "/nonexistent-dir/x.npy"));
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_round_trip);
    RUN(test_header_alignment);
    RUN(test_version2);
    RUN(test_refusals);
    RUN(test_header_parser);
    RUN(test_abort_leaves_nothing);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_report();
}
