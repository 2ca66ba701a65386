/* SHA-256 of a file, as lowercase hex, through OpenSSL's libcrypto. */
#ifndef GLRP_UTIL_SHA256_H
#define GLRP_UTIL_SHA256_H

#include "geolrp/geolrp.h"

int sha256_file(const char *path, char hex[65], glrp_error *err);

#endif
