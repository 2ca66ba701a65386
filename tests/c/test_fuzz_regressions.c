/* Replays fuzz inputs through the fuzz targets' own bodies (tests/fuzz/fuzz_inputs.c):
 * every input a fuzzer found a problem with (tests/fuzz/regressions) and the seed corpora.
 * Each must be loaded or refused without a crash and, in the sanitizer build, without a
 * leak or an invalid access; the seeds must also load, since a seed the loader refuses
 * teaches the fuzzer nothing.
 * Usage: test_fuzz_regressions [--must-load] DIR... ; the kind of input is its extension
 * (.onnx, .npy, .json). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fuzz_inputs.h"
#include "geolrp/geolrp.h"

static uint8_t *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *buf = NULL;
    long len = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (len >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)len + 1)) &&
        fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *size = len > 0 ? (size_t)len : 0;
    return buf;
}

/* Whether the loader accepts the model: the seeds' own check. */
static int onnx_loads(const uint8_t *data, size_t size, const char *path)
{
    glrp_model *m = NULL;
    glrp_error err = {0};
    int rc = glrp_model_load_memory(data, size, path, 2, &m, &err);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    glrp_model_free(m);
    return rc == 0;
}

static int replay_dir(const char *dir, int must_load)
{
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    int files = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        const char *dot = strrchr(e->d_name, '.');
        if (!dot || e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t size;
        uint8_t *data = read_all(path, &size);
        CHECK(data != NULL);
        if (!data)
            continue;
        if (!strcmp(dot, ".onnx")) {
            fuzz_onnx_input(data, size);
            if (must_load)
                CHECK(onnx_loads(data, size, path));
        } else if (!strcmp(dot, ".npy")) {
            fuzz_npy_input(data, size);
        } else if (!strcmp(dot, ".json")) {
            fuzz_config_input(data, size);
        }
        free(data);
        files++;
    }
    if (d)
        closedir(d);
    return files;
}

int main(int argc, char **argv)
{
    int must_load = 0, files = 0, k = 1;
    if (k < argc && !strcmp(argv[k], "--must-load"))
        must_load = 1, k++;
    if (k == argc)
        return 2;
    for (; k < argc; k++) {
        int n = replay_dir(argv[k], must_load);
        CHECK(n > 0);
        files += n;
    }
    printf("%d inputs replayed\n", files);
    return check_report();
}
