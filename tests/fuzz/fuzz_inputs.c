/* The bodies of the fuzz targets; see fuzz_inputs.h. Errors are the expected outcome for
 * most inputs; only a crash, a leak or a sanitizer report is a finding. */
#include "fuzz_inputs.h"

#include <stdio.h>
#include <unistd.h>

#include "geolrp/geolrp.h"
#include "io/npy.h"
#include "model/graph.h"
#include "raster/config.h"

/* Whether running the model costs little enough for a fuzz input. The loader accepts plans
 * up to 8 GiB, and a few bytes of Pad attributes make a legitimate model whose explain
 * takes seconds under the sanitizers; such an input is a slow model, not a finding, and
 * would time out a fuzz run. The budget: 2^20 activation elements per sample in all, and
 * at most 2^27 for the largest activation times the parameter count (a bound on the
 * multiply-adds). Loading, where hostile sizes must be refused, is fuzzed whatever the
 * size. */
static int cheap_to_run(const glrp_model *m)
{
    size_t total = 0, largest = 0;
    for (int k = 0; k < m->n_tensors; k++) {
        total += m->tensors[k].numel;
        largest = m->tensors[k].numel > largest ? m->tensors[k].numel : largest;
    }
    size_t params = m->n_params ? m->n_params : 1;
    return total <= (1u << 20) && largest <= ((size_t)1 << 27) / params &&
           glrp_model_input_size(m) <= (1u << 16) &&
           (size_t)glrp_model_num_outputs(m) <= (1u << 15);
}

void fuzz_onnx_input(const uint8_t *data, size_t size)
{
    glrp_model *m = NULL;
    glrp_error err = {0};
    if (glrp_model_load_memory(data, size, "fuzz.onnx", 2, &m, &err) != 0)
        return;
    /* A model that loads must also run: forward and explain a zero input. */
    if (cheap_to_run(m)) {
        static float x[2 << 16], r[2 << 16], s[1 << 16];
        glrp_rules rules;
        glrp_rules_init(&rules);
        float lo = -1, hi = 1;
        rules.low = &lo, rules.high = &hi, rules.n_bounds = 1;
        glrp_forward(m, x, 2, s, &err);
        glrp_explain(m, &rules, GLRP_TARGET_PREDICTED, GLRP_INIT_LOGIT, x, 2, r, s, NULL, &err);
    }
    glrp_model_free(m);
}

/* The readers take paths, so the bytes go through a file named after the process. */
static int write_temp(const char *ext, const uint8_t *data, size_t size, char *path,
                      size_t path_size)
{
    snprintf(path, path_size, "/tmp/geolrp-fuzz-%d.%s", (int)getpid(), ext);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t wrote = fwrite(data, 1, size, f);
    return fclose(f) == 0 && wrote == size ? 0 : -1;
}

void fuzz_npy_input(const uint8_t *data, size_t size)
{
    char path[64];
    if (write_temp("npy", data, size, path, sizeof path))
        return;
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
    remove(path);
}

void fuzz_config_input(const uint8_t *data, size_t size)
{
    char path[64];
    if (write_temp("json", data, size, path, sizeof path))
        return;
    scene_config c;
    glrp_error err = {0};
    config_init(&c);
    config_load(path, &c, &err);
    config_free(&c);
    remove(path);
}
