/* What each fuzz target does with one input, shared by the libFuzzer targets (fuzz_*.c)
 * and by test_fuzz_regressions, so that a kept input replays exactly what the fuzzer ran:
 * a finding in forward or explain is not missed by a replay that only loads the model. */
#ifndef GEOLRP_FUZZ_INPUTS_H
#define GEOLRP_FUZZ_INPUTS_H

#include <stddef.h>
#include <stdint.h>

/* ONNX bytes: load; a model that loads also runs forward and explain on a zero batch. */
void fuzz_onnx_input(const uint8_t *data, size_t size);
/* .npy bytes, through a real file as users' files arrive: open and read every value. */
void fuzz_npy_input(const uint8_t *data, size_t size);
/* Scene config (JSON) bytes, through a real file: parse. */
void fuzz_config_input(const uint8_t *data, size_t size);

#endif
