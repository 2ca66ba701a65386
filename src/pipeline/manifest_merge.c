#include "pipeline/manifest_merge.h"

#include <dirent.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pipeline/job_options.h"
#include "pipeline/manifest.h"
#include "util/error.h"

#define MAX_COUNTS 16

/* I and N of "manifest.shard-I-of-N.json"; 0 when name is not one. */
static int shard_file(const char *name, long *i, long *n)
{
    int end = 0;
    /* A value sscanf cannot convert fails the canonical-name comparison below. */
    if (sscanf(name, /* NOLINT(cert-err34-c) */ "manifest.shard-%ld-of-%ld.json%n", i, n, &end) != 2 || end == 0 ||
        name[end] || *n < 1 || *i < 0 || *i >= *n)
        return 0;
    char canon[96]; /* no leading zeros or signs: one file per shard */
    manifest_name(*i, *n, canon, sizeof canon);
    return !strcmp(canon, name);
}

/* The N to combine: the one given, else the only one present, else 1 (manifest.json). */
static int choose_shards(const char *outdir, long *shards, glrp_error *err)
{
    DIR *d = opendir(outdir);
    if (!d)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: cannot read the folder", outdir);
    long counts[MAX_COUNTS];
    int nc = 0, more = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        long i, n;
        if (!shard_file(e->d_name, &i, &n))
            continue;
        int seen = 0;
        for (int k = 0; k < nc; k++)
            seen |= counts[k] == n;
        if (!seen && nc < MAX_COUNTS)
            counts[nc++] = n;
        else if (!seen)
            more = 1;
    }
    closedir(d);
    if (*shards > 0)
        return 0;
    if (nc == 0) {
        *shards = 1;
        return 0;
    }
    if (nc == 1 && !more) {
        *shards = counts[0];
        return 0;
    }
    char list[256] = "";
    for (int k = 0; k < nc; k++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%ld", k ? ", " : "",
                 counts[k]);
    return glrp_fail(err, GLRP_ERR_INPUT, "%s holds manifests of runs with %s%s shards; "
                     "choose one with --shards N", outdir, list, more ? ", ..." : "");
}

static const char *str_at(const json_t *doc, const char *a, const char *b)
{
    const json_t *v = json_object_get(doc, a);
    return json_string_value(b ? json_object_get(v, b) : v);
}

/* The fields every shard of one batch shares must agree. */
static int same_batch(const json_t *first, const char *first_path, const json_t *doc,
                      const char *path, glrp_error *err)
{
    static const struct {
        const char *a, *b, *what;
    } keys[] = {{"inputs", "sha256", "input lists"}, {"model_sha256", NULL, "models"}};
    for (size_t k = 0; k < 2; k++) {
        const char *x = str_at(first, keys[k].a, keys[k].b);
        const char *y = str_at(doc, keys[k].a, keys[k].b);
        if (!x || !y || strcmp(x, y))
            return glrp_fail(err, GLRP_ERR_INPUT, "%s and %s were run over different %s",
                             first_path, path, keys[k].what);
    }
    if (json_integer_value(json_object_get(json_object_get(first, "inputs"), "total")) !=
        json_integer_value(json_object_get(json_object_get(doc, "inputs"), "total")))
        return glrp_fail(err, GLRP_ERR_INPUT, "%s and %s were run over different input "
                         "lists", first_path, path);
    char *a = job_options_text(json_object_get(first, "options"));
    char *b = job_options_text(json_object_get(doc, "options"));
    int same = a && b && !strcmp(a, b);
    free(a), free(b);
    if (!same)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s and %s were run with different options",
                         first_path, path);
    return 0;
}

static int by_index(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "index"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "index"));
    return x < y ? -1 : x > y;
}

typedef struct {
    const char *outdir;
    long N;
    json_t *first;        /* the first manifest read (borrowed from docs) */
    char first_path[PATH_MAX];
    json_t *docs;         /* array, index I -> manifest or null */
    json_t *from;         /* file names combined */
    json_int_t total;
    unsigned char *seen;  /* per scene index */
} merge_state;

/* Reads shard I's manifest (absent: its scenes are missing) and checks its entries. */
static int read_shard(merge_state *m, long i, glrp_error *err)
{
    char name[96], path[PATH_MAX];
    /* One shard: an unsharded run's manifest.json, else --shard 0/1's. */
    manifest_name(i, m->N > 1 ? m->N : 0, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s", m->outdir, name);
    if (m->N == 1 && access(path, F_OK) != 0) {
        manifest_name(0, 1, name, sizeof name);
        snprintf(path, sizeof path, "%s/%s", m->outdir, name);
    }
    if (access(path, F_OK) != 0)
        return json_array_append_new(m->docs, json_null())
                   ? glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory") : 0;
    json_error_t je;
    json_t *doc = json_load_file(path, 0, &je);
    if (!doc)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s:%d: not a manifest: %s", path, je.line,
                         je.text);
    if (json_array_append_new(m->docs, doc) || json_array_append_new(m->from,
                                                                     json_string(name)))
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    const char *fmt = json_string_value(json_object_get(doc, "format"));
    if (!fmt || strcmp(fmt, MANIFEST_FORMAT) || !json_is_array(json_object_get(doc, "scenes")))
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: not a geolrp batch manifest (format %s)",
                         path, MANIFEST_FORMAT);
    if (!m->first) {
        m->first = doc;
        snprintf(m->first_path, sizeof m->first_path, "%s", path);
        json_t *t = json_object_get(json_object_get(doc, "inputs"), "total");
        m->total = json_integer_value(t);
        if (!json_is_integer(t) || m->total < 0 || m->total > (json_int_t)1 << 40)
            return glrp_fail(err, GLRP_ERR_INPUT, "%s: no valid inputs.total", path);
        if (!(m->seen = glrp_alloc((size_t)m->total + 1, 1)))
            return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    } else {
        int rc = same_batch(m->first, m->first_path, doc, path, err);
        if (rc)
            return rc;
    }
    size_t k;
    json_t *e;
    json_array_foreach(json_object_get(doc, "scenes"), k, e) {
        json_t *iv = json_object_get(e, "index");
        json_int_t idx = json_integer_value(iv);
        if (!json_is_integer(iv) || idx < 0 || idx >= m->total || idx % m->N != i)
            return glrp_fail(err, GLRP_ERR_INPUT, "%s: scene entry %zu has index %lld, not a "
                             "scene of shard %ld/%ld of %lld", path, k, (long long)idx, i,
                             m->N, (long long)m->total);
        if (m->seen[idx]++)
            return glrp_fail(err, GLRP_ERR_INPUT, "%s: scene %lld appears twice", path,
                             (long long)idx);
    }
    return 0;
}

static json_t *merged_doc(merge_state *m, json_t *scenes, json_t *missing)
{
    char now[48], host[256] = "";
    manifest_time(time(NULL), -1, now);
    if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "unknown");
    json_t *doc = json_deep_copy(m->first);
    if (!doc)
        return NULL;
    json_object_del(doc, "pid");
    json_object_del(doc, "command");
    json_object_del(doc, "started");
    if (json_object_set_new(doc, "geolrp_version", json_string(GEOLRP_VERSION)) ||
        json_object_set_new(doc, "merged", json_string(now)) ||
        json_object_set_new(doc, "host", json_string(host)) ||
        json_object_set_new(doc, "shard", json_null()) ||
        json_object_set(doc, "merged_from", m->from) ||
        json_object_set(doc, "scenes", scenes) || json_object_set(doc, "missing", missing)) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

int manifest_merge(const char *outdir, long shards, const char *out, int quiet,
                   merge_result *res, glrp_error *err)
{
    memset(res, 0, sizeof *res);
    merge_state m = {.outdir = outdir, .docs = json_array(), .from = json_array()};
    json_t *scenes = json_array(), *missing = json_array(), *doc = NULL;
    int rc = choose_shards(outdir, &shards, err);
    if (!rc && (!m.docs || !m.from || !scenes || !missing))
        rc = glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    m.N = shards;
    for (long i = 0; i < m.N && !rc; i++)
        rc = read_shard(&m, i, err);
    if (!rc && !m.first)
        rc = glrp_fail(err, GLRP_ERR_INPUT, "%s: no manifest of %ld shard%s (manifest%s)",
                       outdir, m.N, m.N > 1 ? "s" : "",
                       m.N > 1 ? ".shard-I-of-N.json" : ".json");
    /* Every scene of every manifest, in list order. */
    for (size_t i = 0; !rc && i < json_array_size(m.docs); i++) {
        size_t k;
        json_t *e;
        json_array_foreach(json_object_get(json_array_get(m.docs, i), "scenes"), k, e)
            if (json_array_append(scenes, e))
                rc = glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    }
    if (!rc) {
        size_t n = json_array_size(scenes);
        json_t **v = glrp_alloc(n ? n : 1, sizeof *v); /* NOLINT(bugprone-sizeof-expression) */
        if (!v)
            rc = glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
        for (size_t k = 0; !rc && k < n; k++)
            v[k] = json_incref(json_array_get(scenes, k));
        if (!rc) {
            qsort(v, n, sizeof *v, by_index); /* NOLINT(bugprone-sizeof-expression) */
            json_array_clear(scenes);
            for (size_t k = 0; k < n; k++)
                json_array_append_new(scenes, v[k]);
        }
        free(v);
    }
    for (json_int_t k = 0; !rc && k < m.total; k++) {
        if (m.seen[k])
            continue;
        long sh = (long)(k % m.N);
        json_array_append_new(missing, json_pack("{s:I, s:I, s:I}", "index", k, "shard", sh,
                                                 "shards", (json_int_t)m.N));
        if (!quiet)
            fprintf(stderr, "missing: scene %lld of the list (shard %ld/%ld: %s)\n",
                    (long long)k, sh, m.N, json_is_null(json_array_get(m.docs, (size_t)sh))
                                               ? "no manifest" : "not in its manifest");
    }
    if (!rc) {
        manifest_counts c = manifest_count(scenes);
        res->shards = m.N, res->total = m.total, res->done = c.done, res->skipped = c.skipped;
        res->failed = c.failed, res->pending = c.pending;
        res->missing = (long)json_array_size(missing);
        size_t k;
        json_t *e;
        json_array_foreach(scenes, k, e) {
            const char *s = json_string_value(json_object_get(e, "status"));
            if (quiet || (s && (!strcmp(s, "done") || !strcmp(s, "skipped"))))
                continue;
            const char *msg = json_string_value(json_object_get(e, "error"));
            fprintf(stderr, "%s: %s%s%s\n", s ? s : "pending",
                    json_string_value(json_object_get(e, "input")), msg ? ": " : "",
                    msg ? msg : "");
        }
        char path[PATH_MAX];
        if (!out)
            snprintf(path, sizeof path, "%s/manifest.merged.json", outdir);
        doc = merged_doc(&m, scenes, missing);
        rc = doc ? manifest_write(doc, out ? out : path, err)
                 : glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    }
    json_decref(doc);
    json_decref(scenes);
    json_decref(missing);
    json_decref(m.docs);
    json_decref(m.from);
    free(m.seen);
    return rc;
}
