#include "util/sha256.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

int sha256_file(const char *path, char hex[65], glrp_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return glrp_fail(err, GLRP_ERR_INPUT, "%s: cannot open: %s", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        fclose(f);
        EVP_MD_CTX_free(ctx);
        return glrp_fail(err, GLRP_ERR_RUNTIME, "SHA-256 unavailable");
    }
    unsigned char buf[1 << 16], md[EVP_MAX_MD_SIZE];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        EVP_DigestUpdate(ctx, buf, n);
    int bad = ferror(f);
    fclose(f);
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    if (bad)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "%s: read error", path);
    for (unsigned k = 0; k < len && k < 32; k++)
        snprintf(hex + 2 * (size_t)k, 3, "%02x", md[k]);
    return 0;
}

int sha256_buffer(const void *data, size_t len, char hex[65], glrp_error *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
        return glrp_fail(err, GLRP_ERR_RUNTIME, "SHA-256 unavailable");
    for (unsigned k = 0; k < 32; k++)
        snprintf(hex + 2 * (size_t)k, 3, "%02x", md[k]);
    return 0;
}

struct sha256_stream {
    EVP_MD_CTX *ctx;
};

sha256_stream *sha256_begin(void)
{
    sha256_stream *s = malloc(sizeof *s);
    if (!s)
        return NULL;
    s->ctx = EVP_MD_CTX_new();
    if (!s->ctx || EVP_DigestInit_ex(s->ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(s->ctx);
        free(s);
        return NULL;
    }
    return s;
}

void sha256_update(sha256_stream *s, const void *data, size_t n)
{
    if (n)
        EVP_DigestUpdate(s->ctx, data, n);
}

void sha256_end(sha256_stream *s, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_DigestFinal_ex(s->ctx, md, &len);
    hex[0] = '\0';
    for (unsigned k = 0; k < len && k < 32; k++)
        snprintf(hex + 2 * (size_t)k, 3, "%02x", md[k]);
    sha256_discard(s);
}

void sha256_discard(sha256_stream *s)
{
    if (!s)
        return;
    EVP_MD_CTX_free(s->ctx);
    free(s);
}
