/* JSON documents written atomically (temporary name, then rename). */
#ifndef GLRP_IO_JSON_FILE_H
#define GLRP_IO_JSON_FILE_H

#include <jansson.h>

#include "geolrp/geolrp.h"

int json_write_atomic(const char *path, json_t *root, glrp_error *err);

#endif
