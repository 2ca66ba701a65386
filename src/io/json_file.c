#include "io/json_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/tmpfile.h"
#include "util/error.h"

int json_write_atomic(const char *path, json_t *root, outset *set, glrp_error *err)
{
    char *tmp;
    FILE *f;
    int rc = tmpfile_create(path, &tmp, &f, err);
    if (rc)
        return rc;
    if (json_dumpf(root, f, JSON_INDENT(2) | JSON_REAL_PRECISION(9)) || fputc('\n', f) == EOF) {
        int e = errno;
        tmpfile_discard(f, tmp);
        rc = glrp_fail(err, GLRP_ERR_RUNTIME, "%s: cannot write: %s", path,
                       strerror(e ? e : EIO));
    } else {
        rc = tmpfile_commit(f, tmp, path, set, err);
    }
    free(tmp);
    return rc;
}
