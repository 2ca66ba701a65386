/* realpath(3) is XSI, beyond the POSIX level the build asks for. */
#include "pipeline/batch.h"

#include <cpl_error.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pipeline/batch_files.h"
#include "pipeline/job_options.h"
#include "pipeline/manifest.h"
#include "raster/config.h"
#include "util/error.h"
#include "util/sha256.h"

/* What every scene of the run shares, worked out once. */
typedef struct {
    const batch_config *b;
    const input_list *l;
    glrp_model *model;
    char model_sha[65];
    char *config_real;       /* the config's absolute path, or NULL */
    char config_sha[65];
    int bands;               /* band importance outputs (not with target all) */
    json_t *options;         /* canonical options (job_options.c) */
    char *options_text;
    json_t *doc;             /* the manifest */
    char manifest_name[96];
    char *manifest_path;
    char cwd[PATH_MAX];
    int lock_fd;
} batch_state;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void timestamp(char buf[48])
{
    manifest_time(time(NULL), -1, buf);
}

/* The path to show: relative to the current folder when below it. */
static const char *shown(const batch_state *s, const char *path)
{
    size_t n = strlen(s->cwd);
    if (n > 1 && !strncmp(path, s->cwd, n) && path[n] == '/')
        return path + n + 1;
    return path;
}

/* The model, its hash and the config, checked once: an error there would fail every
 * scene, so it stops the batch before anything is written. */
static int prepare(batch_state *s, glrp_error *err)
{
    const scene_job *j = &s->b->job;
    int rc = glrp_model_load(j->model, j->batch, &s->model, err);
    if (rc || (rc = sha256_file(j->model, s->model_sha, err)))
        return rc;
    int target_all = j->target_set && j->target == TARGET_ALL;
    if (j->config) {
        scene_config cfg;
        config_init(&cfg);
        rc = config_load(j->config, &cfg, err);
        if (!rc && !j->target_set && cfg.target && !strcmp(cfg.target, "all"))
            target_all = 1;
        config_free(&cfg);
        if (rc || (rc = sha256_file(j->config, s->config_sha, err)))
            return rc;
        if (!(s->config_real = realpath(j->config, NULL)))
            return glrp_fail(err, GLRP_ERR_INPUT, "%s: %s", j->config, strerror(errno));
    }
    /* Band importance needs one target: with --target all it is left out. */
    s->bands = !target_all;
    s->options = job_options_json(j, s->config_real, j->config ? s->config_sha : NULL,
                                  s->b->scores);
    s->options_text = s->options ? job_options_text(s->options) : NULL;
    if (!s->options_text)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    if (!getcwd(s->cwd, sizeof s->cwd))
        s->cwd[0] = '\0';
    return 0;
}

/* One writer per manifest: a second run of the same shard into the same folder would
 * remove the first one's temporaries as stale. The lock is the kernel's (fcntl), so it
 * goes with the process, however it ends; the empty lock file stays. */
static int lock_manifest(batch_state *s, glrp_error *err)
{
    size_t len = strlen(s->b->outdir) + strlen(s->manifest_name) + 8;
    char *p = malloc(len);
    if (!p)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    snprintf(p, len, "%s/.%s.lock", s->b->outdir, s->manifest_name);
    s->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    int rc = 0;
    if (s->lock_fd < 0) {
        rc = glrp_fail(err, GLRP_ERR_RUNTIME, "%s: cannot create: %s", p, strerror(errno));
    } else {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fcntl(s->lock_fd, F_SETLK, &fl) != 0 && (errno == EACCES || errno == EAGAIN))
            rc = glrp_fail(err, GLRP_ERR_RUNTIME, "%s/%s: another geolrp batch is running "
                           "this shard into the same folder", s->b->outdir, s->manifest_name);
        /* Other errors (file systems without locks): go on without. */
    }
    free(p);
    return rc;
}

static json_t *header(const batch_state *s, glrp_error *err)
{
    const batch_config *b = s->b;
    char started[48], host[256] = "", list_sha[65];
    timestamp(started);
    if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "unknown");
    /* The list every shard must agree on: merge-manifest compares this hash. */
    size_t len = 1;
    for (size_t k = 0; k < s->l->n; k++)
        len += strlen(s->l->v[k].path) + 1;
    char *all = malloc(len), *at = all;
    if (!all) {
        glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
        return NULL;
    }
    for (size_t k = 0; k < s->l->n; k++)
        at += sprintf(at, "%s\n", s->l->v[k].path);
    int rc = sha256_buffer(all, (size_t)(at - all), list_sha, err);
    free(all);
    if (rc)
        return NULL;
    char *outdir = realpath(b->outdir, NULL), *model = realpath(b->job.model, NULL);
    json_t *cmd = json_array();
    json_array_append_new(cmd, json_string("geolrp"));
    for (int k = 0; cmd && k < b->argc; k++)
        json_array_append_new(cmd, json_string(b->argv[k]));
    json_t *doc = json_pack(
        "{s:s, s:s, s:s, s:s, s:I, s:o, s:s, s:o, s:{s:I, s:s}, s:s, s:s, s:O, s:[]}",
        "format", MANIFEST_FORMAT, "geolrp_version", GEOLRP_VERSION, "started", started,
        "host", host, "pid", (json_int_t)getpid(), "command", cmd ? cmd : json_null(),
        "outdir", outdir ? outdir : b->outdir, "shard",
        b->shard.set ? json_pack("{s:I, s:I, s:s}", "index", (json_int_t)b->shard.index,
                                 "count", (json_int_t)b->shard.count, "from", b->shard.source)
                     : json_null(),
        "inputs", "total", (json_int_t)s->l->n, "sha256", list_sha, "model",
        model ? model : b->job.model, "model_sha256", s->model_sha, "options", s->options,
        "scenes");
    free(outdir), free(model);
    if (!doc)
        glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    return doc;
}

/* An earlier entry of this scene that still holds: same input size and time, model,
 * options and output names, every output present with its recorded checksum. */
static const json_t *up_to_date(const batch_state *s, const json_t *candidates,
                                const batch_input *in, const struct stat *st,
                                const char *mtime, const batch_files *f)
{
    size_t k;
    json_t *e;
    json_array_foreach(candidates, k, e) {
        const char *name = json_string_value(json_object_get(e, "name"));
        const char *mt = json_string_value(json_object_get(e, "mtime"));
        const char *sha = json_string_value(json_object_get(e, "model_sha256"));
        if (!name || strcmp(name, in->name) || !mt || strcmp(mt, mtime) ||
            json_integer_value(json_object_get(e, "size")) != (json_int_t)st->st_size ||
            !sha || strcmp(sha, s->model_sha))
            continue;
        char *opt = job_options_text(json_object_get(e, "options"));
        int same = opt && !strcmp(opt, s->options_text);
        free(opt);
        if (!same)
            continue;
        /* Every output the options call for must be among those recorded. */
        const json_t *outs = json_object_get(e, "outputs");
        int all = 1;
        for (int m = 0; m < f->n && all; m++) {
            size_t len = strlen(f->names[m]);
            if (len > 8 && !strcmp(f->names[m] + len - 8, ".aux.xml"))
                continue;
            int found = 0;
            size_t q;
            json_t *o;
            json_array_foreach(outs, q, o) {
                const char *fn = json_string_value(json_object_get(o, "file"));
                found |= fn && !strcmp(fn, f->names[m]);
            }
            all = found;
        }
        char why[256];
        if (all && manifest_outputs_intact(e, s->b->outdir, why, sizeof why))
            return e;
    }
    return NULL;
}

static void input_time(const struct stat *st, char buf[48])
{
    manifest_time(st->st_mtim.tv_sec, st->st_mtim.tv_nsec, buf);
}

/* The entries the run starts from: scenes verified up to date are "skipped" (their
 * earlier entry, outputs and checksums carried over), the others "pending". Done here for
 * all scenes first, so the manifest never claims more than was checked by this run. */
static int initial_entries(batch_state *s, const size_t *mine, size_t n, glrp_error *err)
{
    json_t *prev = s->b->force ? json_object() : manifest_previous(s->b->outdir);
    json_t *scenes = json_object_get(s->doc, "scenes");
    if (!prev)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    int rc = 0;
    for (size_t k = 0; k < n && !rc; k++) {
        const batch_input *in = &s->l->v[mine[k]];
        const json_t *cand = json_object_get(prev, in->path), *ok = NULL;
        struct stat st;
        char mtime[48], verified[48];
        batch_files f;
        if (cand && stat(in->path, &st) == 0) {
            input_time(&st, mtime);
            if ((rc = batch_files_make(s->b->outdir, in->name, s->b->scores, s->bands, &f,
                                       err)))
                break;
            ok = up_to_date(s, cand, in, &st, mtime, &f);
            batch_files_free(&f);
        }
        json_t *e;
        if (ok) {
            timestamp(verified);
            e = json_deep_copy(ok);
            if (e && (json_object_set_new(e, "index", json_integer((json_int_t)mine[k])) ||
                      json_object_set_new(e, "status", json_string("skipped")) ||
                      json_object_set_new(e, "reason", json_string("up to date")) ||
                      json_object_set_new(e, "verified", json_string(verified)))) {
                json_decref(e);
                e = NULL;
            }
        } else {
            e = json_pack("{s:I, s:s, s:s, s:s}", "index", (json_int_t)mine[k], "input",
                          in->path, "name", in->name, "status", "pending");
        }
        if (!e || json_array_append_new(scenes, e))
            rc = glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
    }
    json_decref(prev);
    return rc;
}

/* Copies the report's warnings into the entry (the progress line counts them). */
static size_t add_warnings(json_t *e, const char *report)
{
    json_t *r = json_load_file(report, 0, NULL);
    json_t *w = json_object_get(r, "warnings");
    size_t n = json_array_size(w);
    json_object_set_new(e, "warnings", json_is_array(w) ? json_incref(w) : json_array());
    json_decref(r);
    return n;
}

/* Explains one scene; fills its manifest entry. 0, or non-zero when it failed (entry
 * says why). */
static int run_scene(batch_state *s, size_t idx, json_t *e, size_t pos, size_t total)
{
    const batch_config *b = s->b;
    const batch_input *in = &s->l->v[idx];
    glrp_error err = {0};
    batch_files f;
    struct stat st;
    char mtime[48] = "", started[48];
    double t0 = now();
    timestamp(started);
    int rc = batch_files_make(b->outdir, in->name, b->scores, s->bands, &f, &err);
    if (!rc && stat(in->path, &st) != 0)
        rc = glrp_fail(&err, GLRP_ERR_INPUT, "%s: %s", in->path, strerror(errno));
    if (!rc) {
        /* Taken before reading: a change during the run shows up as a new time. */
        input_time(&st, mtime);
        json_object_set_new(e, "size", json_integer((json_int_t)st.st_size));
        json_object_set_new(e, "mtime", json_string(mtime));
        scene_job j = b->job; /* a fresh copy: the pipeline resolves defaults into it */
        j.scene = in->path;
        j.output = f.relevance, j.class_map = f.classes, j.scores = f.scores;
        j.report = f.report, j.bands_json = f.bands_json, j.bands_csv = f.bands_csv;
        j.overwrite = 1; /* a scene that is redone replaces its own outputs */
        j.quiet = 1;     /* one line per scene instead; warnings go to the report */
        j.loaded_model = s->model;
        j.model_sha256 = s->model_sha;
        /* GDAL would print its own lines for a bad scene; its message is in err and goes
         * to the manifest and the progress line. */
        CPLPushErrorHandler(CPLQuietErrorHandler);
        rc = scene_job_run(&j, &err);
        CPLPopErrorHandler();
    }
    json_t *outs = NULL;
    if (!rc) {
        /* The .aux.xml exists unless GDAL's PAM is off; every other file must. */
        char *present[BATCH_MAX_FILES];
        int n = 0;
        for (int k = 0; k < f.n && !rc; k++) {
            char *p = glrp_concat(b->outdir, "/", f.names[k]);
            if (!p) {
                rc = glrp_fail(&err, GLRP_ERR_RUNTIME, "out of memory");
                break;
            }
            size_t nl = strlen(f.names[k]);
            if (access(p, F_OK) == 0)
                present[n++] = f.names[k];
            else if (nl <= 8 || strcmp(f.names[k] + nl - 8, ".aux.xml"))
                rc = glrp_fail(&err, GLRP_ERR_RUNTIME, "%s was not written", p);
            free(p);
        }
        if (!rc && !(outs = manifest_outputs(b->outdir, present, n, &err)))
            rc = err.code ? err.code : GLRP_ERR_RUNTIME;
    }
    double dt = now() - t0;
    json_object_set_new(e, "model_sha256", json_string(s->model_sha));
    json_object_set_new(e, "options", json_deep_copy(s->options));
    json_object_set_new(e, "started", json_string(started));
    json_object_set_new(e, "duration_seconds", json_real(dt));
    json_object_del(e, "reason");
    json_object_del(e, "verified");
    if (rc) {
        batch_files_remove(b->outdir, &f);
        json_object_set_new(e, "status", json_string("failed"));
        json_object_set_new(e, "error", json_string(err.msg));
        json_object_set_new(e, "outputs", json_array());
        fprintf(stderr, "[%zu/%zu] %s: failed: %s\n", pos, total, shown(s, in->path), err.msg);
    } else {
        json_object_set_new(e, "status", json_string("done"));
        json_object_set_new(e, "error", json_null());
        json_object_set_new(e, "outputs", outs);
        size_t nw = add_warnings(e, f.report);
        if (!b->quiet) {
            fprintf(stderr, "[%zu/%zu] %s: done in %.1f s", pos, total, shown(s, in->path),
                    dt);
            if (nw)
                fprintf(stderr, ", %zu warning%s (see %s)", nw, nw > 1 ? "s" : "",
                        shown(s, f.report));
            fprintf(stderr, "\n");
        }
    }
    batch_files_free(&f);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void state_free(batch_state *s)
{
    glrp_model_free(s->model);
    free(s->config_real);
    json_decref(s->options);
    free(s->options_text);
    json_decref(s->doc);
    free(s->manifest_path);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
}

int batch_run(const batch_config *b, const input_list *l, long *failed, glrp_error *err)
{
    batch_state s;
    memset(&s, 0, sizeof s);
    s.b = b, s.l = l, s.lock_fd = -1;
    *failed = 0;
    double t0 = now();
    manifest_name(b->shard.index, b->shard.set ? b->shard.count : 0, s.manifest_name,
                  sizeof s.manifest_name);
    /* This shard's scenes: I, I+N, I+2N, ... of the whole sorted list. */
    size_t step = b->shard.set ? (size_t)b->shard.count : 1, first = b->shard.set ?
                                                              (size_t)b->shard.index : 0;
    size_t n = l->n > first ? (l->n - first + step - 1) / step : 0;
    size_t *mine = glrp_alloc(n ? n : 1, sizeof *mine);
    char **names = glrp_alloc(n ? n : 1, sizeof *names);
    s.manifest_path = glrp_concat(b->outdir, "/", s.manifest_name);
    int rc = !mine || !names || !s.manifest_path
                 ? glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory") : 0;
    if (!rc) {
        /* s.manifest_path is freed by state_free on every path (an analyzer false positive). */
        for (size_t k = 0; k < n; k++) /* NOLINT(clang-analyzer-unix.Malloc) */
            mine[k] = first + k * step, names[k] = l->v[mine[k]].name;
        rc = prepare(&s, err);
    }
    if (!rc)
        rc = lock_manifest(&s, err);
    if (!rc) {
        qsort(names, n, sizeof *names, cmp_str); /* for bsearch in remove_stale */
        long stale = batch_files_remove_stale(b->outdir, names, n, s.manifest_name);
        if (stale && !b->quiet)
            fprintf(stderr, "geolrp batch: removed %ld temporar%s of an interrupted run\n",
                    stale, stale > 1 ? "ies" : "y");
        s.doc = header(&s, err);
        rc = s.doc ? initial_entries(&s, mine, n, err) : err->code;
    }
    if (!rc)
        rc = manifest_write(s.doc, s.manifest_path, err);
    json_t *scenes = json_object_get(s.doc, "scenes");
    for (size_t k = 0; k < n && !rc; k++) {
        json_t *e = json_array_get(scenes, k);
        const char *path = l->v[mine[k]].path;
        if (!strcmp(json_string_value(json_object_get(e, "status")), "skipped")) {
            if (!b->quiet)
                fprintf(stderr, "[%zu/%zu] %s: skipped (up to date)\n", k + 1, n,
                        shown(&s, path));
            continue;
        }
        if (run_scene(&s, mine[k], e, k + 1, n))
            (*failed)++;
        rc = manifest_write(s.doc, s.manifest_path, err);
    }
    if (!rc && !b->quiet) {
        manifest_counts c = manifest_count(scenes);
        fprintf(stderr, "geolrp batch: %zu scene%s", n, n == 1 ? "" : "s");
        if (b->shard.set)
            fprintf(stderr, " (shard %ld/%ld of %zu)", b->shard.index, b->shard.count, l->n);
        fprintf(stderr, ": %ld done, %ld skipped, %ld failed in %.1f s; manifest %s\n",
                c.done, c.skipped, c.failed, now() - t0, s.manifest_path);
    }
    free(mine);
    free(names);
    state_free(&s);
    return rc;
}
