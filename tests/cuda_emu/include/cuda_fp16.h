/* cuda_fp16.h (agx CUDA emulator) — __half / __half2 with the conversions the
 * engine's kernels use, round-to-nearest-even like the hardware's cvt.rn. */
#ifndef AGX_CUDA_EMU_FP16_H
#define AGX_CUDA_EMU_FP16_H

#include <stdint.h>
#include <string.h>

namespace agx_emu {
inline unsigned short f32_to_f16_bits(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    const unsigned short sign = (unsigned short)((x >> 16) & 0x8000u);
    x &= 0x7fffffffu;
    if (x >= 0x47800000u) /* >= 65536, inf, nan */
        return (unsigned short)(sign | (x > 0x7f800000u ? 0x7e00u : 0x7c00u));
    if (x < 0x38800000u) { /* below the smallest normal half: let the FPU round the subnormal */
        float t;
        memcpy(&t, &x, sizeof t);
        t += 0.5f;
        uint32_t u;
        memcpy(&u, &t, sizeof u);
        return (unsigned short)(sign | (u - 0x3f000000u));
    }
    const uint32_t odd = (x >> 13) & 1u;
    x += 0xc8000fffu + odd; /* rebias exponent (-112 << 23), round half to even */
    return (unsigned short)(sign | (x >> 13));
}
inline float f16_bits_to_f32(unsigned short h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, out;
    if (exp == 0x1f) out = sign | 0x7f800000u | (mant << 13);
    else if (exp) out = sign | ((exp + 112) << 23) | (mant << 13);
    else if (!mant) out = sign;
    else { /* subnormal: normalise */
        exp = 113;
        while (!(mant & 0x400u)) mant <<= 1, exp--;
        out = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &out, sizeof f);
    return f;
}
} // namespace agx_emu

struct alignas(2) __half {
    unsigned short x;
    __half() = default;
    __half(float f) : x(agx_emu::f32_to_f16_bits(f)) {}
    operator float() const { return agx_emu::f16_bits_to_f32(x); }
};
struct alignas(4) __half2 {
    __half x, y;
};
typedef __half half;

inline float __half2float(__half h) { return agx_emu::f16_bits_to_f32(h.x); }
inline __half __float2half(float f) { return __half(f); }
inline __half __float2half_rn(float f) { return __half(f); }
inline __half __ushort_as_half(unsigned short u) {
    __half h;
    h.x = u;
    return h;
}
inline unsigned short __half_as_ushort(__half h) { return h.x; }
inline __half2 __floats2half2_rn(float a, float b) { return __half2{__half(a), __half(b)}; }
inline __half2 __float2half2_rn(float a) { return __half2{__half(a), __half(a)}; }
inline float __low2float(__half2 h) { return __half2float(h.x); }
inline float __high2float(__half2 h) { return __half2float(h.y); }

#endif
