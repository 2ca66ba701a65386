/* SHA-256 of a file, as lowercase hex, through OpenSSL's libcrypto. */
#ifndef GLRP_UTIL_SHA256_H
#define GLRP_UTIL_SHA256_H

#include "geolrp/geolrp.h"

#include <stddef.h>

int sha256_file(const char *path, char hex[65], glrp_error *err);
/* The same of len bytes in memory. */
int sha256_buffer(const void *data, size_t len, char hex[65], glrp_error *err);

#endif
