/*
 * The scene pipeline behind `geolrp explain` and `geolrp classify`:
 * read a stripe of tile rows -> normalise -> explain tiles in batches -> blend into the
 * streaming mosaic -> write finished rows -> COG + .qml + report.
 */
#ifndef GLRP_PIPELINE_SCENE_JOB_H
#define GLRP_PIPELINE_SCENE_JOB_H

#include "geolrp/geolrp.h"
#include "raster/tiling.h"

typedef enum { TARGET_PREDICTED = 0, TARGET_INDEX, TARGET_NAME, TARGET_ALL } target_kind;

#define SCENE_MAX_CO 32

typedef struct {
    const char *scene, *model, *config;
    const char *output;      /* relevance COG; NULL for classify */
    const char *class_map, *scores, *report;
    const char *bands;       /* NULL: config, else all */
    glrp_rules rules;
    int composite_set;       /* --composite given on the command line */
    int tile, stride;        /* 0: defaults */
    int blend_set;
    blend_mode blend;
    int target_set;          /* --target given on the command line */
    target_kind target;
    int target_index;
    const char *target_name;
    int init_set;
    glrp_init init;
    double min_valid;
    int min_valid_set;
    int threads, batch;
    int overwrite, quiet;
    /* --co NAME=VALUE: GDAL COG creation options for the raster outputs, over the defaults
     * (COMPRESS=DEFLATE, LEVEL=1, PREDICTOR=YES, NUM_THREADS=--threads). */
    const char *creation_options[SCENE_MAX_CO];
    int n_creation_options;
    /* Band importance (geolrp bands, explain --bands-report). */
    const char *bands_json, *bands_csv, *bands_svg;
    int occlusion;
    int baseline_set;        /* else the scene mean of each band */
    double baseline;         /* in scene units, normalised like the data */
    /* A batch of scenes loads and hashes the model once: when set, the job borrows this
     * model (loaded from `model` for at least `batch` tiles) and this SHA-256 of it. */
    glrp_model *loaded_model;
    const char *model_sha256;
    /* explain --part I/N: only the tile rows of part I, into the part file `part`
     * (output, class_map, scores, report and bands_json stay NULL; geolrp merge makes
     * them). part_count 0: a whole run. */
    int part_index, part_count;
    const char *part;
} scene_job;

void scene_job_init(scene_job *j);
/* "predicted", "all", a class index or a class name (resolved against the model later);
 * non-zero for a negative index. */
int scene_target_parse(scene_job *j, const char *s);
int scene_job_run(scene_job *j, glrp_error *err);

/* geolrp merge: part files of one `explain --part` split -> the outputs of a single run. */
typedef struct {
    const char *const *parts;
    int n_parts;
    const char *output, *class_map, *scores, *report, *bands_json;
    int overwrite, quiet;
    const char *creation_options[SCENE_MAX_CO]; /* as scene_job's */
    int n_creation_options;
    int threads; /* for compressing the COGs; 0 = 1 */
} merge_job;

int merge_run(const merge_job *mj, glrp_error *err);

#endif
