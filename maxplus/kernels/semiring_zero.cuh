// The zero of the semiring: -inf for max-plus, +inf for min-plus.
// Shared by tropical_product.cu and tropical_training.cu; maxplus.kernels.gpu.read_source
// inlines it for NVRTC, nvcc and the host emulation find it beside the including file.
#pragma once

template <typename T, bool MAXIMIZE>
__device__ __forceinline__ T semiring_zero();

template <>
__device__ __forceinline__ float semiring_zero<float, true>() {
    return __int_as_float((int)0xff800000u);
}
template <>
__device__ __forceinline__ float semiring_zero<float, false>() {
    return __int_as_float((int)0x7f800000u);
}
template <>
__device__ __forceinline__ double semiring_zero<double, true>() {
    return __longlong_as_double((long long)0xfff0000000000000ull);
}
template <>
__device__ __forceinline__ double semiring_zero<double, false>() {
    return __longlong_as_double((long long)0x7ff0000000000000ull);
}
