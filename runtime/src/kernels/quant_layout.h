//===- quant_layout.h - reading model_abi.h's packed weights ----*- C++ -*-===//
//
// The unsigned 4- and 8-bit weights and zero points of kiln_matmul_quant_fn
// (runtime/include/kiln/model_abi.h): the problem both quantized kernels
// solve, and its values read one at a time, as their tails and generic
// paths do.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_KERNELS_QUANT_LAYOUT_H
#define KILN_RUNTIME_KERNELS_QUANT_LAYOUT_H

#include <cstdint>

namespace kiln::kernels {

/// C[m][n] = A[m][k] * W^T for W [n][k] of `bits`-bit values with a scale
/// and a zero point (or none: the implied 2^(bits-1)) per group of K.
struct QuantProblem {
  const float *a;
  int64_t lda;
  const uint8_t *w;
  const float *scales;
  const uint8_t *zp;
  float *c;
  int64_t ldc, m, n, k, group, bits;
  int64_t groupsPerRow; ///< k / group
  int64_t rowBytes;     ///< bytes of one row of W

  QuantProblem(const float *a, int64_t lda, const uint8_t *w,
               const float *scales, const uint8_t *zp, float *c, int64_t ldc,
               int64_t m, int64_t n, int64_t k, int64_t group, int64_t bits)
      : a(a), lda(lda), w(w), scales(scales), zp(zp), c(c), ldc(ldc), m(m),
        n(n), k(k), group(group), bits(bits),
        groupsPerRow(k > 0 ? k / group : 0),
        rowBytes(k > 0 ? (bits == 4 ? k / 2 : k) : 0) {}
};

/// Element `index` of an array of `bits`-bit values, 4-bit ones two per
/// byte, low nibble first.
inline __attribute__((always_inline)) int unpackQ(const uint8_t *packed,
                                                  int64_t index, int64_t bits) {
  if (bits == 8)
    return packed[index];
  return (packed[index >> 1] >> ((index & 1) * 4)) & 15;
}

/// The zero point of (row, group g): stored, or the implied 2^(bits-1).
inline __attribute__((always_inline)) int zeroPoint(const QuantProblem &p,
                                                    int64_t row, int64_t g) {
  if (!p.zp)
    return p.bits == 4 ? 8 : 128;
  return unpackQ(p.zp, row * p.groupsPerRow + g, p.bits);
}

/// The quantized value of W[row][kk].
inline __attribute__((always_inline)) int weightQ(const QuantProblem &p,
                                                  int64_t row, int64_t kk) {
  return unpackQ(p.w + row * p.rowBytes, kk, p.bits);
}

} // namespace kiln::kernels

#endif // KILN_RUNTIME_KERNELS_QUANT_LAYOUT_H
