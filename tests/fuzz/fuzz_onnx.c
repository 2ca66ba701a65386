/* libFuzzer target: the ONNX loader (protobuf decoding, constant folding, lowering,
 * shape inference, planning) on arbitrary bytes. Any crash, leak or sanitizer report is a
 * finding; errors are the expected outcome for most inputs. */
#include <stddef.h>
#include <stdint.h>

#include "geolrp/geolrp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    glrp_model *m = NULL;
    glrp_error err = {0};
    if (glrp_model_load_memory(data, size, "fuzz.onnx", 2, &m, &err) == 0) {
        /* A model that loads must also run: forward and explain a zero input. */
        size_t n = glrp_model_input_size(m);
        if (n <= (1u << 16)) {
            static float x[2 << 16], r[2 << 16], s[1 << 16];
            glrp_rules rules;
            glrp_rules_init(&rules);
            float lo = -1, hi = 1;
            rules.low = &lo, rules.high = &hi, rules.n_bounds = 1;
            if ((size_t)glrp_model_num_outputs(m) <= (1u << 15)) {
                glrp_forward(m, x, 2, s, &err);
                glrp_explain(m, &rules, GLRP_TARGET_PREDICTED, GLRP_INIT_LOGIT, x, 2, r, s,
                             NULL, &err);
            }
        }
        glrp_model_free(m);
    }
    return 0;
}
