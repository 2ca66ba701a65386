/* Atomic outputs (io/tmpfile.c): a staged set of outputs appears all together or not at
 * all, a failed rename takes back what was renamed before it, and the folder check names
 * what is wrong. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "io/tmpfile.h"

static char dir[] = "/tmp/geolrp-tmpfile-XXXXXX";

static const char *in_dir(const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", dir, name);
    return buf;
}

static int exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static int folder_not_empty(void)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 0", dir);
    return system(cmd) == 0 ? 0 : 1;
}

/* Writes text to a temporary for path and stages it in set; returns the temporary. */
static char *stage(const char *path, const char *text, outset *set)
{
    char *tmp = NULL;
    FILE *f = NULL;
    glrp_error err = {0};
    CHECK(tmpfile_create(path, &tmp, &f, &err) == 0);
    if (!f)
        return tmp;
    fputs(text, f);
    CHECK(tmpfile_commit(f, tmp, path, set, &err) == 0);
    return tmp;
}

static void test_all_together(void)
{
    char a[256], b[256];
    outset set = {0};
    char *ta = stage(in_dir("a.json", a, sizeof a), "{}", &set);
    char *tb = stage(in_dir("b.csv", b, sizeof b), "x\n", &set);
    /* staged: finished under their temporary names, nothing under the real ones */
    CHECK(set.n == 2);
    CHECK(exists(ta) && exists(tb));
    CHECK(!exists(a) && !exists(b));
    glrp_error err = {0};
    CHECK(outset_commit(&set, &err) == 0);
    CHECK(exists(a) && exists(b));
    CHECK(!exists(ta) && !exists(tb));
    CHECK(set.n == 0);
    unlink(a), unlink(b);
    free(ta), free(tb);
}

static void test_discard(void)
{
    char a[256];
    outset set = {0};
    char *ta = stage(in_dir("a.json", a, sizeof a), "{}", &set);
    outset_discard(&set);
    CHECK(!exists(ta) && !exists(a));
    CHECK(folder_not_empty() == 0);
    free(ta);
}

static void test_failed_rename_takes_back(void)
{
    char a[256], b[256], c[256], inner[256];
    outset set = {0};
    char *ta = stage(in_dir("a.json", a, sizeof a), "{}", &set);
    char *tb = stage(in_dir("b.tif", b, sizeof b), "II*", &set);
    char *tc = stage(in_dir("c.qml", c, sizeof c), "<qgis/>", &set);
    /* b's destination becomes a non-empty folder: its rename fails */
    CHECK(mkdir(b, 0755) == 0);
    FILE *f = fopen(in_dir("b.tif/keep", inner, sizeof inner), "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    glrp_error err = {0};
    CHECK(outset_commit(&set, &err) == GLRP_ERR_RUNTIME);
    CHECK(strstr(err.msg, "b.tif") != NULL);
    CHECK(!exists(a));                   /* renamed, then taken back */
    CHECK(!exists(c) && !exists(tc));    /* never renamed, temporary removed */
    CHECK(!exists(ta) && !exists(tb));
    CHECK(exists(inner));                /* what was in the way is untouched */
    unlink(inner);
    rmdir(b);
    CHECK(folder_not_empty() == 0);
    free(ta), free(tb), free(tc);
}

static void test_immediate_commit(void)
{
    char a[256];
    char *ta = stage(in_dir("now.json", a, sizeof a), "{}", NULL);
    CHECK(exists(a) && !exists(ta));
    unlink(a);
    free(ta);
}

static void test_folder_check(void)
{
    char p[256], file[256];
    glrp_error err = {0};
    CHECK(output_folder_check(in_dir("out.tif", p, sizeof p), &err) == 0);
    CHECK(output_folder_check("/nonexistent-folder/out.tif", &err) == GLRP_ERR_RUNTIME);
    CHECK(strstr(err.msg, "/nonexistent-folder/out.tif") && strstr(err.msg, "No such file"));
    FILE *f = fopen(in_dir("plain", file, sizeof file), "w");
    if (f)
        fclose(f);
    CHECK(output_folder_check(in_dir("plain/out.tif", p, sizeof p), &err) == GLRP_ERR_RUNTIME);
    CHECK(strstr(err.msg, "not a folder") != NULL);
    unlink(file);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_all_together);
    RUN(test_discard);
    RUN(test_failed_rename_takes_back);
    RUN(test_immediate_commit);
    RUN(test_folder_check);
    rmdir(dir);
    return check_report();
}
