#include "io/tmpfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/error.h"

int path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int tmpfile_create(const char *path, char **tmp_path, FILE **f, glrp_error *err)
{
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = slash ? slash + 1 : path;
    size_t len = dir_len + strlen(base) + 16;
    char *tmp = malloc(len);
    if (!tmp)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    snprintf(tmp, len, "%.*s.%s.tmp-XXXXXX", (int)dir_len, path, base);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: cannot create output: %s", path,
                         strerror(e));
    }
    fchmod(fd, 0644);
    *f = fdopen(fd, "wb");
    if (!*f) {
        close(fd);
        unlink(tmp);
        free(tmp);
        return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: cannot open output", path);
    }
    cleanup_register(tmp);
    *tmp_path = tmp;
    return 0;
}

int tmpfile_commit(FILE *f, const char *tmp_path, const char *path, glrp_error *err)
{
    int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    int e = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (!bad && rename(tmp_path, path) != 0) {
        bad = 1;
        e = errno;
    }
    cleanup_release(tmp_path);
    if (bad) {
        unlink(tmp_path);
        return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: cannot write output: %s", path,
                         strerror(e));
    }
    return 0;
}

void tmpfile_discard(FILE *f, const char *tmp_path)
{
    if (f)
        fclose(f);
    unlink(tmp_path);
    cleanup_release(tmp_path);
}
