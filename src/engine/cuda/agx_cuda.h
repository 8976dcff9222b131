/* agx_cuda.h — C interface of the CUDA backend (the .cu files in src/engine/cuda),
 * used only by device.c (probing) and model_device.c (the forward hook table).
 * Compiled only with -DAGX_CUDA=ON (AGX_HAVE_CUDA). */
#ifndef AGX_CUDA_H
#define AGX_CUDA_H

#include <stdbool.h>
#include <stdint.h>

#include "agx/device.h"
#include "agx/error.h"
#include "engine/model_device.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Fills info for CUDA device 0 (CUDA_VISIBLE_DEVICES selects which GPU that
 * is): name, memory, compute capability. Fails with AGX_ERR_UNAVAILABLE and the
 * CUDA runtime's reason ("no CUDA-capable device is detected", "CUDA driver
 * version is insufficient for CUDA runtime version", ...) or when the device's
 * compute capability is below the oldest PTX this build carries (7.0; 7.5 with CUDA 13). */
agx_status agx_cuda_probe(agx_device_info *info, agx_error *err);

/* The device block decoders run on the host: row of n elements (a multiple
 * of 32) of weight type `type` into out. False for types without a device
 * decoder. For tests: checks the GPU decoders bit-exactly against quant.c on
 * machines without a GPU. */
bool agx_cuda_dequant_row_host(uint32_t type, const void *row, int64_t n, float *out);

/* Kernel-by-kernel check against the CPU ops on synthetic data (selftest.cu).
 * *report (caller frees) lists every check with its error; AGX_ERR_ENGINE when
 * any failed. Needs a GPU. */
agx_status agx_cuda_selftest(char **report, agx_error *err);

/* The CUDA forward pass (see agx_device_forward in model_device.h). */
const agx_device_forward *agx_cuda_forward(void);

#ifdef __cplusplus
}
#endif
#endif
