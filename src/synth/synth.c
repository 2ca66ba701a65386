#include "synth/synth.h"

#include <errno.h>
#include <cpl_error.h>
#include <cpl_vsi.h>
#include <gdal.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/json_file.h"
#include "io/npy.h"
#include "io/tmpfile.h"
#include "util/cleanup.h"
#include "util/error.h"

const synth_variant synth_variants[] = {
    {"noise", "background uniform noise around 0 (base task)", 1, 0.0f, 0.25f, 0, 0, 1},
    {"zero", "background exactly 0: inputs of value 0 can never receive relevance under "
             "rules that multiply by the input", 1, 0.0f, 0.0f, 0, 0, 1},
    {"shifted", "the same task with the background shifted to 1 +- 0.25", 1, 1.0f, 0.25f, 0,
     0, 1},
    {"absence", "evidence by absence: class 1 has the square at a fixed place, class 0 has "
                "nothing there (zero background)", 1, 0.0f, 0.0f, 1, 0, 1},
    {"border", "the class square touches the image border (zero padding)", 1, 0.0f, 0.25f, 0,
     1, 1},
    {"multiband", "4 bands; only bands 1 and 3 carry the class square", 4, 0.0f, 0.25f, 0, 0,
     0x5},
    {NULL, NULL, 0, 0, 0, 0, 0, 0}};

const synth_variant *synth_find(const char *name)
{
    for (int k = 0; synth_variants[k].name; k++)
        if (!strcmp(synth_variants[k].name, name))
            return &synth_variants[k];
    return NULL;
}

/* splitmix64: a sample depends only on (seed, index), so any subset can be regenerated. */
static uint64_t next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float uniform(uint64_t *s) /* [0, 1) */
{
    return (float)((next(s) >> 40) * (1.0 / 16777216.0));
}

static int rand_int(uint64_t *s, int n)
{
    return (int)(next(s) % (uint64_t)n);
}

typedef struct {
    int y, x;
} corner;

static int overlaps(corner a, corner b, int sq)
{
    /* one pixel of gap so squares never touch */
    return a.x < b.x + sq + 1 && b.x < a.x + sq + 1 && a.y < b.y + sq + 1 && b.y < a.y + sq + 1;
}

static void paint(float *plane, int size, corner c, int sq, float v)
{
    for (int y = c.y; y < c.y + sq; y++)
        for (int x = c.x; x < c.x + sq; x++)
            plane[y * size + x] += v;
}

int synth_sample(const synth_variant *v, const synth_params *p, uint64_t index, float *x,
                 float *mask)
{
    uint64_t s = p->seed * 0x100000001B3ull + index;
    next(&s);
    const int n = p->size, sq = p->square, span = n - sq + 1;
    const size_t plane = (size_t)n * n;
    int label = rand_int(&s, 2);
    for (int b = 0; b < v->bands; b++)
        for (size_t e = 0; e < plane; e++)
            x[b * plane + e] = v->bg_level + (2.0f * uniform(&s) - 1.0f) * v->bg_noise;
    corner cls;
    if (v->absence) {
        cls.y = cls.x = (n - sq) / 2;
    } else if (v->at_border) {
        int side = rand_int(&s, 4), along = rand_int(&s, span);
        cls.y = side == 0 ? 0 : side == 1 ? n - sq : along;
        cls.x = side == 2 ? 0 : side == 3 ? n - sq : along;
    } else {
        cls.y = rand_int(&s, span), cls.x = rand_int(&s, span);
    }
    corner d[2];
    for (int k = 0; k < 2; k++) {
        int tries = 0;
        do {
            d[k].y = rand_int(&s, span), d[k].x = rand_int(&s, span);
        } while (++tries < 1000 && (overlaps(d[k], cls, sq) || (k == 1 && overlaps(d[1], d[0], sq))));
    }
    memset(mask, 0, plane * sizeof *mask);
    paint(mask, n, cls, sq, 1.0f);
    for (int b = 0; b < v->bands; b++) {
        float *pl = x + b * plane;
        paint(pl, n, d[0], sq, 0.5f);
        paint(pl, n, d[1], sq, 0.5f);
        if (!(v->signal_bands & (1 << b)))
            continue;
        if (v->absence) {
            if (label == 1)
                paint(pl, n, cls, sq, 0.5f);
        } else {
            paint(pl, n, cls, sq, label == 1 ? 0.5f : -0.5f);
        }
    }
    return label;
}

/* A preview GeoTIFF, written under a temporary name and staged with the arrays. */
static int write_tiff(const char *path, const float *x, int bands, int n, outset *set,
                      glrp_error *err)
{
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    cleanup_register(tmp);
    CPLErrorReset();
    GDALDriverH drv = GDALGetDriverByName("GTiff");
    GDALDatasetH ds = drv ? GDALCreate(drv, tmp, n, n, bands, GDT_Float32, NULL) : NULL;
    CPLErr e = ds ? GDALDatasetRasterIO(ds, GF_Write, 0, 0, n, n, (void *)x, n, n,
                                        GDT_Float32, bands, NULL, 0, 0, 0)
                  : CE_Failure;
    if (ds)
        GDALClose(ds); /* void before GDAL 3.7: a failure shows in the error state */
    if (e != CE_None || CPLGetLastErrorType() >= CE_Failure) {
        glrp_fail(err, GLRP_ERR_RUNTIME, "%s: cannot write: %s", path, CPLGetLastErrorMsg());
        VSIUnlink(tmp);
        cleanup_release(tmp);
        return GLRP_ERR_RUNTIME;
    }
    return outset_add(set, tmp, path, err);
}

int synth_write(const synth_variant *v, const synth_params *p, int count, int n_tiff,
                const char *dir, glrp_error *err)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: cannot create folder: %s", dir,
                         strerror(errno));
    char px[1024], pm[1024], pl[1024], pj[1024];
    snprintf(px, sizeof px, "%s/X.npy", dir);
    snprintf(pm, sizeof pm, "%s/masks.npy", dir);
    snprintf(pl, sizeof pl, "%s/labels.npy", dir);
    snprintf(pj, sizeof pj, "%s/meta.json", dir);
    const int n = p->size;
    const size_t plane = (size_t)n * n, in = (size_t)v->bands * plane;
    int64_t sx[4] = {count, v->bands, n, n}, sm[3] = {count, n, n}, sl[1] = {count};
    npy_writer wx, wm, wl;
    outset staged = {0}; /* arrays, previews and meta.json appear together or not at all */
    memset(&wx, 0, sizeof wx), memset(&wm, 0, sizeof wm), memset(&wl, 0, sizeof wl);
    float *x = malloc(in * sizeof *x), *mask = malloc(plane * sizeof *mask);
    int rc = !x || !mask ? glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory") : 0;
    if (!rc)
        rc = npy_create(px, 4, sx, &wx, err);
    if (!rc)
        rc = npy_create(pm, 3, sm, &wm, err);
    if (!rc)
        rc = npy_create(pl, 1, sl, &wl, err);
    long ones = 0;
    for (int k = 0; k < count && !rc; k++) {
        float label = (float)synth_sample(v, p, (uint64_t)k, x, mask);
        ones += label > 0;
        rc = npy_write(&wx, x, in, err) || npy_write(&wm, mask, plane, err) ||
             npy_write(&wl, &label, 1, err);
        if (!rc && k < n_tiff) {
            char pt[1100];
            snprintf(pt, sizeof pt, "%s/sample_%03d.tif", dir, k);
            rc = write_tiff(pt, x, v->bands, n, &staged, err);
        }
    }
    if (!rc)
        rc = npy_commit(&wx, &staged, err) || npy_commit(&wm, &staged, err) ||
                     npy_commit(&wl, &staged, err) ? err->code : 0;
    if (!rc) {
        json_t *meta = json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:I, s:f, s:f, s:b, s:b, s:i, "
                                 "s:I, s:s}",
                                 "variant", v->name, "description", v->what, "bands", v->bands,
                                 "size", n, "square", p->square, "count", count, "seed",
                                 (json_int_t)p->seed, "bg_level", (double)v->bg_level,
                                 "bg_noise", (double)v->bg_noise, "absence", v->absence,
                                 "at_border", v->at_border, "signal_bands", v->signal_bands,
                                 "class_1", (json_int_t)ones, "generator",
                                 "geolrp synth " GEOLRP_VERSION);
        rc = meta ? json_write_atomic(pj, meta, &staged, err)
                  : glrp_fail(err, GLRP_ERR_RUNTIME, "out of memory");
        json_decref(meta);
    }
    if (!rc)
        rc = outset_commit(&staged, err);
    outset_discard(&staged);
    npy_abort(&wx), npy_abort(&wm), npy_abort(&wl);
    free(x), free(mask);
    return rc;
}
