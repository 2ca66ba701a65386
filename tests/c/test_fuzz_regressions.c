/* Every input a fuzzer found a problem with stays here: each must load (or be refused)
 * without a crash, and, in the sanitizer build, without a leak or invalid access.
 * Usage: test_fuzz_regressions DIR (tests/fuzz/regressions). */
#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "geolrp/geolrp.h"
#include "io/npy.h"

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    DIR *d = opendir(argv[1]);
    CHECK(d != NULL);
    struct dirent *e;
    int files = 0;
    while (d && (e = readdir(d))) {
        const char *dot = strrchr(e->d_name, '.');
        if (!dot || e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[1], e->d_name);
        glrp_error err = {0};
        if (!strcmp(dot, ".onnx")) {
            glrp_model *m = NULL;
            int rc = glrp_model_load(path, 2, &m, &err);
            CHECK(rc == 0 || rc == GLRP_ERR_INPUT);
            CHECK(rc != 0 || m != NULL);
            glrp_model_free(m);
        } else if (!strcmp(dot, ".npy")) {
            npy_reader r;
            if (npy_open(path, &r, &err) == 0)
                npy_close(&r);
        }
        files++;
    }
    if (d)
        closedir(d);
    CHECK(files > 0);
    return check_report();
}
