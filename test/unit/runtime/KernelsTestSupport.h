//===- KernelsTestSupport.h - what the kernel tests share -------*- C++ -*-===//
//
// Random data, the instruction sets to run, and a quantized weight packed
// as model_abi.h lays it out, for KernelsTest.cpp and KernelsQuantA8Test.cpp.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TEST_UNIT_RUNTIME_KERNELSTESTSUPPORT_H
#define KILN_TEST_UNIT_RUNTIME_KERNELSTESTSUPPORT_H

#include "runtime/src/kernels/kernels.h"

#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace kiln::test {

inline const float kNaN = std::numeric_limits<float>::quiet_NaN();
inline const float kSentinel = 12345.0f;

/// Every Isa this CPU supports, portable first.
inline std::vector<kernels::Isa> supportedIsas() {
  std::vector<kernels::Isa> isas;
  for (kernels::Isa isa :
       {kernels::Isa::Portable, kernels::Isa::Avx2, kernels::Isa::Avx512})
    if (kernels::isaSupported(isa))
      isas.push_back(isa);
  return isas;
}

inline std::vector<float> randomFloats(size_t n, std::mt19937 &rng,
                                       float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float &x : v)
    x = dist(rng);
  return v;
}

/// How a test fills the quantized weight and its zero points.
enum class QuantFill {
  Random,       ///< random q, scales and (with zero points) zero points
  ZeroPointMin, ///< random q, every zero point 0
  ZeroPointMax, ///< random q, every zero point 15 / 255
};

/// A [N][K] weight of `bits`-bit integers packed as model_abi.h lays it
/// out, with its scales and (unless `hasZeroPoints` is false) zero points.
struct QuantWeight {
  int64_t n, k, group, bits;
  bool hasZeroPoints;
  std::vector<uint8_t> q, zeroPoints;
  std::vector<float> scales;

  int64_t groupsPerRow() const { return k / group; }
  int maxQ() const { return (1 << bits) - 1; }

  /// Element `index` of a packed array of `bits`-bit values.
  int unpack(const std::vector<uint8_t> &packed, int64_t index) const {
    if (bits == 8)
      return packed[index];
    return (packed[index / 2] >> (index % 2 * 4)) & 15;
  }
  void pack(std::vector<uint8_t> &packed, int64_t index, int value) {
    if (bits == 8) {
      packed[index] = static_cast<uint8_t>(value);
      return;
    }
    uint8_t &byte = packed[index / 2];
    int shift = index % 2 * 4;
    byte = static_cast<uint8_t>((byte & ~(15 << shift)) | (value << shift));
  }

  int zeroPoint(int64_t row, int64_t g) const {
    if (!hasZeroPoints)
      return 1 << (bits - 1);
    return unpack(zeroPoints, row * groupsPerRow() + g);
  }
  /// q - zp of W[row][col].
  int centered(int64_t row, int64_t col) const {
    return unpack(q, row * k + col) - zeroPoint(row, col / group);
  }
  float scale(int64_t row, int64_t g) const {
    return scales[row * groupsPerRow() + g];
  }
  /// W[row][col] as the contract defines it, computed in fp32.
  float weight(int64_t row, int64_t col) const {
    return static_cast<float>(centered(row, col)) * scale(row, col / group);
  }
  const uint8_t *zeroPointData() const {
    return hasZeroPoints ? zeroPoints.data() : nullptr;
  }
};

inline QuantWeight makeQuantWeight(int64_t n, int64_t k, int64_t group,
                                   int64_t bits, bool hasZeroPoints,
                                   QuantFill fill, std::mt19937 &rng) {
  QuantWeight w{n, k, group, bits, hasZeroPoints, {}, {}, {}};
  int64_t values = n * k, groups = n * w.groupsPerRow();
  // Packed arrays get a spare byte of garbage past the end: a kernel that
  // reads the next nibble or row mixes it into the result.
  w.q.assign((values * bits + 7) / 8 + 1, 0xA5);
  std::uniform_int_distribution<int> anyQ(0, w.maxQ());
  for (int64_t i = 0; i < values; ++i)
    w.pack(w.q, i, anyQ(rng));
  w.scales = randomFloats(groups, rng, 0.002f, 0.05f);
  // Some negative scales.
  for (size_t i = 0; i < w.scales.size(); i += 3)
    w.scales[i] = -w.scales[i];
  if (hasZeroPoints) {
    w.zeroPoints.assign((groups * bits + 7) / 8 + 1, 0x5A);
    for (int64_t i = 0; i < groups; ++i)
      w.pack(w.zeroPoints, i,
             fill == QuantFill::ZeroPointMin   ? 0
             : fill == QuantFill::ZeroPointMax ? w.maxQ()
                                               : anyQ(rng));
  }
  return w;
}

} // namespace kiln::test

#endif // KILN_TEST_UNIT_RUNTIME_KERNELSTESTSUPPORT_H
