#include "pipeline/batch_files.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/error.h"

/* Every suffix a scene's output may have. */
static const char *const SUFFIXES[] = {".relevance.tif", ".relevance.qml",
                                       ".classes.tif.aux.xml", ".classes.tif",
                                       ".classes.qml", ".scores.tif", ".run.json",
                                       ".bands.json", ".bands.csv"};
#define N_SUFFIXES (sizeof SUFFIXES / sizeof *SUFFIXES)

int batch_files_make(const char *outdir, const char *name, int scores, int bands,
                     batch_files *f, glrp_error *err)
{
    memset(f, 0, sizeof *f);
    const char *want[N_SUFFIXES];
    int n = 0;
    want[n++] = ".relevance.tif", want[n++] = ".relevance.qml", want[n++] = ".classes.tif";
    want[n++] = ".classes.qml", want[n++] = ".classes.tif.aux.xml";
    if (scores)
        want[n++] = ".scores.tif";
    want[n++] = ".run.json";
    if (bands)
        want[n++] = ".bands.json", want[n++] = ".bands.csv";
    for (int k = 0; k < n; k++)
        if (!(f->names[f->n++] = glrp_concat(name, want[k], "")))
            goto oom;
    char *dir = glrp_concat(outdir, "/", name);
    if (!dir)
        goto oom;
    f->relevance = glrp_concat(dir, ".relevance.tif", "");
    f->classes = glrp_concat(dir, ".classes.tif", "");
    f->report = glrp_concat(dir, ".run.json", "");
    f->scores = scores ? glrp_concat(dir, ".scores.tif", "") : NULL;
    f->bands_json = bands ? glrp_concat(dir, ".bands.json", "") : NULL;
    f->bands_csv = bands ? glrp_concat(dir, ".bands.csv", "") : NULL;
    free(dir);
    if (!f->relevance || !f->classes || !f->report || (scores && !f->scores) ||
        (bands && (!f->bands_json || !f->bands_csv)))
        goto oom;
    return 0;
oom:
    batch_files_free(f);
    return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
}

void batch_files_free(batch_files *f)
{
    for (int k = 0; k < f->n; k++)
        free(f->names[k]);
    free(f->relevance), free(f->classes), free(f->scores), free(f->report),
        free(f->bands_json), free(f->bands_csv);
    memset(f, 0, sizeof *f);
}

void batch_files_remove(const char *outdir, const batch_files *f)
{
    for (int k = 0; k < f->n; k++) {
        char *p = glrp_concat(outdir, "/", f->names[k]);
        if (p)
            unlink(p);
        free(p);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether out (an output file name) belongs to one of the names. */
static int ours(const char *out, size_t len, char *const *names, size_t n)
{
    for (size_t s = 0; s < N_SUFFIXES; s++) {
        size_t sl = strlen(SUFFIXES[s]);
        if (len <= sl || strncmp(out + len - sl, SUFFIXES[s], sl))
            continue;
        char *name = strndup(out, len - sl);
        int found = name && bsearch(&name, names, n, sizeof *names, cmp_str) != NULL;
        free(name);
        if (found)
            return 1;
    }
    return 0;
}

long batch_files_remove_stale(const char *outdir, char *const *sorted_names, size_t n,
                              const char *manifest_name)
{
    static const char *const MARKERS[] = {".tmp-", ".part-", ".cog-"};
    DIR *d = opendir(outdir);
    if (!d)
        return 0;
    long removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *nm = e->d_name;
        if (nm[0] != '.')
            continue;
        int stale = 0;
        /* Every place a marker occurs: the output's own name may contain one too. */
        for (size_t m = 0; m < 3 && !stale; m++)
            for (const char *at = strstr(nm + 1, MARKERS[m]); at && !stale;
                 at = strstr(at + 1, MARKERS[m])) {
                size_t len = (size_t)(at - (nm + 1));
                stale = (strlen(manifest_name) == len && !strncmp(nm + 1, manifest_name, len)) ||
                        ours(nm + 1, len, sorted_names, n);
            }
        if (!stale)
            continue;
        char *p = glrp_concat(outdir, "/", nm);
        if (p && unlink(p) == 0)
            removed++;
        free(p);
    }
    closedir(d);
    return removed;
}
