/* libFuzzer target: the .npy reader (magic, versions, header dictionary, sizes) through a
 * real file, as users' files arrive. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "io/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/geolrp-fuzz-npy-%d.npy", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    npy_reader r;
    glrp_error err = {0};
    if (npy_open(path, &r, &err) == 0) {
        float buf[256];
        size_t left = r.count;
        while (left > 0) {
            size_t n = left < 256 ? left : 256;
            if (npy_read(&r, buf, n, &err))
                break;
            left -= n;
        }
        npy_close(&r);
    }
    return 0;
}
