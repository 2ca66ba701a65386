/* libFuzzer target: the .npy reader (magic, versions, header dictionary, sizes).
 * The body is fuzz_npy_input (fuzz_inputs.c), which test_fuzz_regressions replays. */
#include "fuzz_inputs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_npy_input(data, size);
    return 0;
}
