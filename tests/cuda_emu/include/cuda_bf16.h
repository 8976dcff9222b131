/* cuda_bf16.h (agx CUDA emulator) — the engine reads bf16 weights as raw bits
 * (kernels.cu), so only the type name is needed. */
#ifndef AGX_CUDA_EMU_BF16_H
#define AGX_CUDA_EMU_BF16_H
struct __nv_bfloat16 {
    unsigned short x;
};
#endif
