#include "pipeline/manifest.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json_file.h"
#include "util/error.h"
#include "util/sha256.h"

void manifest_time(time_t t, long ns, char buf[48])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(buf, 48, "%Y-%m-%dT%H:%M:%S", &tm);
    if (ns >= 0)
        snprintf(buf + n, 48 - n, ".%09ldZ", ns);
    else
        snprintf(buf + n, 48 - n, "Z");
}

void manifest_name(long index, long count, char *buf, size_t size)
{
    if (count > 0)
        snprintf(buf, size, "manifest.shard-%ld-of-%ld.json", index, count);
    else
        snprintf(buf, size, "manifest.json");
}

int manifest_is_name(const char *name)
{
    size_t n = strlen(name);
    return !strncmp(name, "manifest", 8) && n >= 13 && !strcmp(name + n - 5, ".json");
}

manifest_counts manifest_count(const json_t *scenes)
{
    manifest_counts c = {0, 0, 0, 0};
    size_t k;
    json_t *e;
    json_array_foreach(scenes, k, e) {
        const char *s = json_string_value(json_object_get(e, "status"));
        if (!s)
            s = "pending";
        if (!strcmp(s, "done"))
            c.done++;
        else if (!strcmp(s, "skipped"))
            c.skipped++;
        else if (!strcmp(s, "failed"))
            c.failed++;
        else
            c.pending++;
    }
    return c;
}

int manifest_write(json_t *doc, const char *path, glrp_error *err)
{
    char now[48];
    manifest_time(time(NULL), -1, now);
    manifest_counts c = manifest_count(json_object_get(doc, "scenes"));
    if (json_object_set_new(doc, "updated", json_string(now)) ||
        json_object_set_new(doc, "summary",
                            json_pack("{s:I, s:I, s:I, s:I, s:I}", "scenes",
                                      (json_int_t)json_array_size(json_object_get(doc,
                                                                                  "scenes")),
                                      "done", (json_int_t)c.done, "skipped",
                                      (json_int_t)c.skipped, "failed", (json_int_t)c.failed,
                                      "pending", (json_int_t)c.pending)))
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    return json_write_atomic(path, doc, NULL, err);
}

static int collect(json_t *by_input, const json_t *doc)
{
    size_t k;
    json_t *e;
    json_array_foreach(json_object_get(doc, "scenes"), k, e) {
        const char *in = json_string_value(json_object_get(e, "input"));
        const char *s = json_string_value(json_object_get(e, "status"));
        if (!in || !s || (strcmp(s, "done") && strcmp(s, "skipped")))
            continue;
        json_t *list = json_object_get(by_input, in);
        if (!list) {
            list = json_array();
            if (!list || json_object_set_new(by_input, in, list))
                return -1;
        }
        if (json_array_append(list, e))
            return -1;
    }
    return 0;
}

json_t *manifest_previous(const char *outdir)
{
    json_t *by_input = json_object();
    DIR *d = by_input ? opendir(outdir) : NULL;
    if (!d)
        return by_input;
    struct dirent *de;
    /* Sorted file names would not matter: every candidate is verified on its own. */
    while ((de = readdir(d))) {
        if (!manifest_is_name(de->d_name))
            continue;
        char *p = glrp_concat(outdir, "/", de->d_name);
        json_error_t je;
        json_t *doc = p ? json_load_file(p, 0, &je) : NULL;
        if (!doc)
            fprintf(stderr, "geolrp batch: warning: %s: not a readable manifest (%s); its "
                    "scenes are done again\n", p ? p : de->d_name, p ? je.text : "no memory");
        else if (collect(by_input, doc))
            fprintf(stderr, "geolrp batch: warning: out of memory reading %s\n", p);
        json_decref(doc);
        free(p);
    }
    closedir(d);
    return by_input;
}

json_t *manifest_outputs(const char *outdir, char *const *files, int n, glrp_error *err)
{
    json_t *a = json_array();
    if (!a) {
        glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
        return NULL;
    }
    for (int k = 0; k < n; k++) {
        char *p = glrp_concat(outdir, "/", files[k]), hex[65];
        struct stat st;
        int rc = !p ? glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory")
                 : stat(p, &st) != 0 ? glrp_fail(err, GLRP_ERR_RUNTIME, "%s: %s", p,
                                                 strerror(errno))
                                     : sha256_file(p, hex, err);
        free(p);
        if (rc || json_array_append_new(a, json_pack("{s:s, s:I, s:s}", "file", files[k],
                                                     "size", (json_int_t)st.st_size,
                                                     "sha256", hex))) {
            if (!rc)
                glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static int is_sidecar(const char *name)
{
    size_t n = strlen(name);
    return n > 8 && !strcmp(name + n - 8, ".aux.xml");
}

int manifest_outputs_intact(const json_t *entry, const char *outdir, char *why, size_t size)
{
    const json_t *outs = json_object_get(entry, "outputs");
    if (!json_is_array(outs) || json_array_size(outs) == 0) {
        snprintf(why, size, "no outputs recorded");
        return 0;
    }
    size_t k;
    json_t *o;
    json_array_foreach(outs, k, o) {
        const char *f = json_string_value(json_object_get(o, "file"));
        const char *want = json_string_value(json_object_get(o, "sha256"));
        json_int_t want_size = json_integer_value(json_object_get(o, "size"));
        if (!f || !want || strchr(f, '/')) {
            snprintf(why, size, "malformed output entry");
            return 0;
        }
        char *p = glrp_concat(outdir, "/", f), hex[65];
        struct stat st;
        glrp_error err = {0};
        int ok = p && stat(p, &st) == 0;
        if (!ok)
            snprintf(why, size, "%s is missing", f);
        else if (!is_sidecar(f) && (st.st_size != want_size || sha256_file(p, hex, &err) ||
                                    strcmp(hex, want))) {
            snprintf(why, size, "%s has changed", f);
            ok = 0;
        }
        free(p);
        if (!ok)
            return 0;
    }
    return 1;
}
