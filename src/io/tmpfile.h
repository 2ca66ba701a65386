/*
 * Atomic output files: write under a temporary name in the destination's folder, then
 * rename over the destination, so a crash or an error never leaves a partial file under
 * the real name.
 */
#ifndef GLRP_IO_TMPFILE_H
#define GLRP_IO_TMPFILE_H

#include <stdio.h>

#include "geolrp/geolrp.h"

/* Opens "<dir>/.<name>.tmp-XXXXXX" for writing. */
int tmpfile_create(const char *path, char **tmp_path, FILE **f, glrp_error *err);
/* Flushes, syncs and closes f, then renames tmp_path to path. Removes tmp_path on failure. */
int tmpfile_commit(FILE *f, const char *tmp_path, const char *path, glrp_error *err);
/* Closes f and removes the temporary (an output abandoned on error). */
void tmpfile_discard(FILE *f, const char *tmp_path);
/* Whether path exists (any kind of file). */
int path_exists(const char *path);

#endif
