#include "io/tmpfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/error.h"

int path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The folder part of path ("." when there is none). */
static void folder_of(const char *path, char *dir, size_t size)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, size, ".");
    else
        snprintf(dir, size, "%.*s", slash == path ? 1 : (int)(slash - path), path);
}

int output_folder_check(const char *path, glrp_error *err)
{
    char dir[4096];
    struct stat sb;
    folder_of(path, dir, sizeof dir);
    if (stat(dir, &sb) != 0)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: cannot create output: folder %s: %s",
                         path, dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: cannot create output: %s is not a folder",
                         path, dir);
    /* access() also reports a read-only file system (EROFS), even to root. */
    if (access(dir, W_OK | X_OK) != 0)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: cannot create output in folder %s: %s",
                         path, dir, strerror(errno));
    return 0;
}

/* Below this much free space a failed write is most likely the full disk. */
#define NEARLY_FULL_BYTES (64.0 * 1024 * 1024)

const char *free_space_note(const char *path, char *buf, size_t size)
{
    char dir[4096];
    folder_of(path, dir, sizeof dir);
    struct statvfs vfs;
    buf[0] = '\0';
    if (statvfs(dir, &vfs) == 0) {
        double avail = (double)vfs.f_bavail * (double)vfs.f_frsize;
        if (avail < NEARLY_FULL_BYTES)
            snprintf(buf, size, "; only %.0f KiB left on its file system", avail / 1024);
    }
    return buf;
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

/* Flushes, syncs and closes f: 0, or the errno value of the first failure. A write that
 * failed earlier (a fprintf into a full disk) only set the stream's error flag, and the
 * final fflush may then succeed: ferror catches it; errno most likely still says why. */
static int finish_file(FILE *f)
{
    int e = ferror(f) ? (errno ? errno : EIO) : 0;
    if (!e && fflush(f) != 0)
        e = errno;
    if (!e && fsync(fileno(f)) != 0)
        e = errno;
    if (fclose(f) != 0 && !e)
        e = errno;
    return e;
}

int tmpfile_commit(FILE *f, const char *tmp_path, const char *path, outset *set,
                   glrp_error *err)
{
    int e = finish_file(f);
    if (!e && set)
        return outset_add(set, tmp_path, path, err);
    if (!e && rename(tmp_path, path) != 0)
        e = errno;
    if (e)
        unlink(tmp_path);
    cleanup_release(tmp_path);
    if (e)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: cannot write output: %s", path,
                         strerror(e));
    return 0;
}

void tmpfile_discard(FILE *f, const char *tmp_path)
{
    if (f)
        fclose(f);
    unlink(tmp_path);
    cleanup_release(tmp_path);
}

/* Room for one more member; 0 or -1 (out of memory). */
static int outset_grow(outset *set)
{
    if (set->n < set->cap)
        return 0;
    int cap = set->cap ? 2 * set->cap : 8;
    char **t = realloc(set->tmp, (size_t)cap * sizeof *t);
    if (!t)
        return -1;
    set->tmp = t;
    char **p = realloc(set->path, (size_t)cap * sizeof *p);
    if (!p)
        return -1;
    set->path = p;
    set->cap = cap;
    return 0;
}

int outset_add(outset *set, const char *tmp_path, const char *path, glrp_error *err)
{
    char *t = outset_grow(set) == 0 ? glrp_strdup(tmp_path) : NULL;
    char *p = t ? glrp_strdup(path) : NULL;
    if (!p) {
        free(t);
        unlink(tmp_path);
        cleanup_release(tmp_path);
        return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: out of memory", path);
    }
    set->tmp[set->n] = t;
    set->path[set->n++] = p;
    return 0;
}

static void outset_free(outset *set)
{
    for (int k = 0; k < set->n; k++)
        free(set->tmp[k]), free(set->path[k]);
    free(set->tmp), free(set->path);
    memset(set, 0, sizeof *set);
}

int outset_commit(outset *set, glrp_error *err)
{
    int k, e = 0;
    for (k = 0; k < set->n && !e; k++) {
        if (rename(set->tmp[k], set->path[k]) != 0)
            e = errno;
        else
            cleanup_release(set->tmp[k]);
    }
    if (!e) {
        outset_free(set);
        return 0;
    }
    /* Member k - 1 failed: take back the outputs before it, remove the rest. */
    glrp_fail(err, GLRP_ERR_RUNTIME, "%s: cannot rename the finished output into place: %s",
              set->path[k - 1], strerror(e));
    for (int i = 0; i < k - 1; i++)
        unlink(set->path[i]);
    for (int i = k - 1; i < set->n; i++) {
        unlink(set->tmp[i]);
        cleanup_release(set->tmp[i]);
    }
    outset_free(set);
    return GLRP_ERR_RUNTIME;
}

void outset_discard(outset *set)
{
    for (int k = 0; k < set->n; k++) {
        unlink(set->tmp[k]);
        cleanup_release(set->tmp[k]);
    }
    outset_free(set);
}
