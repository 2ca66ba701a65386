/*
 * Atomic output files: write under a temporary name in the destination's folder, then
 * rename over the destination, so a crash or an error never leaves a partial file under
 * the real name.
 *
 * A command with several outputs stages them in an outset: every file is finished under
 * its temporary name first and all are renamed together at the end, so a failure while
 * writing any of them (a full disk, say) leaves none of them behind.
 */
#ifndef GLRP_IO_TMPFILE_H
#define GLRP_IO_TMPFILE_H

#include <stdio.h>

#include "geolrp/geolrp.h"

/* Finished temporaries waiting to be renamed into place. Zero-initialise. */
typedef struct {
    int n, cap;
    char **tmp, **path;
} outset;

/* Opens "<dir>/.<name>.tmp-XXXXXX" for writing. */
int tmpfile_create(const char *path, char **tmp_path, FILE **f, glrp_error *err);
/* Flushes, syncs and closes f (checking every step, and earlier write errors), then
 * renames tmp_path to path, or, when set is not NULL, hands the finished temporary to set
 * instead. Removes tmp_path on failure. tmp_path stays the caller's. */
int tmpfile_commit(FILE *f, const char *tmp_path, const char *path, outset *set,
                   glrp_error *err);
/* Closes f and removes the temporary (an output abandoned on error). */
void tmpfile_discard(FILE *f, const char *tmp_path);
/* Whether an output can be created at path: its folder exists and is writable (runtime
 * error, exit 1, naming path, the folder and the reason). Checked before a long run, so that
 * an output written at its end (a report) does not fail after all the work. */
int output_folder_check(const char *path, glrp_error *err);
/* Whether path exists (any kind of file). */
int path_exists(const char *path);
/* "; only N KiB left on its file system" when the file system that holds path (a file to
 * be written) is nearly full, else "": GDAL reports a full disk as, say, "TIFFRewriteDirectory:
 * Error fetching directory count", which this makes readable. Returns buf. */
const char *free_space_note(const char *path, char *buf, size_t size);

/* Adds a finished temporary (already registered for removal on a signal) to set; the set
 * now owns it: on failure it is removed at once. */
int outset_add(outset *set, const char *tmp_path, const char *path, glrp_error *err);
/* Renames every member into place. If one rename fails, the outputs already renamed are
 * removed again, and so are the remaining temporaries. Empties the set. */
int outset_commit(outset *set, glrp_error *err);
/* Removes every member's temporary (a run that failed). Empties the set. */
void outset_discard(outset *set);

#endif
