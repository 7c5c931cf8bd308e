//===- KernelsQuantA8Test.cpp - matmul_quant_a8 against MLAS's formulas ---===//
//
// matmulQuantA8F32 must compute what onnxruntime's MatMulNBits computes at
// accuracy_level 4 (MLAS SQNBIT_CompInt8). The reference here is written
// from MLAS's formulas (matmul_quant_a8.cpp quotes them): A quantized per row
// and block with scale amax / 127, multiplier 127 / amax and round half to
// even, integer block dot products with q - zp, fp32 block scales. Every
// Int8Dot and Isa this CPU supports runs, plus the C entry point, without
// a pool and on a pool of 2 threads. C starts as NaN with a sentinel in the
// padding between rows.
//
// KernelsBench.DISABLED_QuantA8 prints GFLOP/s against matmulQuantF32; run
// it with --gtest_also_run_disabled_tests --gtest_filter='KernelsBench.*A8*'.
//
//===----------------------------------------------------------------------===//

#include "runtime/src/kernels/kernels.h"
#include "runtime/src/threadpool.h"
#include "test/unit/runtime/KernelsTestSupport.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

using kiln::ThreadPool;
using kiln::kernels::Int8Dot;
using kiln::kernels::Isa;
using namespace kiln::test;

namespace {

/// One row of A as MLAS quantizes it (QuantizeARowComputeBlkSum_CompInt8):
/// per block, scale = amax / 127 and q = round_half_even(a * (127 / amax)),
/// both in fp32.
struct QuantRow {
  std::vector<int> q;
  std::vector<float> scale;
};

QuantRow quantizeRow(const float *a, int64_t k, int64_t group) {
  QuantRow r;
  r.q.resize(k);
  for (int64_t k0 = 0; k0 < k; k0 += group) {
    float amax = 0.0f;
    for (int64_t kk = k0; kk < k0 + group; ++kk)
      amax = std::max(amax, std::fabs(a[kk]));
    const float scale = amax / 127.0f;
    const float inv = amax != 0.0f ? 127.0f / amax : 0.0f;
    for (int64_t kk = k0; kk < k0 + group; ++kk) {
      const float product = a[kk] * inv;
      r.q[kk] = static_cast<int>(std::nearbyint(product));
    }
    r.scale.push_back(scale);
  }
  return r;
}

/// C[i][j] = sum_b float(sa_b * sw_b) * sum_{k in b} qa_k * (q_k - zp_b) in
/// double, and sum_b |sa_b * sw_b| * sum |qa_k * (q_k - zp_b)|, the
/// magnitude fp32 rounding scales with.
void referenceA8(const std::vector<float> &a, int64_t lda, const QuantWeight &w,
                 int64_t m, std::vector<double> &ref,
                 std::vector<double> &magnitude) {
  ref.assign(m * w.n, 0.0);
  magnitude.assign(m * w.n, 0.0);
  for (int64_t i = 0; i < m; ++i) {
    QuantRow r = quantizeRow(a.data() + i * lda, w.k, w.group);
    for (int64_t j = 0; j < w.n; ++j) {
      double sum = 0, mag = 0;
      for (int64_t b = 0; b < w.groupsPerRow(); ++b) {
        int64_t d = 0, dAbs = 0;
        for (int64_t kk = b * w.group; kk < (b + 1) * w.group; ++kk) {
          const int64_t t = int64_t{r.q[kk]} * w.centered(j, kk);
          d += t;
          dAbs += t < 0 ? -t : t;
        }
        const float s = r.scale[b] * w.scale(j, b);
        sum += static_cast<double>(s) * static_cast<double>(d);
        mag += std::fabs(static_cast<double>(s)) * static_cast<double>(dAbs);
      }
      ref[i * w.n + j] = sum;
      magnitude[i * w.n + j] = mag;
    }
  }
}

/// A way to call the kernel: an explicit Int8Dot, an Isa, or the C entry
/// point (which dispatches on this CPU's best Isa).
struct Variant {
  std::string name;
  std::function<void(ThreadPool *, const float *, int64_t, const QuantWeight &,
                     float *, int64_t, int64_t)>
      run;
};

std::vector<Variant> variants() {
  std::vector<Variant> v;
  for (Int8Dot dot : {Int8Dot::Portable, Int8Dot::Avx2, Int8Dot::AvxVnni,
                      Int8Dot::Avx512Vnni}) {
    if (!kiln::kernels::int8DotSupported(dot))
      continue;
    v.push_back({std::string("int8dot=") + kiln::kernels::int8DotName(dot),
                 [dot](ThreadPool *pool, const float *a, int64_t lda,
                       const QuantWeight &w, float *c, int64_t ldc, int64_t m) {
                   kiln::kernels::matmulQuantA8F32(
                       dot, pool, a, lda, w.q.data(), w.scales.data(),
                       w.zeroPointData(), c, ldc, m, w.n, w.k, w.group, w.bits);
                 }});
  }
  for (Isa isa : {Isa::Portable, Isa::Avx2, Isa::Avx512}) {
    if (!kiln::kernels::isaSupported(isa))
      continue;
    v.push_back({std::string("isa=") + kiln::kernels::isaName(isa),
                 [isa](ThreadPool *pool, const float *a, int64_t lda,
                       const QuantWeight &w, float *c, int64_t ldc, int64_t m) {
                   kiln::kernels::matmulQuantA8F32(
                       isa, pool, a, lda, w.q.data(), w.scales.data(),
                       w.zeroPointData(), c, ldc, m, w.n, w.k, w.group, w.bits);
                 }});
  }
  v.push_back({"dispatched",
               [](ThreadPool *pool, const float *a, int64_t lda,
                  const QuantWeight &w, float *c, int64_t ldc, int64_t m) {
                 kiln_matmul_quant_a8_f32(pool, a, lda, w.q.data(),
                                          w.scales.data(), w.zeroPointData(), c,
                                          ldc, m, w.n, w.k, w.group, w.bits);
               }});
  return v;
}

std::string describe(const QuantWeight &w, int64_t m,
                     const std::string &label) {
  return label + " bits=" + std::to_string(w.bits) +
         " group=" + std::to_string(w.group) +
         " zp=" + (w.hasZeroPoints ? "yes" : "no") + " M=" + std::to_string(m) +
         " N=" + std::to_string(w.n) + " K=" + std::to_string(w.k);
}

/// Runs every variant without a pool and on a pool of 2 threads with rows
/// of A and C `pad` floats longer than K and N, against referenceA8. The
/// error allowed is 1e-5 of the magnitude: fp32 sums stay far below, a
/// wrong scale, zero point or block moves a result by about 1/K of it.
void checkA8(const QuantWeight &w, int64_t m, int64_t pad, std::mt19937 &rng,
             const std::string &label, float aScale = 1.0f) {
  static ThreadPool pool2(2);
  ThreadPool *pools[] = {nullptr, &pool2};
  const int64_t lda = w.k + pad, ldc = w.n + pad;
  std::vector<float> a = randomFloats(m * lda, rng, -aScale, aScale);
  std::vector<double> ref, magnitude;
  referenceA8(a, lda, w, m, ref, magnitude);
  for (const Variant &v : variants())
    for (ThreadPool *pool : pools) {
      std::vector<float> c(m * ldc, kSentinel);
      for (int64_t i = 0; i < m; ++i)
        std::fill(c.begin() + i * ldc, c.begin() + i * ldc + w.n, kNaN);
      v.run(pool, a.data(), lda, w, c.data(), ldc, m);
      const std::string what =
          v.name + " " + describe(w, m, label) +
          " threads=" + std::to_string(pool ? pool->numThreads() : 0);
      int64_t bad = 0;
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < w.n; ++j) {
          const double want = ref[i * w.n + j], mag = magnitude[i * w.n + j];
          const float got = c[i * ldc + j];
          if (!(std::fabs(got - want) <= 1e-5 * mag + 1e-30) && bad++ < 5)
            ADD_FAILURE() << what << ": C[" << i << "][" << j << "] = " << got
                          << ", expected " << want << " (magnitude " << mag
                          << ")";
        }
        for (int64_t j = w.n; j < ldc && i + 1 < m; ++j)
          if (c[i * ldc + j] != kSentinel && bad++ < 5)
            ADD_FAILURE() << what << ": padding C[" << i << "][" << j
                          << "] overwritten";
      }
    }
}

TEST(KernelsQuantA8, MatchesMlasReferenceAcrossShapes) {
  // M of the GEMV path (1, 3) and of the panel path with ragged row tiles
  // (17, 128); N not a multiple of any tile (37); K of three groups (an
  // odd number per row, so rows of 4-bit zero points start mid-byte) and
  // of one model's hidden size.
  std::mt19937 rng(21);
  for (int64_t bits : {4, 8})
    for (bool zp : {false, true})
      for (int64_t group : {16, 32, 64, 128})
        for (int64_t k : {3 * group, int64_t{576}}) {
          if (k % group != 0)
            continue;
          QuantWeight w =
              makeQuantWeight(37, k, group, bits, zp, QuantFill::Random, rng);
          for (int64_t m : {1, 3, 17, 128})
            checkA8(w, m, 3, rng, "sweep");
        }
}

TEST(KernelsQuantA8, EveryGemvRowCountAndRowTail) {
  // M = 1..5 crosses the GEMV path's tiles and its limit; N = 1..9 crosses
  // its 4-, 2- and 1-row tiles and the 8-row thread units.
  std::mt19937 rng(22);
  for (int64_t bits : {4, 8})
    for (bool zp : {false, true})
      for (int64_t n : {1, 2, 5, 9}) {
        QuantWeight w =
            makeQuantWeight(n, 192, 32, bits, zp, QuantFill::Random, rng);
        for (int64_t m = 1; m <= 5; ++m)
          checkA8(w, m, 1, rng, "gemv");
      }
}

TEST(KernelsQuantA8, OddSmallAndLargeGroups) {
  // Groups below a vector (4, 8), no divisor of a vector step (12, 48),
  // the generic path (6, 2), and large ones: 512 and 1024 have block sums
  // beyond 16 bits (the panel's wide correction) and blocks longer than a
  // panel (split across panel chunks).
  std::mt19937 rng(23);
  struct Case {
    int64_t group, k;
  };
  const Case cases[] = {{4, 40}, {8, 96},    {12, 132},   {48, 240},   {6, 42},
                        {2, 18}, {256, 512}, {512, 1024}, {1024, 2048}};
  for (const Case &t : cases)
    for (int64_t bits : {4, 8})
      for (bool zp : {false, true}) {
        QuantWeight w =
            makeQuantWeight(19, t.k, t.group, bits, zp, QuantFill::Random, rng);
        for (int64_t m : {1, 4, 9})
          checkA8(w, m, 2, rng, "group");
      }
}

TEST(KernelsQuantA8, ChunksOfA) {
  // A larger than the quantized-A buffer: chunks along K (whole blocks)
  // and along M (more than 256 rows), each a pass that adds into C; and a
  // block longer than the whole buffer, which chunks split (GEMV at M = 2,
  // panel at M = 5).
  std::mt19937 rng(24);
  struct Case {
    int64_t m, n, k, group, bits;
  };
  const Case cases[] = {{300, 21, 1024, 32, 4},
                        {40, 18, 8192, 64, 8},
                        {2, 5, 266240, 266240, 4},
                        {5, 3, 266240, 266240, 8}};
  for (const Case &t : cases) {
    QuantWeight w = makeQuantWeight(t.n, t.k, t.group, t.bits, true,
                                    QuantFill::Random, rng);
    checkA8(w, t.m, 1, rng, "chunks");
  }
}

TEST(KernelsQuantA8, RowsDoNotDependOnTheBatch) {
  // Serving batches decode tokens with prompt chunks: a row must come out
  // bit for bit the same at any M, through the GEMV path (M <= 4), the
  // panel path and the generic one, with A chunked along K (K = 1536 at
  // 256 rows) and along M (300 rows), with and without a pool.
  std::mt19937 rng(27);
  static ThreadPool pool2(2);
  struct Case {
    int64_t n, k, group, bits;
    bool zp;
  };
  const Case cases[] = {{70, 576, 32, 4, false},    {70, 1536, 32, 4, false},
                        {45, 512, 16, 4, true},     {45, 1024, 64, 8, false},
                        {38, 768, 128, 4, true},    {38, 1536, 256, 8, true},
                        {21, 2048, 1024, 4, false}, {19, 132, 12, 4, false},
                        {19, 42, 6, 8, true}};
  for (const Case &t : cases) {
    QuantWeight w = makeQuantWeight(t.n, t.k, t.group, t.bits, t.zp,
                                    QuantFill::Random, rng);
    const int64_t maxM = 300;
    std::vector<float> a = randomFloats(maxM * t.k, rng);
    for (const Variant &v : variants())
      for (ThreadPool *pool : {static_cast<ThreadPool *>(nullptr), &pool2}) {
        std::vector<float> alone(maxM * t.n);
        for (int64_t i = 0; i < maxM; ++i)
          v.run(pool, a.data() + i * t.k, t.k, w, alone.data() + i * t.n, t.n,
                1);
        for (int64_t m : {2, 3, 4, 5, 7, 37, 300}) {
          std::vector<float> batched(m * t.n);
          v.run(pool, a.data(), t.k, w, batched.data(), t.n, m);
          for (int64_t i = 0; i < m; ++i)
            if (std::memcmp(alone.data() + i * t.n, batched.data() + i * t.n,
                            t.n * sizeof(float)) != 0) {
              ADD_FAILURE()
                  << v.name << " " << describe(w, m, "batch")
                  << " threads=" << (pool ? pool->numThreads() : 0) << ": row "
                  << i << " differs from the row computed alone";
              break;
            }
        }
      }
  }
}

TEST(KernelsQuantA8, TinyAndHugeActivations) {
  // The quantization is scale-free: activations of 1e-30 or 1e30 give the
  // same q, and the result scales with them (no overflow or flush to 0).
  std::mt19937 rng(25);
  QuantWeight w =
      makeQuantWeight(20, 256, 32, 4, false, QuantFill::Random, rng);
  for (float aScale : {1e-30f, 1e30f})
    for (int64_t m : {1, 20})
      checkA8(w, m, 0, rng, aScale < 1 ? "tiny" : "huge", aScale);
}

TEST(KernelsQuantA8, QuantizesAsMlasOnExactData) {
  // Everything here is exact in fp32: A's block maxima are 127 / 64 (scale
  // 1/64, multiplier 64) so a * 64 is the intended fractional value, and W
  // reads one element of qa back per row: row j has q = zp + 1 at k = j and
  // q = zp elsewhere, scale 1/8. C[j] is then exactly qa_j / 512, which
  // shows the rounding (half to even: 2.5 -> 2, 3.5 -> 4, -2.5 -> -2), the
  // block scales (an all-zero block has q 0) and the block boundaries. The
  // last block's maximum is one where MLAS's multiplier 127 / amax and
  // 1 / scale differ in the last bit, and round two values differently.
  const int64_t group = 32, k = 128, n = 128;
  std::vector<float> a(k, 0.0f), want(n, 0.0f);
  const float vals[] = {127.0f, 2.5f,  3.5f,   -2.5f,   -3.5f, 0.5f,  -0.5f,
                        1.5f,   1.49f, 100.4f, -100.6f, 0.25f, 126.5f};
  const int expect[] = {127, 2, 4, -2, -4, 0, 0, 2, 1, 100, -101, 0, 126};
  for (int i = 0; i < 13; ++i) {
    a[i] = vals[i] / 64.0f;
    want[i] = static_cast<float>(expect[i]) / 512.0f;
  }
  // Block 1: the maximum is negative; a smaller maximum (scale 1/128).
  a[32] = -127.0f / 128.0f;
  want[32] = -127.0f / 1024.0f;
  a[33] = 63.5f / 128.0f; // 63.5 -> 64 (even)
  want[33] = 64.0f / 1024.0f;
  a[34] = 64.5f / 128.0f; // 64.5 -> 64 (even)
  want[34] = 64.0f / 1024.0f;
  // Block 2 (k = 64..95) is all zero. Block 3: amax 1.12553298 with
  // 127 / amax = 112.835..., 1 / (amax / 127) one ulp below; x * 127 / amax
  // is 1.5 and 2.50000024 (q 2 and 3), x / scale 1.49999988 and 2.5 (1, 2).
  auto fromBits = [](uint32_t bits) {
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  };
  const float amax = fromBits(0x3f901177), scale3 = amax / 127.0f;
  a[96] = amax;
  a[97] = fromBits(0x3c59cdce);
  a[98] = fromBits(0x3cb580d7);
  want[96] = 127.0f * (scale3 * 0.125f);
  want[97] = 2.0f * (scale3 * 0.125f);
  want[98] = 3.0f * (scale3 * 0.125f);
  for (int64_t bits : {4, 8})
    for (bool zp : {false, true}) {
      QuantWeight w{n, k, group, bits, zp, {}, {}, {}};
      const int z = zp ? 3 : 1 << (bits - 1);
      w.q.assign((n * k * bits + 7) / 8 + 1, 0);
      for (int64_t j = 0; j < n; ++j)
        for (int64_t kk = 0; kk < k; ++kk)
          w.pack(w.q, j * k + kk, kk == j ? z + 1 : z);
      w.scales.assign(n * (k / group), 0.125f);
      if (zp) {
        w.zeroPoints.assign((n * (k / group) * bits + 7) / 8 + 1, 0);
        for (int64_t i = 0; i < n * (k / group); ++i)
          w.pack(w.zeroPoints, i, z);
      }
      for (const Variant &v : variants())
        for (int64_t m : {1, 6}) {
          // Every row of A the same, so the GEMV and panel paths both run.
          std::vector<float> am(m * k);
          for (int64_t i = 0; i < m; ++i)
            std::copy(a.begin(), a.end(), am.begin() + i * k);
          std::vector<float> c(m * n, kNaN);
          v.run(nullptr, am.data(), k, w, c.data(), n, m);
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j)
              ASSERT_EQ(c[i * n + j], want[j])
                  << v.name << " bits=" << bits << " zp=" << zp << " M=" << m
                  << " C[" << i << "][" << j << "]";
        }
    }
}

TEST(KernelsQuantA8, DiffersFromFp32ByInt8RoundingOnly) {
  // Against matmulQuantF32 (A in fp32), the int8 rounding of A moves each
  // result by sum_k (a_k - sa * qa_k) * w_k: at most
  // sum_b sa_b / 2 * sum_{k in b} |w_k|, and for uniform rounding errors
  // about sqrt(sum_b sa_b^2 / 12 * sum w_k^2). The mean difference must be
  // near that: it would be ~0 if A were not quantized, and larger with a
  // wrong scale or rounding.
  std::mt19937 rng(26);
  struct Case {
    int64_t m, n, k, group, bits;
    bool zp;
  };
  const Case cases[] = {{1, 1536, 576, 32, 4, false},
                        {128, 96, 576, 32, 4, false},
                        {3, 200, 1536, 32, 4, true},
                        {17, 64, 512, 128, 8, true}};
  for (const Case &t : cases) {
    QuantWeight w = makeQuantWeight(t.n, t.k, t.group, t.bits, t.zp,
                                    QuantFill::Random, rng);
    std::vector<float> a = randomFloats(t.m * t.k, rng);
    std::vector<float> f32(t.m * t.n);
    for (Isa isa : {Isa::Portable, Isa::Avx2, Isa::Avx512}) {
      if (!kiln::kernels::isaSupported(isa))
        continue;
      std::vector<float> a8(t.m * t.n);
      kiln::kernels::matmulQuantF32(
          isa, nullptr, a.data(), t.k, w.q.data(), w.scales.data(),
          w.zeroPointData(), f32.data(), t.n, t.m, t.n, t.k, t.group, t.bits);
      kiln::kernels::matmulQuantA8F32(
          isa, nullptr, a.data(), t.k, w.q.data(), w.scales.data(),
          w.zeroPointData(), a8.data(), t.n, t.m, t.n, t.k, t.group, t.bits);
      double diffSum = 0, rmsSum = 0, worst = 0, worstRelative = 0, cMax = 0;
      int64_t bad = 0;
      for (int64_t i = 0; i < t.m; ++i) {
        QuantRow r = quantizeRow(a.data() + i * t.k, t.k, t.group);
        for (int64_t j = 0; j < t.n; ++j) {
          double bound = 0, variance = 0, magnitude = 0;
          for (int64_t b = 0; b < t.k / t.group; ++b) {
            double absW = 0, sqW = 0;
            for (int64_t kk = b * t.group; kk < (b + 1) * t.group; ++kk) {
              const double wk =
                  static_cast<double>(w.centered(j, kk)) * w.scale(j, b);
              absW += std::fabs(wk);
              sqW += wk * wk;
              magnitude += std::fabs(wk * a[i * t.k + kk]);
            }
            bound += 0.5 * r.scale[b] * absW;
            variance += r.scale[b] * r.scale[b] / 12.0 * sqW;
          }
          const double diff = std::fabs(static_cast<double>(a8[i * t.n + j]) -
                                        f32[i * t.n + j]);
          worst = std::max(worst, diff);
          worstRelative = std::max(worstRelative, diff / magnitude);
          cMax =
              std::max(cMax, std::fabs(static_cast<double>(f32[i * t.n + j])));
          diffSum += diff;
          rmsSum += std::sqrt(variance);
          if (!(diff <= bound * 1.0001 + 1e-5 * magnitude) && bad++ < 5)
            ADD_FAILURE() << kiln::kernels::isaName(isa) << " M=" << t.m
                          << " K=" << t.k << " C[" << i << "][" << j
                          << "] differs from fp32 by " << diff
                          << ", more than int8 rounding allows (" << bound
                          << ")";
        }
      }
      // |x| of a normal x averages sqrt(2 / pi) = 0.8 of its RMS.
      const double ratio = diffSum / rmsSum;
      EXPECT_GT(ratio, 0.4)
          << kiln::kernels::isaName(isa) << " M=" << t.m << " K=" << t.k;
      EXPECT_LT(ratio, 1.6)
          << kiln::kernels::isaName(isa) << " M=" << t.m << " K=" << t.k;
      std::printf("a8 vs fp32 (%s, M=%lld N=%lld K=%lld q%lld g%lld%s, A "
                  "uniform in [-1, 1]): max |diff| %.3g (max |C| %.3g), max "
                  "|diff| / sum |a * w| %.3g, mean |diff| / expected %.2f\n",
                  kiln::kernels::isaName(isa), (long long)t.m, (long long)t.n,
                  (long long)t.k, (long long)t.bits, (long long)t.group,
                  t.zp ? " zp" : "", worst, cMax, worstRelative, ratio);
    }
  }
}

TEST(KernelsQuantA8, EmptyKWritesZerosAndEmptyMOrNTouchesNothing) {
  for (const Variant &v : variants()) {
    QuantWeight w{5, 0, 32, 4, false, {0}, {}, {1.0f}};
    std::vector<float> c(3 * 5, kNaN);
    float a = 0;
    v.run(nullptr, &a, 0, w, c.data(), 5, 3);
    for (float x : c)
      EXPECT_EQ(x, 0.0f) << v.name;
    QuantWeight w2{1, 32, 32, 4, false, std::vector<uint8_t>(16), {}, {1.0f}};
    float one = kSentinel, a2[32] = {};
    v.run(nullptr, a2, 32, w2, &one, 1, 0);
    w2.n = 0;
    v.run(nullptr, a2, 32, w2, &one, 1, 1);
    EXPECT_EQ(one, kSentinel) << v.name;
  }
}

//===----------------------------------------------------------------------===//
// Benchmarks
//===----------------------------------------------------------------------===//

/// Seconds per call of `fn`: the best of 5 rounds of enough calls to last
/// ~50 ms.
template <typename Fn> double timePerCall(Fn &&fn) {
  using Clock = std::chrono::steady_clock;
  fn();
  auto start = Clock::now();
  int64_t calls = 0;
  while (Clock::now() - start < std::chrono::milliseconds(20)) {
    fn();
    ++calls;
  }
  int64_t perRound = std::max<int64_t>(1, calls * 5 / 2);
  double best = INFINITY;
  for (int round = 0; round < 5; ++round) {
    auto t0 = Clock::now();
    for (int64_t i = 0; i < perRound; ++i)
      fn();
    best = std::min(best,
                    std::chrono::duration<double>(Clock::now() - t0).count() /
                        perRound);
  }
  return best;
}

TEST(KernelsBench, DISABLED_QuantA8) {
  // 4-bit weights in groups of 32 without zero points (the ORT GenAI int4
  // layout), hot in cache. matmulQuantF32 runs with the Isa the Int8Dot
  // belongs to.
  std::mt19937 rng(1);
  struct Gemm {
    const char *name;
    int64_t m, n, k;
  };
  const Gemm gemms[] = {
      {"GEMV   1 x 576 x 1536", 1, 1536, 576},
      {"GEMV   1 x 1536 x 576", 1, 576, 1536},
      {"GEMV   4 x 576 x 1536", 4, 1536, 576},
      {"GEMM  16 x 576 x 1536", 16, 1536, 576},
      {"GEMM 128 x 576 x 1536", 128, 1536, 576},
      {"GEMM 128 x 1536 x 576", 128, 576, 1536},
      {"GEMM 512 x 576 x 1536", 512, 1536, 576},
  };
  for (Int8Dot dot : {Int8Dot::Portable, Int8Dot::Avx2, Int8Dot::AvxVnni,
                      Int8Dot::Avx512Vnni}) {
    if (!kiln::kernels::int8DotSupported(dot))
      continue;
    const Isa isa = dot == Int8Dot::Avx512Vnni ? Isa::Avx512
                    : dot == Int8Dot::Portable ? Isa::Portable
                                               : Isa::Avx2;
    for (int threads : {1, 2}) {
      ThreadPool pool(threads);
      for (const Gemm &g : gemms) {
        QuantWeight w =
            makeQuantWeight(g.n, g.k, 32, 4, false, QuantFill::Random, rng);
        std::vector<float> a = randomFloats(g.m * g.k, rng);
        std::vector<float> c(g.m * g.n);
        const double a8 = timePerCall([&] {
          kiln::kernels::matmulQuantA8F32(dot, &pool, a.data(), g.k, w.q.data(),
                                          w.scales.data(), nullptr, c.data(),
                                          g.n, g.m, g.n, g.k, 32, 4);
        });
        const double f32 = timePerCall([&] {
          kiln::kernels::matmulQuantF32(isa, &pool, a.data(), g.k, w.q.data(),
                                        w.scales.data(), nullptr, c.data(), g.n,
                                        g.m, g.n, g.k, 32, 4);
        });
        const double flop = 2.0 * g.m * g.n * g.k;
        std::printf("%-10s %d thr  q4 g32 %-22s (M x K x N)  a8 %8.1f us "
                    "%7.1f GFLOP/s   f32(%s) %8.1f us %7.1f GFLOP/s  %5.2fx\n",
                    kiln::kernels::int8DotName(dot), threads, g.name, a8 * 1e6,
                    flop / a8 * 1e-9, kiln::kernels::isaName(isa), f32 * 1e6,
                    flop / f32 * 1e-9, f32 / a8);
      }
    }
  }
}

} // namespace
