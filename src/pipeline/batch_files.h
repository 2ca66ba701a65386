/*
 * The files a batch writes for a scene named NAME in the output folder, and the removal of
 * temporaries a killed run left there.
 */
#ifndef GLRP_PIPELINE_BATCH_FILES_H
#define GLRP_PIPELINE_BATCH_FILES_H

#include <stddef.h>

#include "geolrp/geolrp.h"

enum { BATCH_MAX_FILES = 12 };

typedef struct {
    char *relevance, *classes, *scores, *report, *bands_json, *bands_csv; /* paths or NULL */
    char *names[BATCH_MAX_FILES]; /* every file, names within the output folder */
    int n;
} batch_files;

/* NAME.relevance.tif (+ .qml), NAME.classes.tif (+ .qml, .tif.aux.xml), NAME.scores.tif
 * when scores, NAME.run.json, NAME.bands.json and NAME.bands.csv when bands. */
int batch_files_make(const char *outdir, const char *name, int scores, int bands,
                     batch_files *f, glrp_error *err);
void batch_files_free(batch_files *f);
/* Removes each file (a failed scene leaves no outputs that could pass for its own). */
void batch_files_remove(const char *outdir, const batch_files *f);

/* Removes temporaries of an earlier, killed run from outdir: hidden files
 * ".<output>.tmp-*", ".<output>.part-*", ".<output>.cog-*" whose <output> is one of the
 * outputs of the given scene names (sorted with strcmp) or the manifest. Anything else,
 * including the temporaries of other shards' scenes, is left alone. Returns the count. */
long batch_files_remove_stale(const char *outdir, char *const *sorted_names, size_t n,
                              const char *manifest_name);

#endif
