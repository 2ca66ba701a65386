/* SHA-256 of a file, as lowercase hex, through OpenSSL's libcrypto. */
#ifndef GLRP_UTIL_SHA256_H
#define GLRP_UTIL_SHA256_H

#include <stddef.h>

#include "geolrp/geolrp.h"

#include <stddef.h>

int sha256_file(const char *path, char hex[65], glrp_error *err);
/* The same of len bytes in memory. */
int sha256_buffer(const void *data, size_t len, char hex[65], glrp_error *err);

/* Incremental SHA-256 of a byte stream. sha256_begin returns NULL when out of memory. */
typedef struct sha256_stream sha256_stream;
sha256_stream *sha256_begin(void);
void sha256_update(sha256_stream *s, const void *data, size_t n);
/* Writes the digest as lowercase hex and frees s. */
void sha256_end(sha256_stream *s, char hex[65]);
/* Frees s without a digest (safe on NULL). */
void sha256_discard(sha256_stream *s);

#endif
