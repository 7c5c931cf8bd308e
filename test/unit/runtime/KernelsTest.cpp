//===- KernelsTest.cpp - CPU kernels and thread pool against references ---===//
//
// Every kernel runs on every instruction set this CPU supports (portable is
// always among them) and through the dispatched table, single-threaded and
// on a pool, and is compared with a naive double-precision reference.
// Outputs start as NaN, so a kernel that accumulates into C or skips an
// element fails; padding between rows holds a sentinel that must survive.
// The paged cache starts as NaN too, so reading a row the step did not
// write (or another layer's) shows up in the output.
//
// KernelsBench.* is disabled by default; run it with
// --gtest_also_run_disabled_tests --gtest_filter='KernelsBench.*'.
//
//===----------------------------------------------------------------------===//

#include "runtime/src/kernels/kernels.h"
#include "runtime/src/threadpool.h"
#include "test/unit/runtime/KernelsTestSupport.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

using kiln::ThreadPool;
using kiln::kernels::Isa;
using namespace kiln::test;

namespace {

//===----------------------------------------------------------------------===//
// Thread pool
//===----------------------------------------------------------------------===//

TEST(KernelsThreadPool, CoversEveryIndexOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.numThreads(), threads);
    for (int64_t n : {0, 1, 2, 3, 7, 64, 1000, 4097}) {
      for (int64_t chunk : {0, 1, 5, 100000}) {
        std::vector<std::atomic<int>> hits(n);
        pool.parallelFor(
            n,
            [&](int64_t b, int64_t e) {
              ASSERT_LE(0, b);
              ASSERT_LT(b, e);
              ASSERT_LE(e, n);
              for (int64_t i = b; i < e; ++i)
                hits[i].fetch_add(1);
            },
            chunk);
        for (int64_t i = 0; i < n; ++i)
          ASSERT_EQ(hits[i].load(), 1) << "threads " << threads << " n " << n
                                       << " chunk " << chunk << " index " << i;
      }
    }
  }
}

TEST(KernelsThreadPool, DefaultSplitIsOneRangePerThread) {
  ThreadPool pool(3);
  std::mutex mutex;
  std::vector<std::pair<int64_t, int64_t>> ranges;
  pool.parallelFor(10, [&](int64_t b, int64_t e) {
    std::lock_guard<std::mutex> lock(mutex);
    ranges.emplace_back(b, e);
  });
  std::sort(ranges.begin(), ranges.end());
  std::vector<std::pair<int64_t, int64_t>> expected = {{0, 4}, {4, 8}, {8, 10}};
  EXPECT_EQ(ranges, expected);
}

TEST(KernelsThreadPool, WorkersTakePart) {
  ThreadPool pool(3);
  std::mutex mutex;
  std::set<std::thread::id> ids;
  // Chunks long enough that sleeping workers wake before the caller could
  // run them all.
  pool.parallelFor(
      60,
      [&](int64_t, int64_t) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        std::lock_guard<std::mutex> lock(mutex);
        ids.insert(std::this_thread::get_id());
      },
      1);
  EXPECT_EQ(ids.size(), 3u);
}

TEST(KernelsThreadPool, PoolOfOneRunsInline) {
  ThreadPool pool(1);
  std::thread::id caller = std::this_thread::get_id();
  int calls = 0;
  pool.parallelFor(
      100,
      [&](int64_t b, int64_t e) {
        EXPECT_EQ(std::this_thread::get_id(), caller);
        EXPECT_EQ(b, 0);
        EXPECT_EQ(e, 100);
        ++calls;
      },
      1);
  EXPECT_EQ(calls, 1);
}

TEST(KernelsThreadPool, ManySmallJobsWithAndWithoutSpinning) {
  // spinMicros 0: workers sleep after every job, so each job goes through
  // the wake-up path; a lost wake-up would hang here.
  for (int spin : {0, ThreadPool::kDefaultSpinMicros}) {
    ThreadPool pool(3, spin);
    std::vector<int64_t> data(64);
    int64_t expected = 0;
    for (int iter = 0; iter < 5000; ++iter) {
      pool.parallelFor(
          static_cast<int64_t>(data.size()),
          [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i)
              data[i] += i;
          },
          iter % 3 == 0 ? 0 : 7);
      expected += 63 * 64 / 2;
    }
    EXPECT_EQ(std::accumulate(data.begin(), data.end(), int64_t{0}), expected)
        << "spin " << spin;
  }
}

TEST(KernelsThreadPool, NestedAndConcurrentCallsComplete) {
  ThreadPool pool(3);
  std::atomic<int64_t> sum{0};
  // Nested: runs inline inside the outer job.
  pool.parallelFor(
      6,
      [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i)
          pool.parallelFor(10, [&](int64_t b2, int64_t e2) {
            for (int64_t j = b2; j < e2; ++j)
              sum.fetch_add(j);
          });
      },
      1);
  EXPECT_EQ(sum.load(), 6 * 45);

  // Two outside threads share the pool: one of them may run inline.
  std::atomic<int64_t> total{0};
  auto hammer = [&] {
    for (int iter = 0; iter < 2000; ++iter)
      pool.parallelFor(
          50,
          [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i)
              total.fetch_add(1);
          },
          4);
  };
  std::thread other(hammer);
  hammer();
  other.join();
  EXPECT_EQ(total.load(), 2 * 2000 * 50);
}

//===----------------------------------------------------------------------===//
// Dispatch and table
//===----------------------------------------------------------------------===//

TEST(KernelsTable, DescribesItself) {
  const kiln_kernels *table = kiln_cpu_kernels();
  ASSERT_NE(table, nullptr);
  EXPECT_EQ(table->abi_version, static_cast<uint32_t>(KILN_MODEL_ABI_VERSION));
  EXPECT_EQ(table->size, sizeof(kiln_kernels));
  EXPECT_EQ(table->matmul_f32, &kiln_matmul_f32);
  EXPECT_EQ(table->attention_paged_f32, &kiln_attention_paged_f32);
  EXPECT_EQ(table->matmul_bt_f32, &kiln_matmul_bt_f32);
  EXPECT_EQ(table->matmul_quant_f32, &kiln_matmul_quant_f32);
  EXPECT_EQ(table->matmul_packed_f32, &kiln_matmul_packed_f32);
  EXPECT_EQ(table->matmul_quant_a8_f32, &kiln_matmul_quant_a8_f32);
  EXPECT_STREQ(kiln_cpu_kernels_isa(),
               kiln::kernels::isaName(kiln::kernels::activeIsa()));
  // ctest also runs these tests with KILN_KERNELS=portable.
  if (const char *forced = std::getenv("KILN_KERNELS"))
    EXPECT_STREQ(kiln_cpu_kernels_isa(), forced);
}

TEST(KernelsTable, SelectIsaHonoursSupportedOverrides) {
  Isa best = supportedIsas().back();
  EXPECT_EQ(kiln::kernels::selectIsa(nullptr), best);
  EXPECT_EQ(kiln::kernels::selectIsa("no-such-isa"), best);
  EXPECT_EQ(kiln::kernels::selectIsa(""), best);
  EXPECT_EQ(kiln::kernels::selectIsa("portable"), Isa::Portable);
  for (Isa isa : {Isa::Avx2, Isa::Avx512})
    EXPECT_EQ(kiln::kernels::selectIsa(kiln::kernels::isaName(isa)),
              kiln::kernels::isaSupported(isa) ? isa : best);
}

//===----------------------------------------------------------------------===//
// Matmul
//===----------------------------------------------------------------------===//

struct MatmulShape {
  int64_t m, n, k;
};

/// Shapes around every blocking boundary: GEMV (M = 1) with K around its
/// 8-row sweeps and N around its 64-wide tiles and 8 / 16-wide tails;
/// microkernel row counts 1..8 and beyond, N tails against 8 / 16 / 32 wide
/// panels, K = 1 and K across the 256-deep K blocks.
const MatmulShape kMatmulShapes[] = {
    {1, 1, 1},      {1, 7, 3},      {1, 16, 16},  {1, 17, 5},    {1, 100, 1},
    {1, 64, 8},     {1, 65, 9},     {1, 33, 7},   {1, 129, 33},  {1, 200, 257},
    {1, 300, 17},   {1, 1536, 576}, {2, 33, 17},  {3, 5, 300},   {4, 8, 8},
    {5, 47, 31},    {6, 16, 1},     {7, 13, 13},  {8, 32, 256},  {9, 33, 513},
    {13, 31, 257},  {17, 1, 9},     {33, 70, 2},  {64, 200, 96}, {100, 50, 70},
    {128, 96, 600}, {7, 300, 40},   {2, 4000, 3},
};

/// C (ldc apart, NaN before the call) against a double reference; the pad
/// columns between rows must still hold kSentinel.
void expectMatmul(const std::vector<float> &a, int64_t lda,
                  const std::vector<float> &b, bool bTransposed,
                  const std::vector<float> &c, int64_t ldc,
                  const MatmulShape &s, const std::string &what) {
  double tol = 1e-5 * std::sqrt(static_cast<double>(std::max<int64_t>(s.k, 1)));
  int64_t bad = 0;
  for (int64_t i = 0; i < s.m; ++i) {
    for (int64_t j = 0; j < s.n; ++j) {
      double ref = 0;
      for (int64_t p = 0; p < s.k; ++p)
        ref += static_cast<double>(a[i * lda + p]) *
               (bTransposed ? b[j * s.k + p] : b[p * s.n + j]);
      float got = c[i * ldc + j];
      if (!(std::fabs(got - ref) <= tol * std::max(1.0, std::fabs(ref))) &&
          bad++ < 5)
        ADD_FAILURE() << what << ": C[" << i << "][" << j << "] = " << got
                      << ", expected " << ref;
    }
    for (int64_t j = s.n; j < ldc && i + 1 < s.m; ++j)
      if (c[i * ldc + j] != kSentinel && bad++ < 5)
        ADD_FAILURE() << what << ": padding C[" << i << "][" << j
                      << "] overwritten";
  }
}

using MatmulFn = void (*)(Isa, ThreadPool *, const float *, int64_t,
                          const float *, float *, int64_t, int64_t, int64_t,
                          int64_t);

/// How a matmul kernel reads its [K][N] B.
enum class BLayout { RowMajor, Transposed, Panels };

/// B ([K][N] row-major) in model_abi.h's KILN_PANEL_COLUMNS panels. The
/// padding columns are NaN rather than the zeros kilnc writes: no valid
/// output may depend on them.
std::vector<float> packPanels(const std::vector<float> &b, int64_t k,
                              int64_t n) {
  const int64_t w = KILN_PANEL_COLUMNS, panels = (n + w - 1) / w;
  std::vector<float> packed(panels * k * w, kNaN);
  for (int64_t p = 0; p < k; ++p)
    for (int64_t j = 0; j < n; ++j)
      packed[(j / w) * k * w + p * w + j % w] = b[p * n + j];
  return packed;
}

/// Runs `fn` with every supported Isa, and the dispatched `tableFn`, over
/// all shapes, with and without row padding, without a pool and on pools of
/// 1 and 3 threads.
void checkMatmulShapes(MatmulFn fn, decltype(kiln_kernels::matmul_f32) tableFn,
                       BLayout layout) {
  bool bTransposed = layout == BLayout::Transposed;
  std::mt19937 rng(42);
  ThreadPool pool1(1), pool3(3);
  ThreadPool *pools[] = {nullptr, &pool1, &pool3};
  std::vector<Isa> isas = supportedIsas();
  for (const MatmulShape &s : kMatmulShapes) {
    for (int64_t pad : {0, 3}) {
      int64_t lda = s.k + pad, ldc = s.n + pad;
      std::vector<float> a = randomFloats(s.m * lda, rng);
      std::vector<float> b = randomFloats(s.k * s.n, rng);
      std::vector<float> given =
          layout == BLayout::Panels ? packPanels(b, s.k, s.n) : b;
      for (ThreadPool *pool : pools) {
        // One entry per Isa, then the dispatched table function.
        for (size_t variant = 0; variant <= isas.size(); ++variant) {
          std::vector<float> c(s.m * ldc, kSentinel);
          for (int64_t i = 0; i < s.m; ++i)
            std::fill(c.begin() + i * ldc, c.begin() + i * ldc + s.n, kNaN);
          std::string what =
              std::string(variant < isas.size()
                              ? kiln::kernels::isaName(isas[variant])
                              : "dispatched") +
              " M=" + std::to_string(s.m) + " N=" + std::to_string(s.n) +
              " K=" + std::to_string(s.k) + " pad=" + std::to_string(pad) +
              " threads=" + std::to_string(pool ? pool->numThreads() : 0);
          if (variant < isas.size())
            fn(isas[variant], pool, a.data(), lda, given.data(), c.data(), ldc,
               s.m, s.n, s.k);
          else
            tableFn(pool, a.data(), lda, given.data(), c.data(), ldc, s.m, s.n,
                    s.k);
          expectMatmul(a, lda, b, bTransposed, c, ldc, s, what);
        }
      }
    }
  }
}

TEST(KernelsMatmul, MatchesReferenceOnEveryShape) {
  checkMatmulShapes(kiln::kernels::matmulF32, kiln_cpu_kernels()->matmul_f32,
                    BLayout::RowMajor);
}

TEST(KernelsMatmul, TransposedBMatchesReferenceOnEveryShape) {
  checkMatmulShapes(kiln::kernels::matmulBtF32,
                    kiln_cpu_kernels()->matmul_bt_f32, BLayout::Transposed);
}

TEST(KernelsMatmul, PackedBMatchesReferenceOnEveryShape) {
  checkMatmulShapes(kiln::kernels::matmulPackedF32,
                    kiln_cpu_kernels()->matmul_packed_f32, BLayout::Panels);
}

// A row of C is the same bits whatever the number of rows around it, with
// packed B and with transposed B (the lm_head): what makes a sequence's
// greedy output independent of the batch it runs in.
TEST(KernelsMatmul, RowsDoNotDependOnTheBatch) {
  std::mt19937 rng(7);
  const int64_t n = 300, k = 600;
  std::vector<float> b = randomFloats(k * n, rng);
  std::vector<float> packed = packPanels(b, k, n);
  ThreadPool pool2(2);
  for (Isa isa : supportedIsas()) {
    for (auto [fn, bp] : {std::pair<MatmulFn, const float *>(
                              kiln::kernels::matmulPackedF32, packed.data()),
                          {kiln::kernels::matmulBtF32, b.data()}}) {
      std::vector<float> a = randomFloats(37 * k, rng);
      std::vector<float> alone(n), batched(37 * n);
      fn(isa, &pool2, a.data(), k, bp, batched.data(), n, 37, n, k);
      for (int64_t row : {0, 5, 17, 36}) {
        fn(isa, &pool2, a.data() + row * k, k, bp, alone.data(), n, 1, n, k);
        EXPECT_EQ(0, std::memcmp(alone.data(), batched.data() + row * n,
                                 n * sizeof(float)))
            << kiln::kernels::isaName(isa) << " row " << row;
      }
    }
  }
}

TEST(KernelsMatmul, EmptyKWritesZeros) {
  for (Isa isa : supportedIsas()) {
    for (MatmulFn fn : {MatmulFn(kiln::kernels::matmulF32),
                        MatmulFn(kiln::kernels::matmulBtF32),
                        MatmulFn(kiln::kernels::matmulPackedF32)}) {
      std::vector<float> c(3 * 5, kNaN);
      float a = 0, b = 0;
      fn(isa, nullptr, &a, 0, &b, c.data(), 5, 3, 5, 0);
      for (float x : c)
        EXPECT_EQ(x, 0.0f) << kiln::kernels::isaName(isa);
    }
  }
}

TEST(KernelsMatmul, EmptyMOrNTouchesNothing) {
  for (Isa isa : supportedIsas()) {
    float a[4] = {1, 2, 3, 4}, b[4] = {1, 2, 3, 4}, c = kSentinel;
    kiln::kernels::matmulF32(isa, nullptr, a, 2, b, &c, 1, 0, 1, 2);
    kiln::kernels::matmulF32(isa, nullptr, a, 2, b, &c, 1, 1, 0, 2);
    kiln::kernels::matmulBtF32(isa, nullptr, a, 2, b, &c, 1, 0, 1, 2);
    EXPECT_EQ(c, kSentinel) << kiln::kernels::isaName(isa);
  }
}

//===----------------------------------------------------------------------===//
// Quantized matmul
//===----------------------------------------------------------------------===//

struct QuantShape {
  int64_t m, n, k;
};

/// C (ldc apart, NaN before the call) against a double-precision reference
/// over the fp32 dequantized weight. The error allowed is 1e-5 of
/// sum |a * w| over the dot product: fp32 rounding stays far below it
/// (about 1e-6 measured), while one wrong weight, scale or zero point moves
/// a result by about |a * w| of its k, which is 1/K of that sum. Pad
/// columns between rows must still hold kSentinel.
void expectQuantMatmul(const std::vector<float> &a, int64_t lda,
                       const QuantWeight &w, const std::vector<float> &c,
                       int64_t ldc, int64_t m, const std::string &what) {
  std::vector<float> dense(w.n * w.k);
  for (int64_t j = 0; j < w.n; ++j)
    for (int64_t p = 0; p < w.k; ++p)
      dense[j * w.k + p] = w.weight(j, p);
  int64_t bad = 0;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < w.n; ++j) {
      double ref = 0, magnitude = 0;
      for (int64_t p = 0; p < w.k; ++p) {
        double term = static_cast<double>(a[i * lda + p]) * dense[j * w.k + p];
        ref += term;
        magnitude += std::fabs(term);
      }
      float got = c[i * ldc + j];
      if (!(std::fabs(got - ref) <= 1e-5 * magnitude + 1e-30) && bad++ < 5)
        ADD_FAILURE() << what << ": C[" << i << "][" << j << "] = " << got
                      << ", expected " << ref << " (sum |a*w| " << magnitude
                      << ")";
    }
    for (int64_t j = w.n; j < ldc && i + 1 < m; ++j)
      if (c[i * ldc + j] != kSentinel && bad++ < 5)
        ADD_FAILURE() << what << ": padding C[" << i << "][" << j
                      << "] overwritten";
  }
}

/// Runs every supported Isa and the dispatched table function, without a
/// pool and on a pool of 2 threads, with rows of A and C `pad` floats
/// longer than K and N.
void checkQuantMatmul(const QuantWeight &w, int64_t m, int64_t pad,
                      std::mt19937 &rng, const std::string &label) {
  static ThreadPool pool2(2);
  ThreadPool *pools[] = {nullptr, &pool2};
  std::vector<Isa> isas = supportedIsas();
  int64_t lda = w.k + pad, ldc = w.n + pad;
  std::vector<float> a = randomFloats(m * lda, rng);
  for (ThreadPool *pool : pools) {
    for (size_t variant = 0; variant <= isas.size(); ++variant) {
      std::vector<float> c(m * ldc, kSentinel);
      for (int64_t i = 0; i < m; ++i)
        std::fill(c.begin() + i * ldc, c.begin() + i * ldc + w.n, kNaN);
      std::string what =
          std::string(variant < isas.size()
                          ? kiln::kernels::isaName(isas[variant])
                          : "dispatched") +
          " " + label + " bits=" + std::to_string(w.bits) +
          " group=" + std::to_string(w.group) +
          " zp=" + (w.hasZeroPoints ? "yes" : "no") +
          " M=" + std::to_string(m) + " N=" + std::to_string(w.n) +
          " K=" + std::to_string(w.k) + " pad=" + std::to_string(pad) +
          " threads=" + std::to_string(pool ? pool->numThreads() : 0);
      if (variant < isas.size())
        kiln::kernels::matmulQuantF32(
            isas[variant], pool, a.data(), lda, w.q.data(), w.scales.data(),
            w.zeroPointData(), c.data(), ldc, m, w.n, w.k, w.group, w.bits);
      else
        kiln_cpu_kernels()->matmul_quant_f32(
            pool, a.data(), lda, w.q.data(), w.scales.data(), w.zeroPointData(),
            c.data(), ldc, m, w.n, w.k, w.group, w.bits);
      expectQuantMatmul(a, lda, w, c, ldc, m, what);
    }
  }
}

TEST(KernelsQuantMatmul, BatchInvariantPoolMakesRowsIndependentOfTheBatch) {
  // On a batch-invariant pool (what the scheduler's engine runs on), a row
  // of A gives the same bits alone (decode) as inside any batch; groups of
  // 16 (AVX2 steps) and 32 (AVX-512 steps), both bit widths, K in several
  // 128-k panel chunks.
  std::mt19937 rng(11);
  ThreadPool pool2(2);
  pool2.setBatchInvariant(true);
  for (Isa isa : supportedIsas())
    for (int64_t bits : {4, 8})
      for (int64_t group : {16, 32}) {
        const int64_t n = 72, k = group * 18, m = 37;
        QuantWeight w =
            makeQuantWeight(n, k, group, bits, true, QuantFill::Random, rng);
        std::vector<float> a = randomFloats(m * k, rng);
        std::vector<float> batched(m * n);
        kiln::kernels::matmulQuantF32(isa, &pool2, a.data(), k, w.q.data(),
                                      w.scales.data(), w.zeroPointData(),
                                      batched.data(), n, m, n, k, group, bits);
        for (int64_t rows : {int64_t(1), int64_t(3), int64_t(8), int64_t(9)})
          for (int64_t row : {int64_t(0), m - rows}) {
            std::vector<float> c(rows * n);
            kiln::kernels::matmulQuantF32(
                isa, &pool2, a.data() + row * k, k, w.q.data(), w.scales.data(),
                w.zeroPointData(), c.data(), n, rows, n, k, group, bits);
            EXPECT_EQ(0, std::memcmp(c.data(), batched.data() + row * n,
                                     rows * n * sizeof(float)))
                << kiln::kernels::isaName(isa) << " bits=" << bits
                << " group=" << group << " rows " << row << ".."
                << row + rows - 1;
          }
      }
}

TEST(KernelsQuantMatmul, MatchesReferenceAcrossShapesAndGroups) {
  // Every M the fused (decode) path specializes, 1..8, and the panel path
  // beyond; N around the 2-, 4- and 8-row tiles and the 8-row thread units;
  // K of one group and of three (an odd number of groups per row, so rows
  // of 4-bit zero points start mid-byte).
  std::mt19937 rng(7);
  for (int64_t bits : {4, 8})
    for (int64_t group : {16, 32, 64, 128})
      for (bool zp : {false, true})
        for (int64_t groups : {1, 3})
          for (int64_t n : {1, 3, 17, 67}) {
            QuantWeight w = makeQuantWeight(n, group * groups, group, bits, zp,
                                            QuantFill::Random, rng);
            for (int64_t m : {1, 2, 3, 4, 5, 6, 7, 8, 9, 17})
              checkQuantMatmul(w, m, 3, rng, "sweep");
          }
}

TEST(KernelsQuantMatmul, ZeroPointExtremes) {
  std::mt19937 rng(8);
  for (int64_t bits : {4, 8})
    for (QuantFill fill : {QuantFill::ZeroPointMin, QuantFill::ZeroPointMax})
      for (int64_t group : {16, 32, 128}) {
        QuantWeight w =
            makeQuantWeight(19, 3 * group, group, bits, true, fill, rng);
        for (int64_t m : {1, 2, 5, 8, 13})
          checkQuantMatmul(w, m, 5, rng,
                           fill == QuantFill::ZeroPointMin ? "zp-min"
                                                           : "zp-max");
      }
}

TEST(KernelsQuantMatmul, DecodeShape) {
  // SmolLM2's MLP up-projection at decode: one token, N = 1536, K = 576.
  std::mt19937 rng(9);
  for (int64_t bits : {4, 8})
    for (bool zp : {false, true}) {
      QuantWeight w =
          makeQuantWeight(1536, 576, 32, bits, zp, QuantFill::Random, rng);
      checkQuantMatmul(w, 1, 0, rng, "decode");
    }
}

TEST(KernelsQuantMatmul, LongKAndLargeGroups) {
  // K beyond one even/odd copy of A (the fused 4-bit path then makes
  // several passes that add into C) and beyond one 2048-deep panel block;
  // groups too large for that copy, which take the panel path.
  std::mt19937 rng(10);
  struct Case {
    int64_t m, n, k, group, bits;
  };
  const Case cases[] = {
      {8, 33, 2304, 32, 4},   {3, 20, 4608, 128, 4}, {8, 9, 2304, 64, 8},
      {17, 12, 2304, 32, 4},  {40, 10, 2304, 16, 8}, {8, 5, 4096, 2048, 4},
      {1, 11, 8192, 8192, 4}, {2, 7, 2048, 1024, 8},
  };
  for (const Case &t : cases)
    for (bool zp : {false, true}) {
      QuantWeight w = makeQuantWeight(t.n, t.k, t.group, t.bits, zp,
                                      QuantFill::Random, rng);
      checkQuantMatmul(w, t.m, 1, rng, "long-k");
    }
}

TEST(KernelsQuantMatmul, PrefillShapes) {
  // M beyond the fused path: the dequantized panel and its 4 x 4 / 2 x 4
  // tiles with row tails, and K with a tail shorter than a vector.
  std::mt19937 rng(11);
  struct Case {
    int64_t m, n, k, group, bits;
  };
  const Case cases[] = {
      {128, 96, 576, 32, 4}, {67, 45, 192, 64, 8}, {33, 17, 18, 2, 4},
      {10, 31, 40, 8, 8},    {9, 8, 6, 6, 4},
  };
  for (const Case &t : cases)
    for (bool zp : {false, true}) {
      QuantWeight w = makeQuantWeight(t.n, t.k, t.group, t.bits, zp,
                                      QuantFill::Random, rng);
      checkQuantMatmul(w, t.m, 3, rng, "prefill");
    }
}

TEST(KernelsQuantMatmul, SmallGroupsAtDecode) {
  // Groups that are no whole vector step (2, 6, 8, 48): every path must
  // still apply the right scale to every k.
  std::mt19937 rng(12);
  for (int64_t bits : {4, 8})
    for (int64_t group : {2, 6, 8, 48})
      for (int64_t m : {1, 4}) {
        QuantWeight w = makeQuantWeight(21, group * 5, group, bits, true,
                                        QuantFill::Random, rng);
        checkQuantMatmul(w, m, 2, rng, "small-group");
      }
}

TEST(KernelsQuantMatmul, EmptyKWritesZerosAndEmptyMOrNTouchesNothing) {
  for (Isa isa : supportedIsas()) {
    std::vector<float> c(3 * 5, kNaN);
    float a = 0, scale = 1;
    uint8_t q = 0;
    kiln::kernels::matmulQuantF32(isa, nullptr, &a, 0, &q, &scale, nullptr,
                                  c.data(), 5, 3, 5, 0, 32, 4);
    for (float x : c)
      EXPECT_EQ(x, 0.0f) << kiln::kernels::isaName(isa);
    float one = kSentinel;
    float a2[32] = {};
    uint8_t q2[16] = {};
    kiln::kernels::matmulQuantF32(isa, nullptr, a2, 32, q2, &scale, nullptr,
                                  &one, 1, 0, 1, 32, 32, 4);
    kiln::kernels::matmulQuantF32(isa, nullptr, a2, 32, q2, &scale, nullptr,
                                  &one, 1, 1, 0, 32, 32, 4);
    EXPECT_EQ(one, kSentinel) << kiln::kernels::isaName(isa);
  }
}

TEST(KernelsQuantMatmul, HandWorkedExample) {
  // W = [[(1 - 8) * 0.5, (15 - 8) * 0.5], [(0 - 3) * 2, (9 - 3) * 2]] with
  // one group per row and zero points 8 / 3 in one byte: q bytes 0xF1 and
  // 0x90, zero points 0x38. A = [1, 2]: C = [-3.5 + 7, -6 + 24] = [3.5, 18].
  const uint8_t q[2] = {0xF1, 0x90}, zp[1] = {0x38};
  const float scales[2] = {0.5f, 2.0f}, a[2] = {1.0f, 2.0f};
  for (Isa isa : supportedIsas()) {
    float c[2] = {kNaN, kNaN};
    kiln::kernels::matmulQuantF32(isa, nullptr, a, 2, q, scales, zp, c, 2, 1, 2,
                                  2, 2, 4);
    EXPECT_EQ(c[0], 3.5f) << kiln::kernels::isaName(isa);
    EXPECT_EQ(c[1], 18.0f) << kiln::kernels::isaName(isa);
  }
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

/// How q, k, v and out are laid out in memory.
enum class Layout {
  TokenMajor, ///< [T][H][D]
  HeadMajor,  ///< [H][T][D]
  Padded,     ///< [T][H][D + 5]
};

struct AttentionCase {
  std::string name;
  int64_t qHeads, kvHeads, headDim, blockSize;
  /// Per sequence: positions already cached, then new tokens this step.
  std::vector<std::pair<int64_t, int64_t>> seqs;
  float scale = 0.125f;
  float softcap = 0.0f;
  Layout layout = Layout::TokenMajor;
  int64_t window = -1;     ///< sliding window (keys pos - window .. pos)
  float qMagnitude = 1.0f; ///< q in [-qMagnitude, qMagnitude]
  /// Rotary embedding done by the kernel (0: none); rot_flags.
  int64_t rotaryDim = 0, rotFlags = 0;
};

/// Strides and size of a [heads] x [tokens] x [headDim] tensor.
struct Strides {
  int64_t head, token, size;
};

Strides stridesFor(Layout layout, int64_t heads, int64_t tokens, int64_t d) {
  switch (layout) {
  case Layout::TokenMajor:
    return {d, heads * d, tokens * heads * d};
  case Layout::HeadMajor:
    return {tokens * d, d, heads * tokens * d};
  case Layout::Padded:
    return {d + 5, heads * (d + 5), tokens * heads * (d + 5)};
  }
  return {};
}

/// A step over a NaN-filled paged cache whose blocks are handed out to
/// sequences in a shuffled order, plus dense copies of every sequence's
/// keys and values to compute the reference from.
class AttentionFixture {
public:
  static constexpr int64_t kLayers = 3, kLayer = 1;

  AttentionFixture(const AttentionCase &c, uint32_t seed) : c_(c), rng_(seed) {
    const int64_t numSeqs = static_cast<int64_t>(c.seqs.size());
    int64_t d = c.headDim;
    for (auto [before, fresh] : c.seqs) {
      int64_t len = before + fresh;
      lens_.push_back(static_cast<int32_t>(len));
      blocksPerSeq_.push_back((len + c.blockSize - 1) / c.blockSize);
      maxBlocks_ = std::max(maxBlocks_, blocksPerSeq_.back() + 1);
      denseK_.push_back(randomFloats(c.kvHeads * len * d, rng_));
      denseV_.push_back(randomFloats(c.kvHeads * len * d, rng_));
      for (int64_t i = 0; i < fresh; ++i) {
        tokenSeq_.push_back(static_cast<int32_t>(lens_.size() - 1));
        positions_.push_back(before + i);
      }
    }
    // Shuffled blocks plus spares that no sequence owns; unused table
    // entries point nowhere.
    int64_t used =
        std::accumulate(blocksPerSeq_.begin(), blocksPerSeq_.end(), int64_t{0});
    numBlocks_ = used + 3;
    std::vector<int32_t> ids(numBlocks_);
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng_);
    tables_.assign(numSeqs * maxBlocks_, -1);
    int64_t next = 0;
    for (int64_t s = 0; s < numSeqs; ++s)
      for (int64_t bIdx = 0; bIdx < blocksPerSeq_[s]; ++bIdx)
        tables_[s * maxBlocks_ + bIdx] = ids[next++];
    cache_.assign(numBlocks_ * kLayers * 2 * blockFloats(), kNaN);

    // The cached past of each sequence, written the way the ABI lays it
    // out.
    for (int64_t s = 0; s < numSeqs; ++s)
      for (int64_t pos = 0; pos < c.seqs[s].first; ++pos)
        for (int64_t g = 0; g < c.kvHeads; ++g) {
          std::copy_n(&denseK_[s][(g * lens_[s] + pos) * d], d,
                      cacheRow(s, pos, g, 0));
          std::copy_n(&denseV_[s][(g * lens_[s] + pos) * d], d,
                      cacheRow(s, pos, g, 1));
        }

    int64_t tokens = static_cast<int64_t>(positions_.size());
    qs_ = stridesFor(c.layout, c.qHeads, tokens, d);
    kvs_ = stridesFor(c.layout, c.kvHeads, tokens, d);
    q_ = randomFloats(qs_.size, rng_, -c.qMagnitude, c.qMagnitude);
    k_.assign(kvs_.size, kNaN);
    v_.assign(kvs_.size, kNaN);
    for (int64_t t = 0; t < tokens; ++t) {
      int64_t s = tokenSeq_[t], pos = positions_[t];
      for (int64_t g = 0; g < c.kvHeads; ++g) {
        std::copy_n(&denseK_[s][(g * lens_[s] + pos) * d], d,
                    &k_[g * kvs_.head + t * kvs_.token]);
        std::copy_n(&denseV_[s][(g * lens_[s] + pos) * d], d,
                    &v_[g * kvs_.head + t * kvs_.token]);
      }
    }
    if (c.rotaryDim > 0)
      setUpRotary();
    tokenIds_.assign(tokens, 0);

    step_ = {};
    step_.num_tokens = tokens;
    step_.token_ids = tokenIds_.data();
    step_.positions = positions_.data();
    step_.token_seq = tokenSeq_.data();
    step_.num_seqs = numSeqs;
    step_.seq_lens = lens_.data();
    step_.block_tables = tables_.data();
    step_.max_blocks_per_seq = maxBlocks_;
    step_.kv_cache = cache_.data();
  }

  int64_t tokens() const { return step_.num_tokens; }

  /// Runs the kernel (isa, or the dispatched one when null) and returns out.
  std::vector<float> run(const Isa *isa, ThreadPool *pool) {
    std::vector<float> out(qs_.size, kSentinel);
    for (int64_t t = 0; t < tokens(); ++t)
      for (int64_t h = 0; h < c_.qHeads; ++h)
        std::fill_n(&out[h * qs_.head + t * qs_.token], c_.headDim, kNaN);
    launch(isa, pool, out);
    return out;
  }

  /// Runs the kernel into `out`, which must be qs_.size floats.
  void launch(const Isa *isa, ThreadPool *pool, std::vector<float> &out) {
    step_.pool = pool;
    out.resize(qs_.size);
    const float *cosTable = c_.rotaryDim ? cos_.data() : nullptr;
    const float *sinTable = c_.rotaryDim ? sin_.data() : nullptr;
    kiln::kernels::AttentionArgs args{
        &step_,       kLayer,       kLayers,   c_.qHeads,  c_.kvHeads,
        c_.headDim,   c_.blockSize, c_.scale,  c_.softcap, c_.window,
        q_.data(),    qs_.head,     qs_.token, k_.data(),  kvs_.head,
        kvs_.token,   v_.data(),    kvs_.head, kvs_.token, out.data(),
        qs_.head,     qs_.token,    cosTable,  sinTable,   rotStride_,
        c_.rotaryDim, c_.rotFlags};
    if (isa)
      kiln::kernels::attentionPagedF32(*isa, args);
    else
      kiln_cpu_kernels()->attention_paged_f32(
          &step_, kLayer, kLayers, c_.qHeads, c_.kvHeads, c_.headDim,
          c_.blockSize, c_.scale, c_.softcap, c_.window, q_.data(), qs_.head,
          qs_.token, k_.data(), kvs_.head, kvs_.token, v_.data(), kvs_.head,
          kvs_.token, out.data(), qs_.head, qs_.token, cosTable, sinTable,
          rotStride_, c_.rotaryDim, c_.rotFlags);
  }

  /// Compares `out` with softmax attention over the dense keys and values.
  void expectOutput(const std::vector<float> &out, const std::string &what) {
    int64_t d = c_.headDim, group = c_.qHeads / c_.kvHeads, bad = 0;
    for (int64_t t = 0; t < tokens(); ++t) {
      int64_t s = tokenSeq_[t], pos = positions_[t];
      for (int64_t h = 0; h < c_.qHeads; ++h) {
        int64_t g = h / group;
        std::vector<double> q(q_.begin() + h * qs_.head + t * qs_.token,
                              q_.begin() + h * qs_.head + t * qs_.token + d);
        if (c_.rotaryDim)
          q = rotateRow(q, t, 1.0);
        // Keys before the window weigh nothing.
        int64_t first =
            c_.window >= 0 ? std::max<int64_t>(0, pos - c_.window) : 0;
        std::vector<double> scores(pos + 1, -INFINITY);
        double maxScore = -INFINITY;
        for (int64_t j = first; j <= pos; ++j) {
          const float *key = &denseK_[s][(g * lens_[s] + j) * d];
          double dot = 0;
          for (int64_t i = 0; i < d; ++i)
            dot += q[i] * key[i];
          double score = c_.scale * dot;
          if (c_.softcap > 0)
            score = c_.softcap * std::tanh(score / c_.softcap);
          scores[j] = score;
          maxScore = std::max(maxScore, score);
        }
        double sum = 0;
        for (double &x : scores)
          sum += x = std::exp(x - maxScore);
        for (int64_t i = 0; i < d; ++i) {
          double ref = 0;
          for (int64_t j = first; j <= pos; ++j)
            ref += scores[j] * denseV_[s][(g * lens_[s] + j) * d + i];
          ref /= sum;
          float got = out[h * qs_.head + t * qs_.token + i];
          if (!(std::fabs(got - ref) <= 2e-5) && bad++ < 5)
            ADD_FAILURE() << what << ": out[h=" << h << "][t=" << t
                          << "][d=" << i << "] = " << got << ", expected "
                          << ref;
        }
      }
    }
    // Nothing written outside the rows.
    std::vector<char> inRow(out.size(), 0);
    for (int64_t t = 0; t < tokens(); ++t)
      for (int64_t h = 0; h < c_.qHeads; ++h)
        std::fill_n(inRow.begin() + h * qs_.head + t * qs_.token, d, 1);
    for (size_t i = 0; i < out.size(); ++i) {
      if (!inRow[i] && out[i] != kSentinel && bad++ < 5)
        ADD_FAILURE() << what << ": out[" << i << "] outside every row written";
    }
  }

  /// After a run: every position of every sequence holds its dense key and
  /// value, and nothing else in the cache was written.
  void expectCache(const std::string &what) {
    std::vector<char> owned(cache_.size(), 0);
    int64_t d = c_.headDim, bad = 0;
    for (size_t s = 0; s < lens_.size(); ++s)
      for (int64_t pos = 0; pos < lens_[s]; ++pos)
        for (int64_t g = 0; g < c_.kvHeads; ++g)
          for (int kv = 0; kv < 2; ++kv) {
            const float *row = cacheRow(s, pos, g, kv);
            const float *want =
                &(kv ? denseV_ : denseK_)[s][(g * lens_[s] + pos) * d];
            // A rotated key is the kernel's rounding of the reference's.
            float tolerance = c_.rotaryDim && kv == 0 ? 1e-6f : 0.0f;
            if (!std::equal(row, row + d, want,
                            [&](float x, float y) {
                              return std::fabs(x - y) <= tolerance;
                            }) &&
                bad++ < 5)
              ADD_FAILURE() << what << ": cache row of seq " << s << " pos "
                            << pos << " kv head " << g
                            << (kv ? " (value)" : " (key)") << " wrong";
            std::fill_n(owned.begin() + (row - cache_.data()), d, 1);
          }
    for (size_t i = 0; i < cache_.size(); ++i)
      if (!owned[i] && !std::isnan(cache_[i]) && bad++ < 5)
        ADD_FAILURE() << what << ": cache float " << i
                      << " written though no row of the step owns it";
  }

private:
  int64_t blockFloats() const { return c_.kvHeads * c_.blockSize * c_.headDim; }

  /// Pairs (i, i + rotary_dim / 2), or (2i, 2i + 1) interleaved.
  std::pair<int64_t, int64_t> rotaryPair(int64_t i) const {
    if (c_.rotFlags & KILN_ROTARY_INTERLEAVED)
      return {2 * i, 2 * i + 1};
    return {i, i + c_.rotaryDim / 2};
  }

  /// `x` rotated by token t's angles, or by their negatives (direction -1).
  std::vector<double> rotateRow(std::vector<double> x, int64_t t,
                                double direction) const {
    int64_t r = c_.rotFlags & KILN_ROTARY_BY_POSITION ? positions_[t] : t;
    for (int64_t i = 0; i < c_.rotaryDim / 2; ++i) {
      auto [a, b] = rotaryPair(i);
      double co = cos_[r * rotStride_ + i];
      double si = direction * sin_[r * rotStride_ + i];
      double xa = x[a], xb = x[b];
      x[a] = xa * co - xb * si;
      x[b] = xb * co + xa * si;
    }
    return x;
  }

  /// Cos/sin tables with a row per token (or per position) and padded
  /// rows; the step's keys become the dense keys rotated back, so that the
  /// kernel's rotation must restore them.
  void setUpRotary() {
    int64_t half = c_.rotaryDim / 2, d = c_.headDim;
    rotStride_ = half + 3;
    int64_t rows = static_cast<int64_t>(positions_.size());
    if (c_.rotFlags & KILN_ROTARY_BY_POSITION)
      rows = *std::max_element(lens_.begin(), lens_.end());
    cos_.assign(rows * rotStride_, kNaN);
    sin_.assign(rows * rotStride_, kNaN);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < half; ++i) {
        // Angles as RoPE makes them, offset per row so that rows differ
        // even where the token index and the position coincide.
        double angle = (r * 1.3 + 0.7) * std::pow(10000.0, -2.0 * i / d);
        cos_[r * rotStride_ + i] = static_cast<float>(std::cos(angle));
        sin_[r * rotStride_ + i] = static_cast<float>(std::sin(angle));
      }
    for (size_t t = 0; t < positions_.size(); ++t) {
      int64_t s = tokenSeq_[t], pos = positions_[t];
      for (int64_t g = 0; g < c_.kvHeads; ++g) {
        const float *dense = &denseK_[s][(g * lens_[s] + pos) * d];
        std::vector<double> back =
            rotateRow(std::vector<double>(dense, dense + d), t, -1.0);
        for (int64_t i = 0; i < d; ++i)
          k_[g * kvs_.head + t * kvs_.token + i] = static_cast<float>(back[i]);
      }
    }
  }

  /// Where the ABI puts (seq, pos, kv head) of layer kLayer; kv 0 is the
  /// key, 1 the value.
  float *cacheRow(int64_t s, int64_t pos, int64_t g, int kv) {
    int64_t block = tables_[s * maxBlocks_ + pos / c_.blockSize];
    return cache_.data() +
           ((block * kLayers + kLayer) * 2 + kv) * blockFloats() +
           (g * c_.blockSize + pos % c_.blockSize) * c_.headDim;
  }

  AttentionCase c_;
  std::mt19937 rng_;
  std::vector<int32_t> lens_, tokenSeq_, tables_;
  std::vector<int64_t> blocksPerSeq_, positions_, tokenIds_;
  int64_t maxBlocks_ = 1, numBlocks_ = 0;
  std::vector<std::vector<float>> denseK_, denseV_;
  std::vector<float> cache_, q_, k_, v_, cos_, sin_;
  int64_t rotStride_ = 0;
  Strides qs_{}, kvs_{};
  kiln_step_args step_{};
};

/// Every case on every Isa and the dispatched table, without a pool and on
/// one of 3 threads; each run starts from a fresh cache.
void checkAttention(const AttentionCase &c) {
  ThreadPool pool3(3);
  std::vector<Isa> isas = supportedIsas();
  for (ThreadPool *pool : {static_cast<ThreadPool *>(nullptr), &pool3}) {
    for (size_t variant = 0; variant <= isas.size(); ++variant) {
      const Isa *isa = variant < isas.size() ? &isas[variant] : nullptr;
      std::string what = c.name + " [" +
                         (isa ? kiln::kernels::isaName(*isa) : "dispatched") +
                         (pool ? ", 3 threads]" : ", no pool]");
      AttentionFixture f(c, 7);
      std::vector<float> out = f.run(isa, pool);
      f.expectOutput(out, what);
      f.expectCache(what);
    }
  }
}

TEST(KernelsAttention, SingleSequencePrefill) {
  checkAttention({"prefill MHA", 4, 4, 64, 16, {{0, 37}}});
}

TEST(KernelsAttention, DecodeOverLongContext) {
  // 1000 cached positions: 63 blocks and 16 softmax chunks.
  checkAttention({"decode GQA", 9, 3, 64, 16, {{1000, 1}}});
}

TEST(KernelsAttention, MixedBatchWithShuffledBlocks) {
  // A prefill chunk on top of a cached prefix, two decodes, a fresh
  // prefill longer than one softmax chunk.
  checkAttention(
      {"mixed batch", 9, 3, 64, 7, {{50, 20}, {300, 1}, {0, 70}, {129, 1}}});
}

TEST(KernelsAttention, MultiQueryWithMoreHeadsThanOnePass) {
  // 12 query heads on one KV head: passes of 8 and 4 heads.
  checkAttention({"MQA", 12, 1, 64, 16, {{90, 2}, {3, 1}}});
}

TEST(KernelsAttention, BlockSizeOne) {
  checkAttention({"block size 1", 9, 3, 64, 1, {{10, 5}, {64, 1}, {0, 3}}});
}

TEST(KernelsAttention, HeadMajorAndPaddedLayouts) {
  AttentionCase c{"head major", 9, 3, 64, 16, {{20, 6}, {5, 1}}};
  c.layout = Layout::HeadMajor;
  checkAttention(c);
  c.name = "padded";
  c.layout = Layout::Padded;
  checkAttention(c);
}

TEST(KernelsAttention, Softcap) {
  // Scores of up to ~20 before the cap of 5, so the cap matters.
  AttentionCase c{"softcap", 8, 2, 64, 16, {{70, 3}, {0, 9}}};
  c.scale = 1.0f;
  c.qMagnitude = 2.0f;
  c.softcap = 5.0f;
  checkAttention(c);
}

TEST(KernelsAttention, SlidingWindow) {
  // Windows that start inside a block and inside a softmax chunk, in
  // prefill and decode; a window wider than the context changes nothing
  // and window 0 sees only the token itself.
  for (int64_t window : {0, 3, 16, 100, 5000}) {
    AttentionCase c{"window " + std::to_string(window), 9, 3, 64, 16,
                    {{1000, 1}, {0, 21}, {130, 4}}};
    c.window = window;
    checkAttention(c);
  }
  AttentionCase odd{"window 7, head dim 80", 4, 2, 80, 5, {{40, 3}, {0, 12}}};
  odd.window = 7;
  checkAttention(odd);
}

TEST(KernelsAttention, LargeScoresStayFinite) {
  // Scores in the hundreds: the streaming softmax must rescale, not
  // overflow.
  AttentionCase c{"large scores", 4, 1, 64, 16, {{200, 2}}};
  c.scale = 8.0f;
  c.qMagnitude = 2.0f;
  checkAttention(c);
}

TEST(KernelsAttention, OtherHeadDims) {
  // 128 is specialized; 80 runs the generic path, 72 also its scalar tail,
  // 300 takes two passes of the generic accumulator, 5 is all tail.
  for (int64_t d : {128, 80, 72, 300, 5})
    checkAttention(
        {"head dim " + std::to_string(d), 6, 2, d, 16, {{70, 2}, {0, 5}}});
}

TEST(KernelsAttention, RotaryEmbedding) {
  // Half-split and interleaved pairs, angles per token and per position,
  // a partial rotation (GPT-NeoX, Phi), the generic head_dim path, more
  // heads than one pass.
  struct Rot {
    std::string name;
    int64_t qHeads, kvHeads, headDim, rotaryDim, flags;
  };
  for (const Rot &r : {
           Rot{"rope halves, per token", 9, 3, 64, 64, 0},
           Rot{"rope interleaved, by position", 9, 3, 64, 64,
               KILN_ROTARY_INTERLEAVED | KILN_ROTARY_BY_POSITION},
           Rot{"partial rope, by position", 4, 2, 80, 32,
               KILN_ROTARY_BY_POSITION},
           Rot{"partial interleaved, MQA", 12, 1, 128, 96,
               KILN_ROTARY_INTERLEAVED},
       }) {
    AttentionCase c{r.name,    r.qHeads, r.kvHeads,
                    r.headDim, 16,       {{50, 20}, {300, 1}, {0, 3}}};
    c.rotaryDim = r.rotaryDim;
    c.rotFlags = r.flags;
    checkAttention(c);
    c.name += ", head major";
    c.layout = Layout::HeadMajor;
    checkAttention(c);
  }
}

TEST(KernelsAttention, ChunkBoundaries) {
  // Contexts of 64, 65 and 128 positions: exactly one softmax chunk, one
  // more, two.
  checkAttention({"chunk edges", 2, 2, 64, 16, {{63, 1}, {64, 1}, {127, 1}}});
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

TEST(KernelsBench, DISABLED_Figures) {
  std::mt19937 rng(1);
  std::printf("kernels: %s (dispatched); hardware threads %u\n",
              kiln_cpu_kernels_isa(), std::thread::hardware_concurrency());
  struct Gemm {
    const char *name;
    int64_t m, n, k;
    bool transposed;
  };
  const Gemm gemms[] = {
      {"GEMV    1 x 576 x 1536", 1, 1536, 576, false},
      {"GEMV    1 x 1536 x 576", 1, 576, 1536, false},
      {"GEMM  128 x 576 x 1536", 128, 1536, 576, false},
      {"GEMM  512 x 576 x 1536", 512, 1536, 576, false},
      {"GEMV    1 x 576 x 49152", 1, 49152, 576, false},
      {"GEMV^T  1 x 576 x 49152", 1, 49152, 576, true},
      {"GEMM^T 16 x 576 x 49152", 16, 49152, 576, true},
  };
  // matmul_quant_f32, 4-bit weights in groups of 32, hot in cache.
  const Gemm quantGemms[] = {
      {"q4 GEMV   1 x 576 x 1536", 1, 1536, 576, true},
      {"q4 GEMV   4 x 576 x 1536", 4, 1536, 576, true},
      {"q4 GEMM 128 x 576 x 1536", 128, 1536, 576, true},
      {"q4 GEMV   1 x 576 x 49152", 1, 49152, 576, true},
  };
  for (Isa isa : supportedIsas()) {
    for (int threads : {1, 2}) {
      ThreadPool pool(threads);
      {
        // Decode reads weights from DRAM: rotate over copies that together
        // are four times the last-level cache.
        for (std::pair<int64_t, int64_t> kn :
             {std::pair<int64_t, int64_t>{576, 1536},
              {1536, 576},
              {576, 192}}) {
          int64_t kk = kn.first, nn = kn.second;
          int64_t copies = (128 << 20) / (4 * kk * nn) + 1;
          std::vector<float> bs = randomFloats(copies * kk * nn, rng);
          std::vector<float> a = randomFloats(kk, rng), c(nn);
          int64_t next = 0;
          double s = timePerCall([&] {
            kiln::kernels::matmulF32(isa, &pool, a.data(), kk,
                                     bs.data() + next * kk * nn, c.data(), nn,
                                     1, nn, kk);
            next = (next + 1) % copies;
          });
          std::printf("%-8s %d thr  GEMV cold 1 x %lld x %lld  %8.1f us %6.1f "
                      "GB/s of B\n",
                      kiln::kernels::isaName(isa), threads, (long long)kk,
                      (long long)nn, s * 1e6, 4.0 * kk * nn / s * 1e-9);
          // The same bytes as panels (n is a multiple of 32 here).
          double sp = timePerCall([&] {
            kiln::kernels::matmulPackedF32(isa, &pool, a.data(), kk,
                                           bs.data() + next * kk * nn, c.data(),
                                           nn, 1, nn, kk);
            next = (next + 1) % copies;
          });
          std::printf("%-8s %d thr  GEMV cold 1 x %lld x %lld  panels "
                      "%8.1f us %6.1f GB/s of B\n",
                      kiln::kernels::isaName(isa), threads, (long long)kk,
                      (long long)nn, sp * 1e6, 4.0 * kk * nn / sp * 1e-9);

          // The same GEMV with B quantized ([N][K], groups of 32, implied
          // zero points): bytes read are the packed weight and its scales.
          for (int64_t bits : {4, 8}) {
            int64_t bytes = nn * kk * bits / 8 + nn * kk / 32 * 4;
            int64_t qCopies = (128 << 20) / bytes + 1;
            std::vector<QuantWeight> ws;
            for (int64_t i = 0; i < qCopies; ++i)
              ws.push_back(makeQuantWeight(nn, kk, 32, bits, false,
                                           QuantFill::Random, rng));
            int64_t nextQ = 0;
            double sq = timePerCall([&] {
              const QuantWeight &w = ws[nextQ];
              kiln::kernels::matmulQuantF32(
                  isa, &pool, a.data(), kk, w.q.data(), w.scales.data(),
                  nullptr, c.data(), nn, 1, nn, kk, 32, bits);
              nextQ = (nextQ + 1) % qCopies;
            });
            std::printf("%-8s %d thr  GEMV cold 1 x %lld x %lld  q%lld g32 "
                        "%8.1f us %6.1f GB/s of B\n",
                        kiln::kernels::isaName(isa), threads, (long long)kk,
                        (long long)nn, (long long)bits, sq * 1e6,
                        bytes / sq * 1e-9);
          }
        }
      }
      for (const Gemm &g : quantGemms) {
        QuantWeight w =
            makeQuantWeight(g.n, g.k, 32, 4, false, QuantFill::Random, rng);
        std::vector<float> a = randomFloats(g.m * g.k, rng);
        std::vector<float> c(g.m * g.n);
        // Also on a batch-invariant pool (the scheduler's), where small M
        // takes the panel path instead of the fused one.
        for (bool invariant : {false, true}) {
          pool.setBatchInvariant(invariant);
          double s = timePerCall([&] {
            kiln::kernels::matmulQuantF32(isa, &pool, a.data(), g.k, w.q.data(),
                                          w.scales.data(), nullptr, c.data(),
                                          g.n, g.m, g.n, g.k, 32, 4);
          });
          std::printf("%-8s %d thr  %-24s (M x K x N) %8.1f us %7.1f GFLOP/s "
                      "%6.1f GB/s of B%s\n",
                      kiln::kernels::isaName(isa), threads, g.name, s * 1e6,
                      2.0 * g.m * g.n * g.k / s * 1e-9,
                      (g.n * g.k / 2 + g.n * g.k / 32 * 4) / s * 1e-9,
                      invariant ? "  batch-invariant" : "");
        }
        pool.setBatchInvariant(false);
      }
      for (const Gemm &g : gemms) {
        std::vector<float> a = randomFloats(g.m * g.k, rng);
        std::vector<float> b = randomFloats(g.k * g.n, rng);
        std::vector<float> c(g.m * g.n);
        double s = timePerCall([&] {
          (g.transposed ? kiln::kernels::matmulBtF32
                        : kiln::kernels::matmulF32)(isa, &pool, a.data(), g.k,
                                                    b.data(), c.data(), g.n,
                                                    g.m, g.n, g.k);
        });
        std::printf("%-8s %d thr  %-24s (M x K x N) %8.1f us %7.1f GFLOP/s "
                    "%6.1f GB/s of B\n",
                    kiln::kernels::isaName(isa), threads, g.name, s * 1e6,
                    2.0 * g.m * g.n * g.k / s * 1e-9,
                    4.0 * g.n * g.k / s * 1e-9);
      }
      struct Attn {
        const char *name;
        std::vector<std::pair<int64_t, int64_t>> seqs;
      };
      const Attn attns[] = {
          {"decode, context 1024", {{1023, 1}}},
          {"decode x8, context 512",
           std::vector<std::pair<int64_t, int64_t>>(8, {511, 1})},
          {"prefill 128 tokens", {{0, 128}}},
          {"prefill 512 tokens", {{0, 512}}},
      };
      for (const Attn &at : attns) {
        // SmolLM2-135M: 9 query heads, 3 KV heads, head_dim 64.
        AttentionFixture f({at.name, 9, 3, 64, 16, at.seqs}, 3);
        std::vector<float> out;
        double s = timePerCall([&] { f.launch(&isa, &pool, out); });
        std::printf("%-8s %d thr  attention 9/3 heads x 64, %-24s %9.1f us\n",
                    kiln::kernels::isaName(isa), threads, at.name, s * 1e6);
      }
    }
  }
}

} // namespace
