//===- matmul.cpp - C = A * B for a row-major weight B --------------------===//
//
// Two shapes matter. Decode is M = 1, a GEMV bound by memory bandwidth,
// usually from DRAM. Each thread owns a range of output columns cut at
// cache-line boundaries and sweeps it once per 8 rows of B, keeping a
// register tile of C (4 vectors) while it adds those 8 rows: B is read as 8
// sequential streams, which the hardware prefetchers follow across pages
// (a tile that walked down all K rows of one column strip would touch a new
// page on every row: a third less bandwidth from DRAM, measured), and the
// output row round-trips through L1 once per 8 rows.
//
// Prefill is M up to a few hundred, compute bound. A register-blocked
// microkernel keeps an MR x NR tile of C in registers and, for each k,
// loads one NR-wide row of B and broadcasts MR values of A:
//
//   ISA        MR x NR   registers holding C
//   avx512     8 x 32    16 zmm
//   avx2       6 x 16    12 ymm
//   portable   4 x 8     (the compiler's choice)
//
// K is cut into blocks of KC = 256. For each block and each NR-wide panel
// of B the panel is copied to a contiguous, zero-padded KC x NR buffer
// (B's rows are N floats apart, a stride that maps a whole panel onto a
// few L1 sets), and every MR-row block of the task's rows runs over it.
// With M <= MR each B element is used once, so B is read in place and only
// a ragged last panel is copied. Threads split the panels (and, when there
// are too few panels, the rows) into tasks claimed dynamically.
//
// matmul_bt_f32 (B stored [N][K], a tied embedding used as the output
// projection) is a set of dot products along K, contiguous in both
// operands: a tile of NI rows of A times NJ rows of B keeps NI x NJ vector
// accumulators and reduces them once at the end. It is written once over
// GCC vector types and compiled per instruction set, like attention.cpp.
//
//===----------------------------------------------------------------------===//

#include "runtime/src/kernels/kernels.h"
#include "runtime/src/threadpool.h"

#include <algorithm>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define KILN_KERNELS_X86 1
#define KILN_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define KILN_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))
#endif

namespace kiln::kernels {
namespace {

constexpr int64_t kLineFloats = 16; ///< floats per 64-byte cache line
constexpr int kMaxMr = 8;
constexpr int64_t kMaxNr = 32;
constexpr int64_t kKc = 256;
/// Rows of B one GEMV sweep over the output row takes.
constexpr int64_t kGemvRows = 8;
/// Below this many flops per thread, waking threads costs more than it
/// saves.
constexpr int64_t kMinFlopsPerThread = 1 << 16;

/// C[0:rows][0:nValid] = (accumulate ? C : 0) + A[0:rows][0:kc] * B[0:kc][0:NR]
/// for the MR-row microkernel of `rows` rows; B rows are `ldb` floats apart
/// and hold NR readable floats even where nValid < NR.
using TileFn = void (*)(int64_t kc, const float *a, int64_t lda, const float *b,
                        int64_t ldb, float *c, int64_t ldc, int64_t nValid,
                        bool accumulate);
/// c[0:n] = sum_p a[p] * b[p * ldb + 0:n].
using GemvFn = void (*)(const float *a, const float *b, int64_t ldb, float *c,
                        int64_t n, int64_t k);

/// One Isa's kernels and blocking.
struct Gemm {
  int mr;
  int64_t nr;
  TileFn tile[kMaxMr + 1]; ///< tile[rows], rows in 1 .. mr
  GemvFn gemv;
};

#define KILN_INLINE inline __attribute__((always_inline))

typedef float V16 __attribute__((vector_size(64)));
typedef float V8 __attribute__((vector_size(32)));
typedef float V4 __attribute__((vector_size(16)));

// Vectors go by reference: by value they would change the calling
// convention between the plain and the AVX copies (-Wpsabi).
KILN_INLINE void load16(V16 &v, const float *p) {
  std::memcpy(&v, p, sizeof(V16));
}

/// Where a thread packs its panel of B.
alignas(64) thread_local float tlsPanel[kKc * kMaxNr];

//===----------------------------------------------------------------------===//
// Portable: plain loops over fixed-size arrays, vectorized by the compiler
// for whatever the baseline target is.
//===----------------------------------------------------------------------===//

constexpr int kPortableMr = 4;
constexpr int64_t kPortableNr = 8;

template <int MR>
void tilePortable(int64_t kc, const float *a, int64_t lda, const float *b,
                  int64_t ldb, float *c, int64_t ldc, int64_t nValid,
                  bool accumulate) {
  float acc[MR][kPortableNr] = {};
  for (int64_t p = 0; p < kc; ++p) {
    const float *bp = b + p * ldb;
    for (int i = 0; i < MR; ++i) {
      float ai = a[i * lda + p];
      for (int64_t j = 0; j < kPortableNr; ++j)
        acc[i][j] += ai * bp[j];
    }
  }
  for (int i = 0; i < MR; ++i) {
    float *ci = c + i * ldc;
    for (int64_t j = 0; j < nValid; ++j)
      ci[j] = accumulate ? ci[j] + acc[i][j] : acc[i][j];
  }
}

void gemvPortable(const float *__restrict a, const float *__restrict b,
                  int64_t ldb, float *__restrict c, int64_t n, int64_t k) {
  for (int64_t p0 = 0; p0 < k; p0 += kGemvRows) {
    const float *r = b + p0 * ldb;
    if (k - p0 >= kGemvRows) {
      static_assert(kGemvRows == 8, "the sweep below adds 8 rows");
      const float *a8 = a + p0;
      // C is not read before the first sweep: it may hold anything.
      if (p0 == 0)
        std::fill(c, c + n, 0.0f);
      for (int64_t j = 0; j < n; ++j)
        c[j] += a8[0] * r[j] + a8[1] * r[ldb + j] + a8[2] * r[2 * ldb + j] +
                a8[3] * r[3 * ldb + j] + a8[4] * r[4 * ldb + j] +
                a8[5] * r[5 * ldb + j] + a8[6] * r[6 * ldb + j] +
                a8[7] * r[7 * ldb + j];
    } else {
      for (int64_t p = p0; p < k; ++p, r += ldb)
        for (int64_t j = 0; j < n; ++j)
          c[j] = (p == 0 ? 0.0f : c[j]) + a[p] * r[j];
    }
  }
}

const Gemm kPortableGemm = {
    kPortableMr,
    kPortableNr,
    {nullptr, tilePortable<1>, tilePortable<2>, tilePortable<3>,
     tilePortable<4>},
    gemvPortable,
};

#ifdef KILN_KERNELS_X86
//===----------------------------------------------------------------------===//
// AVX2 + FMA
//===----------------------------------------------------------------------===//

constexpr int kAvx2Mr = 6;
constexpr int64_t kAvx2Nr = 16;

/// Lanes [0, count) set, count clamped to [0, 8].
KILN_TARGET_AVX2 inline __m256i maskAvx2(int64_t count) {
  int32_t n = static_cast<int32_t>(std::clamp<int64_t>(count, 0, 8));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

template <int MR>
KILN_TARGET_AVX2 void tileAvx2(int64_t kc, const float *a, int64_t lda,
                               const float *b, int64_t ldb, float *c,
                               int64_t ldc, int64_t nValid, bool accumulate) {
  __m256 acc0[MR], acc1[MR];
#pragma unroll
  for (int i = 0; i < MR; ++i)
    acc0[i] = acc1[i] = _mm256_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    __m256 b0 = _mm256_loadu_ps(b + p * ldb);
    __m256 b1 = _mm256_loadu_ps(b + p * ldb + 8);
#pragma unroll
    for (int i = 0; i < MR; ++i) {
      __m256 ai = _mm256_broadcast_ss(a + i * lda + p);
      acc0[i] = _mm256_fmadd_ps(ai, b0, acc0[i]);
      acc1[i] = _mm256_fmadd_ps(ai, b1, acc1[i]);
    }
  }
  if (nValid == kAvx2Nr) {
#pragma unroll
    for (int i = 0; i < MR; ++i) {
      float *ci = c + i * ldc;
      if (accumulate) {
        acc0[i] = _mm256_add_ps(acc0[i], _mm256_loadu_ps(ci));
        acc1[i] = _mm256_add_ps(acc1[i], _mm256_loadu_ps(ci + 8));
      }
      _mm256_storeu_ps(ci, acc0[i]);
      _mm256_storeu_ps(ci + 8, acc1[i]);
    }
    return;
  }
  __m256i m0 = maskAvx2(nValid), m1 = maskAvx2(nValid - 8);
#pragma unroll
  for (int i = 0; i < MR; ++i) {
    float *ci = c + i * ldc;
    if (accumulate) {
      acc0[i] = _mm256_add_ps(acc0[i], _mm256_maskload_ps(ci, m0));
      acc1[i] = _mm256_add_ps(acc1[i], _mm256_maskload_ps(ci + 8, m1));
    }
    _mm256_maskstore_ps(ci, m0, acc0[i]);
    _mm256_maskstore_ps(ci + 8, m1, acc1[i]);
  }
}

KILN_TARGET_AVX2 void gemvAvx2(const float *a, const float *b, int64_t ldb,
                               float *c, int64_t n, int64_t k) {
  for (int64_t p0 = 0; p0 < k; p0 += kGemvRows) {
    const int64_t rows = std::min(kGemvRows, k - p0);
    const float *bp = b + p0 * ldb;
    __m256 ap[kGemvRows];
#pragma unroll
    for (int64_t r = 0; r < kGemvRows; ++r)
      ap[r] = _mm256_set1_ps(r < rows ? a[p0 + r] : 0.0f);
    int64_t j = 0;
    if (rows == kGemvRows) {
      for (; j + 32 <= n; j += 32) {
        __m256 acc[4];
#pragma unroll
        for (int q = 0; q < 4; ++q)
          acc[q] =
              p0 == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(c + j + 8 * q);
#pragma unroll
        for (int64_t r = 0; r < kGemvRows; ++r)
#pragma unroll
          for (int q = 0; q < 4; ++q)
            acc[q] = _mm256_fmadd_ps(
                ap[r], _mm256_loadu_ps(bp + r * ldb + j + 8 * q), acc[q]);
#pragma unroll
        for (int q = 0; q < 4; ++q)
          _mm256_storeu_ps(c + j + 8 * q, acc[q]);
      }
    }
    for (; j < n; j += 8) {
      __m256i mask = maskAvx2(n - j);
      __m256 acc =
          p0 == 0 ? _mm256_setzero_ps() : _mm256_maskload_ps(c + j, mask);
      for (int64_t r = 0; r < rows; ++r)
        acc = _mm256_fmadd_ps(ap[r], _mm256_maskload_ps(bp + r * ldb + j, mask),
                              acc);
      _mm256_maskstore_ps(c + j, mask, acc);
    }
  }
}

const Gemm kAvx2Gemm = {
    kAvx2Mr,
    kAvx2Nr,
    {nullptr, tileAvx2<1>, tileAvx2<2>, tileAvx2<3>, tileAvx2<4>, tileAvx2<5>,
     tileAvx2<6>},
    gemvAvx2,
};

//===----------------------------------------------------------------------===//
// AVX-512F
//===----------------------------------------------------------------------===//

constexpr int kAvx512Mr = 8;
constexpr int64_t kAvx512Nr = 32;

/// Lanes [0, count) set, count clamped to [0, 16].
inline __mmask16 mask16(int64_t count) {
  if (count >= 16)
    return 0xFFFF;
  return count <= 0 ? 0 : static_cast<__mmask16>((1u << count) - 1);
}

template <int MR>
KILN_TARGET_AVX512 void
tileAvx512(int64_t kc, const float *a, int64_t lda, const float *b, int64_t ldb,
           float *c, int64_t ldc, int64_t nValid, bool accumulate) {
  __m512 acc0[MR], acc1[MR];
#pragma unroll
  for (int i = 0; i < MR; ++i)
    acc0[i] = acc1[i] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    __m512 b0 = _mm512_loadu_ps(b + p * ldb);
    __m512 b1 = _mm512_loadu_ps(b + p * ldb + 16);
#pragma unroll
    for (int i = 0; i < MR; ++i) {
      __m512 ai = _mm512_set1_ps(a[i * lda + p]);
      acc0[i] = _mm512_fmadd_ps(ai, b0, acc0[i]);
      acc1[i] = _mm512_fmadd_ps(ai, b1, acc1[i]);
    }
  }
  __mmask16 m0 = mask16(nValid), m1 = mask16(nValid - 16);
#pragma unroll
  for (int i = 0; i < MR; ++i) {
    float *ci = c + i * ldc;
    if (accumulate) {
      acc0[i] = _mm512_add_ps(acc0[i], _mm512_maskz_loadu_ps(m0, ci));
      acc1[i] = _mm512_add_ps(acc1[i], _mm512_maskz_loadu_ps(m1, ci + 16));
    }
    _mm512_mask_storeu_ps(ci, m0, acc0[i]);
    _mm512_mask_storeu_ps(ci + 16, m1, acc1[i]);
  }
}

KILN_TARGET_AVX512 void gemvAvx512(const float *a, const float *b, int64_t ldb,
                                   float *c, int64_t n, int64_t k) {
  for (int64_t p0 = 0; p0 < k; p0 += kGemvRows) {
    const int64_t rows = std::min(kGemvRows, k - p0);
    const float *bp = b + p0 * ldb;
    __m512 ap[kGemvRows];
#pragma unroll
    for (int64_t r = 0; r < kGemvRows; ++r)
      ap[r] = _mm512_set1_ps(r < rows ? a[p0 + r] : 0.0f);
    int64_t j = 0;
    if (rows == kGemvRows) {
      for (; j + 64 <= n; j += 64) {
        __m512 acc[4];
#pragma unroll
        for (int q = 0; q < 4; ++q)
          acc[q] =
              p0 == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(c + j + 16 * q);
#pragma unroll
        for (int64_t r = 0; r < kGemvRows; ++r)
#pragma unroll
          for (int q = 0; q < 4; ++q)
            acc[q] = _mm512_fmadd_ps(
                ap[r], _mm512_loadu_ps(bp + r * ldb + j + 16 * q), acc[q]);
#pragma unroll
        for (int q = 0; q < 4; ++q)
          _mm512_storeu_ps(c + j + 16 * q, acc[q]);
      }
    }
    for (; j < n; j += 16) {
      __mmask16 mask = mask16(n - j);
      __m512 acc =
          p0 == 0 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mask, c + j);
      for (int64_t r = 0; r < rows; ++r)
        acc = _mm512_fmadd_ps(
            ap[r], _mm512_maskz_loadu_ps(mask, bp + r * ldb + j), acc);
      _mm512_mask_storeu_ps(c + j, mask, acc);
    }
  }
}

const Gemm kAvx512Gemm = {
    kAvx512Mr,
    kAvx512Nr,
    {nullptr, tileAvx512<1>, tileAvx512<2>, tileAvx512<3>, tileAvx512<4>,
     tileAvx512<5>, tileAvx512<6>, tileAvx512<7>, tileAvx512<8>},
    gemvAvx512,
};
#endif // KILN_KERNELS_X86

//===----------------------------------------------------------------------===//
// Driver
//===----------------------------------------------------------------------===//

/// Copies B[0:kc][0:nValid] (rows ldb apart) to dst as kc rows of nr
/// floats, zero beyond nValid.
template <int64_t NR>
void packFullPanel(const float *b, int64_t ldb, int64_t kc, float *dst) {
  // A fixed-size copy the compiler inlines: a libc memcpy call per row of
  // NR floats cost more than the copy itself.
  for (int64_t p = 0; p < kc; ++p, b += ldb, dst += NR)
    std::memcpy(dst, b, NR * sizeof(float));
}

void packPanel(const float *b, int64_t ldb, int64_t kc, int64_t nValid,
               int64_t nr, float *dst) {
  if (nValid == nr) {
    switch (nr) {
    case 32:
      return packFullPanel<32>(b, ldb, kc, dst);
    case 16:
      return packFullPanel<16>(b, ldb, kc, dst);
    case 8:
      return packFullPanel<8>(b, ldb, kc, dst);
    default:
      break;
    }
  }
  for (int64_t p = 0; p < kc; ++p, b += ldb, dst += nr) {
    std::memcpy(dst, b, nValid * sizeof(float));
    std::memset(dst + nValid, 0, (nr - nValid) * sizeof(float));
  }
}

struct GemmProblem {
  const float *a;
  int64_t lda;
  const float *b;
  float *c;
  int64_t ldc, m, n, k;
  /// B in KILN_PANEL_COLUMNS-column panels (model_abi.h), not row-major.
  bool packed = false;

  /// Where B[k0][j0] is and how far apart its rows are.
  const float *bAt(int64_t k0, int64_t j0, int64_t &ldb) const {
    if (!packed) {
      ldb = n;
      return b + k0 * n + j0;
    }
    ldb = kPanel;
    return b + (j0 / kPanel) * k * kPanel + k0 * kPanel + j0 % kPanel;
  }
  static constexpr int64_t kPanel = KILN_PANEL_COLUMNS;
};

/// Rows [i0, i1) times panels [p0, p1) of C.
void gemmTask(const Gemm &g, const GemmProblem &pr, int64_t i0, int64_t i1,
              int64_t p0, int64_t p1) {
  // Every element of B is used ceil(rows / mr) times: copying it pays
  // only when that is more than once. Packed B needs no copy: its panels
  // are zero-padded and g.nr divides KILN_PANEL_COLUMNS.
  bool pack = !pr.packed && i1 - i0 > g.mr;
  if (pr.packed && i1 - i0 <= g.mr) {
    // One row block (decode): each panel start to end, one contiguous
    // stream, with the same K blocks (so the same sums) as below.
    for (int64_t panel = p0; panel < p1; ++panel) {
      int64_t j0 = panel * g.nr, nValid = std::min(g.nr, pr.n - j0);
      for (int64_t k0 = 0; k0 < pr.k; k0 += kKc) {
        int64_t ldb;
        const float *bp = pr.bAt(k0, j0, ldb);
        g.tile[i1 - i0](std::min(kKc, pr.k - k0), pr.a + i0 * pr.lda + k0,
                        pr.lda, bp, ldb, pr.c + i0 * pr.ldc + j0, pr.ldc,
                        nValid, k0 > 0);
      }
    }
    return;
  }
  for (int64_t k0 = 0; k0 < pr.k; k0 += kKc) {
    int64_t kc = std::min(kKc, pr.k - k0);
    for (int64_t panel = p0; panel < p1; ++panel) {
      int64_t j0 = panel * g.nr;
      int64_t nValid = std::min(g.nr, pr.n - j0);
      int64_t ldb;
      const float *bp = pr.bAt(k0, j0, ldb);
      if (!pr.packed && (pack || nValid < g.nr)) {
        packPanel(bp, ldb, kc, nValid, g.nr, tlsPanel);
        bp = tlsPanel;
        ldb = g.nr;
      }
      // The next panel's rows come from memory while this one computes:
      // each row block prefetches its share of them.
      int64_t nextK0 = k0, nextJ0 = j0 + g.nr;
      if (panel + 1 == p1) {
        nextK0 = k0 + kKc;
        nextJ0 = p0 * g.nr;
      }
      int64_t nextLdb = 0;
      const float *next =
          nextK0 < pr.k ? pr.bAt(nextK0, nextJ0, nextLdb) : nullptr;
      int64_t nextRows = next ? std::min(kKc, pr.k - nextK0) : 0;
      int64_t nextCols = next ? std::min(g.nr, pr.n - nextJ0) : 0;
      int64_t blocks = (i1 - i0 + g.mr - 1) / g.mr;
      for (int64_t i = i0, blk = 0; i < i1; i += g.mr, ++blk) {
        if (next && blocks > 1 && !pr.packed) {
          for (int64_t r = blk * nextRows / blocks,
                       rEnd = (blk + 1) * nextRows / blocks;
               r < rEnd; ++r)
            for (int64_t j = 0; j < nextCols; j += kLineFloats)
              __builtin_prefetch(next + r * nextLdb + j);
        }
        int64_t rows = std::min<int64_t>(g.mr, i1 - i);
        g.tile[rows](kc, pr.a + i * pr.lda + k0, pr.lda, bp, ldb,
                     pr.c + i * pr.ldc + j0, pr.ldc, nValid, k0 > 0);
      }
    }
  }
}

void gemm(const Gemm &g, ThreadPool *pool, const GemmProblem &pr) {
  if (pr.m <= 0 || pr.n <= 0)
    return;
  if (pr.k <= 0) {
    for (int64_t i = 0; i < pr.m; ++i)
      std::fill(pr.c + i * pr.ldc, pr.c + i * pr.ldc + pr.n, 0.0f);
    return;
  }
  int64_t threads = pool ? pool->numThreads() : 1;
  threads = std::max<int64_t>(
      1, std::min(threads, 2 * pr.m * pr.n * pr.k / kMinFlopsPerThread));

  // Packed B: one path for every M, the microkernel's, so that a row's
  // result does not depend on how many rows the call has (batch
  // invariance: a sequence's logits are the same bits alone or batched).
  // At M = 1 it is memory-bound all the same.
  if (pr.m == 1 && !pr.packed) {
    // Threads own whole cache lines of the output row.
    int64_t lines = (pr.n + kLineFloats - 1) / kLineFloats;
    auto columns = [&](int64_t l0, int64_t l1) {
      int64_t j0 = l0 * kLineFloats;
      int64_t j1 = std::min(pr.n, l1 * kLineFloats);
      g.gemv(pr.a, pr.b + j0, pr.n, pr.c + j0, j1 - j0, pr.k);
    };
    if (threads == 1)
      columns(0, lines);
    else
      pool->parallelFor(lines, columns, (lines + threads - 1) / threads);
    return;
  }

  int64_t panels = (pr.n + g.nr - 1) / g.nr;
  int64_t rowBlocks = (pr.m + g.mr - 1) / g.mr;
  if (threads == 1) {
    gemmTask(g, pr, 0, pr.m, 0, panels);
    return;
  }
  // A few tasks per thread so that a descheduled thread does not hold up
  // the rest; split rows only when there are too few panels, as each
  // row split packs the same panels again.
  int64_t nSplit = std::min(panels, 4 * threads);
  int64_t mSplit = 1;
  if (nSplit < 2 * threads)
    mSplit = std::min(rowBlocks, (4 * threads + nSplit - 1) / nSplit);
  auto tasks = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      int64_t tn = t / mSplit, tm = t % mSplit;
      int64_t i0 = tm * rowBlocks / mSplit * g.mr;
      int64_t i1 = std::min(pr.m, (tm + 1) * rowBlocks / mSplit * g.mr);
      gemmTask(g, pr, i0, i1, tn * panels / nSplit, (tn + 1) * panels / nSplit);
    }
  };
  pool->parallelFor(nSplit * mSplit, tasks, 1);
}

//===----------------------------------------------------------------------===//
// B transposed: C[m][n] = sum_k A[m][k] * B[n][k]
//===----------------------------------------------------------------------===//

KILN_INLINE float sum16(const V16 &v) {
  V8 s8 = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
          __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  V4 s4 = __builtin_shufflevector(s8, s8, 0, 1, 2, 3) +
          __builtin_shufflevector(s8, s8, 4, 5, 6, 7);
  return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

/// C[0:NI][0:nj] = A[0:NI][0:k] . B[0:nj][0:k] (rows lda, ldc, k apart).
/// Rows of B past nj are read from row nj - 1 and not stored.
template <int NI, int NJ>
KILN_INLINE void dotTile(const float *a, int64_t lda, const float *b,
                         int64_t nj, float *c, int64_t ldc, int64_t k) {
  const float *bRow[NJ];
  for (int j = 0; j < NJ; ++j)
    bRow[j] = b + std::min<int64_t>(j, nj - 1) * k;
  V16 acc[NI][NJ];
  for (int i = 0; i < NI; ++i)
    for (int j = 0; j < NJ; ++j)
      acc[i][j] = V16{};
  int64_t p = 0;
  for (; p + 16 <= k; p += 16) {
    V16 bv[NJ], av;
    for (int j = 0; j < NJ; ++j)
      load16(bv[j], bRow[j] + p);
    for (int i = 0; i < NI; ++i) {
      load16(av, a + i * lda + p);
      for (int j = 0; j < NJ; ++j)
        acc[i][j] += av * bv[j];
    }
  }
  for (int i = 0; i < NI; ++i)
    for (int j = 0; j < nj; ++j) {
      float r = sum16(acc[i][j]);
      for (int64_t q = p; q < k; ++q)
        r += a[i * lda + q] * bRow[j][q];
      c[i * ldc + j] = r;
    }
}

/// Columns [j0, j1) of C, all rows.
KILN_INLINE void gemmBtRange(const GemmProblem &pr, int64_t j0, int64_t j1) {
  // One row of A: eight rows of B at a time hide the FMA latency. Several
  // rows: 4 x 4 tiles, each B vector used four times from a register.
  constexpr int64_t kNj1 = 8, kNj4 = 4;
  int64_t rows4 = pr.m / 4 * 4;
  for (int64_t j = j0; j < j1; j += kNj1) {
    int64_t nj = std::min(kNj1, j1 - j);
    const float *b = pr.b + j * pr.k;
    for (int64_t i = 0; i < rows4; i += 4) {
      dotTile<4, kNj4>(pr.a + i * pr.lda, pr.lda, b, std::min(nj, kNj4),
                       pr.c + i * pr.ldc + j, pr.ldc, pr.k);
      if (nj > kNj4)
        dotTile<4, kNj4>(pr.a + i * pr.lda, pr.lda, b + kNj4 * pr.k, nj - kNj4,
                         pr.c + i * pr.ldc + j + kNj4, pr.ldc, pr.k);
    }
    for (int64_t i = rows4; i < pr.m; ++i)
      dotTile<1, kNj1>(pr.a + i * pr.lda, pr.lda, b, nj, pr.c + i * pr.ldc + j,
                       pr.ldc, pr.k);
  }
}

using GemmBtFn = void (*)(const GemmProblem &, int64_t, int64_t);

void gemmBtPortable(const GemmProblem &pr, int64_t j0, int64_t j1) {
  gemmBtRange(pr, j0, j1);
}

#ifdef KILN_KERNELS_X86
KILN_TARGET_AVX2 void gemmBtAvx2(const GemmProblem &pr, int64_t j0,
                                 int64_t j1) {
  gemmBtRange(pr, j0, j1);
}

KILN_TARGET_AVX512 void gemmBtAvx512(const GemmProblem &pr, int64_t j0,
                                     int64_t j1) {
  gemmBtRange(pr, j0, j1);
}
#endif

void gemmBt(GemmBtFn range, ThreadPool *pool, const GemmProblem &pr) {
  if (pr.m <= 0 || pr.n <= 0)
    return;
  int64_t threads = pool ? pool->numThreads() : 1;
  threads = std::max<int64_t>(
      1, std::min(threads, 2 * pr.m * pr.n * pr.k / kMinFlopsPerThread));
  if (threads == 1) {
    range(pr, 0, pr.n);
    return;
  }
  // Columns of C are rows of B: hand them out eight at a time (one tile),
  // a few ranges per thread.
  int64_t groups = (pr.n + 7) / 8;
  int64_t chunk = std::max<int64_t>(1, groups / (4 * threads));
  pool->parallelFor(
      groups,
      [&](int64_t g0, int64_t g1) {
        range(pr, g0 * 8, std::min(pr.n, g1 * 8));
      },
      chunk);
}

} // namespace

void matmulF32(Isa isa, ThreadPool *pool, const float *a, int64_t lda,
               const float *b, float *c, int64_t ldc, int64_t m, int64_t n,
               int64_t k) noexcept {
  const Gemm *g = &kPortableGemm;
#ifdef KILN_KERNELS_X86
  if (isa == Isa::Avx512)
    g = &kAvx512Gemm;
  else if (isa == Isa::Avx2)
    g = &kAvx2Gemm;
#else
  (void)isa;
#endif
  gemm(*g, pool, GemmProblem{a, lda, b, c, ldc, m, n, k});
}

void matmulPackedF32(Isa isa, ThreadPool *pool, const float *a, int64_t lda,
                     const float *b, float *c, int64_t ldc, int64_t m,
                     int64_t n, int64_t k) noexcept {
  const Gemm *g = &kPortableGemm;
#ifdef KILN_KERNELS_X86
  if (isa == Isa::Avx512)
    g = &kAvx512Gemm;
  else if (isa == Isa::Avx2)
    g = &kAvx2Gemm;
#else
  (void)isa;
#endif
  static_assert(KILN_PANEL_COLUMNS % kMaxNr == 0,
                "every Isa's panels must tile KILN_PANEL_COLUMNS");
  gemm(*g, pool, GemmProblem{a, lda, b, c, ldc, m, n, k, true});
}

void matmulBtF32(Isa isa, ThreadPool *pool, const float *a, int64_t lda,
                 const float *b, float *c, int64_t ldc, int64_t m, int64_t n,
                 int64_t k) noexcept {
  GemmBtFn range = gemmBtPortable;
#ifdef KILN_KERNELS_X86
  if (isa == Isa::Avx512)
    range = gemmBtAvx512;
  else if (isa == Isa::Avx2)
    range = gemmBtAvx2;
#else
  (void)isa;
#endif
  gemmBt(range, pool, GemmProblem{a, lda, b, c, ldc, m, n, k});
}

} // namespace kiln::kernels

extern "C" void kiln_matmul_f32(void *pool, const float *a, int64_t lda,
                                const float *b, float *c, int64_t ldc,
                                int64_t m, int64_t n, int64_t k) {
  kiln::kernels::matmulF32(kiln::kernels::activeIsa(),
                           static_cast<kiln::ThreadPool *>(pool), a, lda, b, c,
                           ldc, m, n, k);
}

extern "C" void kiln_matmul_bt_f32(void *pool, const float *a, int64_t lda,
                                   const float *b, float *c, int64_t ldc,
                                   int64_t m, int64_t n, int64_t k) {
  kiln::kernels::matmulBtF32(kiln::kernels::activeIsa(),
                             static_cast<kiln::ThreadPool *>(pool), a, lda, b,
                             c, ldc, m, n, k);
}

extern "C" void kiln_matmul_packed_f32(void *pool, const float *a, int64_t lda,
                                       const float *b, float *c, int64_t ldc,
                                       int64_t m, int64_t n, int64_t k) {
  kiln::kernels::matmulPackedF32(kiln::kernels::activeIsa(),
                                 static_cast<kiln::ThreadPool *>(pool), a, lda,
                                 b, c, ldc, m, n, k);
}
