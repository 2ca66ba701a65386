/* libFuzzer target: the scene config parser (JSON syntax, keys, per-band lists). */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "raster/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/geolrp-fuzz-config-%d.json", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    scene_config c;
    glrp_error err = {0};
    config_init(&c);
    config_load(path, &c, &err);
    config_free(&c);
    return 0;
}
