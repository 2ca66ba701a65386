#include "util/sha256.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
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
