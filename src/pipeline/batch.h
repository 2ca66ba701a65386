/*
 * geolrp batch: the scenes of a list (or of one shard of it) through the scene pipeline,
 * each into OUTDIR/NAME.*, with the model loaded once, a manifest rewritten atomically
 * after every scene, and scenes whose outputs are verified up to date skipped.
 */
#ifndef GLRP_PIPELINE_BATCH_H
#define GLRP_PIPELINE_BATCH_H

#include "pipeline/inputs.h"
#include "pipeline/scene_job.h"
#include "pipeline/shard.h"

typedef struct {
    scene_job job;       /* options every scene shares; scene and output paths unset */
    const char *outdir;  /* exists */
    shard_spec shard;
    int force;           /* redo scenes that are up to date */
    int quiet;           /* progress lines and summary off; failures are still printed */
    int scores;          /* NAME.scores.tif too */
    int argc;            /* the command line, recorded in the manifest */
    char **argv;
} batch_config;

/* Runs the shard's scenes of l (names assigned). Returns 0, or the code of an error that
 * stopped the whole batch (model, config, output folder, manifest; err set). *failed gets
 * the number of scenes that failed: they are in the manifest, and the batch went on. */
int batch_run(const batch_config *b, const input_list *l, long *failed, glrp_error *err);

#endif
