/* libFuzzer target: the scene config parser (JSON syntax, keys, per-band lists).
 * The body is fuzz_config_input (fuzz_inputs.c), which test_fuzz_regressions replays. */
#include "fuzz_inputs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_config_input(data, size);
    return 0;
}
