/*
 * The batch manifest: one JSON document per shard in the output folder
 * (manifest.json, or manifest.shard-I-of-N.json), a header and one entry per scene of the
 * shard, rewritten under a temporary name and renamed after every scene, so that it is
 * complete and parseable whenever the process dies. docs/batch.md describes the fields.
 */
#ifndef GLRP_PIPELINE_MANIFEST_H
#define GLRP_PIPELINE_MANIFEST_H

#include <jansson.h>
#include <sys/stat.h>
#include <time.h>

#include "geolrp/geolrp.h"

#define MANIFEST_FORMAT "geolrp-batch-manifest/1"

/* "2025-01-31T12:00:00Z", or with nanoseconds when ns >= 0 (modification times). */
void manifest_time(time_t t, long ns, char buf[48]);
/* manifest.json, or manifest.shard-I-of-N.json (count > 0). */
void manifest_name(long index, long count, char *buf, size_t size);
/* Whether a folder entry is a manifest of ours (manifest*.json, not hidden). */
int manifest_is_name(const char *name);

/* Sets "updated" and "summary" (counts per status) and writes doc to path atomically. */
int manifest_write(json_t *doc, const char *path, glrp_error *err);
/* Entries with status done or skipped from every manifest in outdir, as an object
 * input path -> array of entries (empty when there are none). A manifest that cannot be
 * read is reported on stderr and passed over: its scenes are simply done again. */
json_t *manifest_previous(const char *outdir);

/* [{"file": NAME, "size": N, "sha256": HEX}] of files (names in outdir). */
json_t *manifest_outputs(const char *outdir, char *const *files, int n, glrp_error *err);
/* Whether every output an entry lists is in outdir with the recorded size and SHA-256
 * (GDAL's .aux.xml sidecars only have to exist: GDAL and QGIS rewrite them to cache
 * statistics). why gets the first mismatch. */
int manifest_outputs_intact(const json_t *entry, const char *outdir, char *why, size_t size);

/* Counts of an entry array per status. */
typedef struct {
    long done, skipped, failed, pending;
} manifest_counts;
manifest_counts manifest_count(const json_t *scenes);

#endif
