/* JSON documents written atomically (temporary name, then rename). */
#ifndef GLRP_IO_JSON_FILE_H
#define GLRP_IO_JSON_FILE_H

#include <jansson.h>

#include "geolrp/geolrp.h"
#include "io/tmpfile.h"

/* Writes root to path atomically, or, when set is not NULL, to a temporary that set renames
 * with the command's other outputs (io/tmpfile.h). */
int json_write_atomic(const char *path, json_t *root, outset *set, glrp_error *err);

#endif
