/*
 * Temporary files to remove if the process is interrupted. SIGINT and SIGTERM remove every
 * registered path and exit with 130 or 143, so an interrupted run leaves nothing behind:
 * neither a partial output (outputs only ever appear by rename) nor its temporaries.
 */
#ifndef GLRP_UTIL_CLEANUP_H
#define GLRP_UTIL_CLEANUP_H

/* Installs the SIGINT/SIGTERM handlers (the command does this once at start). */
void cleanup_install_handlers(void);
/* Registers a path (copied); 0, or -1 when the table is full (the path then simply is not
 * removed on a signal). */
int cleanup_register(const char *path);
/* Forgets a registered path (after it was renamed or removed); unknown paths are ignored. */
void cleanup_release(const char *path);

#endif
