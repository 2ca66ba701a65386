/* libFuzzer target: the ONNX loader (protobuf decoding, constant folding, lowering,
 * shape inference, planning), then forward and explain of any model that loads.
 * The body is fuzz_onnx_input (fuzz_inputs.c), which test_fuzz_regressions replays. */
#include "fuzz_inputs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_onnx_input(data, size);
    return 0;
}
