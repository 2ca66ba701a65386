/*
 * geolrp merge-manifest: the manifests of the shards of one batch (OUTDIR/
 * manifest.shard-I-of-N.json, I = 0..N-1) combined into one document of the same form,
 * after checking that they describe the same scene list, model and options and that every
 * scene of the list appears exactly once.
 */
#ifndef GLRP_PIPELINE_MANIFEST_MERGE_H
#define GLRP_PIPELINE_MANIFEST_MERGE_H

#include "geolrp/geolrp.h"

typedef struct {
    long shards;         /* N of the manifests combined (1: manifest.json) */
    long total, done, skipped, failed, pending, missing;
} merge_result;

/* shards: N to combine, or 0 for the only N present (manifest.json when there are no
 * shard manifests). out: the merged manifest (default OUTDIR/manifest.merged.json when
 * NULL). quiet: no per-scene lines for failed, pending and missing scenes. Errors (code 2)
 * name the manifest at fault. */
int manifest_merge(const char *outdir, long shards, const char *out, int quiet,
                   merge_result *res, glrp_error *err);

#endif
