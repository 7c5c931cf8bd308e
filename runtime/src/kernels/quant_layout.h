//===- quant_layout.h - reading model_abi.h's packed weights ----*- C++ -*-===//
//
// The unsigned 4- and 8-bit weights and zero points of kiln_matmul_quant_fn
// (runtime/include/kiln/model_abi.h), read one value at a time: what both
// quantized kernels use for their tails and generic paths. `P` is a kernel's
// problem struct with the fields w, zp, bits, groupsPerRow and rowBytes.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_KERNELS_QUANT_LAYOUT_H
#define KILN_RUNTIME_KERNELS_QUANT_LAYOUT_H

#include <cstdint>

namespace kiln::kernels {

/// Element `index` of an array of `bits`-bit values, 4-bit ones two per
/// byte, low nibble first.
inline __attribute__((always_inline)) int unpackQ(const uint8_t *packed,
                                                  int64_t index, int64_t bits) {
  if (bits == 8)
    return packed[index];
  return (packed[index >> 1] >> ((index & 1) * 4)) & 15;
}

/// The zero point of (row, group g): stored, or the implied 2^(bits-1).
template <typename P>
inline __attribute__((always_inline)) int zeroPoint(const P &p, int64_t row,
                                                    int64_t g) {
  if (!p.zp)
    return p.bits == 4 ? 8 : 128;
  return unpackQ(p.zp, row * p.groupsPerRow + g, p.bits);
}

/// The quantized value of W[row][kk].
template <typename P>
inline __attribute__((always_inline)) int weightQ(const P &p, int64_t row,
                                                  int64_t kk) {
  return unpackQ(p.w + row * p.rowBytes, kk, p.bits);
}

} // namespace kiln::kernels

#endif // KILN_RUNTIME_KERNELS_QUANT_LAYOUT_H
