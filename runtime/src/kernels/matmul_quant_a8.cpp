//===- matmul_quant_a8.cpp - C = A * W^T in int8, as MLAS CompInt8 does ---===//
//
// W is matmul_quant.cpp's 4- or 8-bit grouped weight. This kernel computes
// what onnxruntime's MatMulNBits computes at accuracy_level 4 (MLAS
// SQNBIT_CompInt8): A is not multiplied in fp32 but quantized to int8 per
// row and block of `group` k, and the products are integer dot products.
// From MLAS (onnxruntime/core/mlas/lib/sqnbitgemm_kernel_avx512.cpp and
// sqnbitgemm_kernel_avx2.cpp, QuantizeARow_CompInt8_*, the same on every
// x86 path), for each row of A and block b:
//
//   amax  = max |a_k| over the block                  (0 for an all-zero block)
//   sa_b  = amax / 127                                (fp32 division)
//   inv   = amax != 0 ? 127 / amax : 0                (fp32, not 1 / sa_b)
//   qa_k  = round_half_even(a_k * inv)                (fp32 product, int8)
//
// and then C[m][n] = sum_b float(d_b) * (sa_b * sw_b) in fp32, with
// d_b = sum_{k in b} qa_k * (q_k - zp_b) exact in int32 and sw_b, zp_b the
// weight's scale and zero point (implied 8 or 128). MLAS evaluates the
// zero-point part as a separate float product, (sa_b * sum qa) *
// (-sw_b * zp_b) (its "BlkSum" GEMM); that is the same number up to fp32
// rounding, and so are the different orders in which paths add partial
// sums. qa is clamped to [-127, 127], which only non-finite A reaches.
// Against onnxruntime 1.31.1's MatMulNBits at accuracy_level 4 on an
// AVX-512 VNNI CPU, every path here agrees to about 5e-7 of max |C| (4- and
// 8-bit weights, with and without zero points, blocks of 16 to 128); this
// file's fp32 sibling is 4e-3 to 2e-2 of max |C| away.
//
// Integer dot products take u8 x s8 instructions (vpdpbusd, vpmaddubsw):
// the u8 side is the raw weight q (0..15 or 0..255), the s8 side qa, and
// each block's integer sum starts at -zp_b * sum qa instead of 0. Without
// stored zero points that start is the same for every row of W, so the
// quantizer's sums are kept premultiplied by the implied zero point.
//
// The calling thread quantizes a chunk of A (rows x k, whole blocks where
// the group allows) into a thread-local buffer, then every thread runs one
// of three paths over its rows of W and adds into C (passes after the
// first K chunk accumulate).
//
// Batch invariance: a row of C is the same bits whatever M is (the engine
// batches decode tokens with prompt chunks, and greedy output must not
// depend on the company). Every path sums in one order: K is cut into
// slices of a fixed depth from k = 0 (panelDepth, or genericDepth for the
// generic path; chunks of A start on slice boundaries, however many rows
// they hold), each slice sums its block parts in k order in an fp32 chain
// from 0, acc = fma(float(d), sw * sa, acc) with d exact in int32 (the
// generic path: acc += d * (sw * sa), d exact in fp32), and C is the first
// slice's sum, then C + the next. Which path a call takes depends on M
// only between GEMV and panel, and those two agree bit for bit.
//
// GEMV (M <= 4, groups of 16 or more that divide or are multiples of the
// vector's k). Rows of W are read in place and unpacked in registers, a
// vector of 64 (AVX-512) or 32 (AVX2) k per step. Each 32-bit lane of the
// dot product holds 4 k of one row of W; a transpose-and-add sums them per
// 16 k for 8 (AVX-512) or 4 (AVX2) rows of W at once, block sums gather in
// int32, and the fp32 chains run on those rows side by side, with the
// tile's scales transposed once per slice. Tiles prefetch the rows of a
// tile 8 KB ahead (decode reads W from DRAM).
//
// Panel (larger M). 32 (AVX-512) or 16 (AVX2) rows of W are unpacked once
// per call into a thread-local [k / 4][rows][4] byte panel (a 16 x 16 or
// 8 x 8 dword transpose), which tiles of MR rows of A run over: per 4 k
// one dword of each row of A is broadcast against two panel vectors.
// Integer accumulators hold a block (or the part of it in the panel: a
// slice is a panel's depth) and are then scaled into fp32 ones. Each tile
// prefetches its share of the next panel's rows: C and W together outgrow L2 at
// prefill sizes.
//
// Generic (portable, groups that are no multiple of 4, and AVX2 with 8-bit
// weights but no VNNI, where vpmaddubsw would saturate). The same
// broadcast panel in fp32 over GCC vector types: products of the integers
// qa and q - zp and their sums are exact in fp32 below 2^24.
//
//   Int8Dot      int8 products               GEMV   panel (NR x MR)
//   avx512vnni   vpdpbusd zmm                yes    32 x 6
//   avxvnni      vpdpbusd ymm (VEX)          yes    16 x 3
//   avx2         vpmaddubsw + vpmaddwd ymm   4-bit  16 x 2 (4-bit)
//   portable     fp32 on exact integers      -      8 x 4 (generic)
//
// The quantized A is a 256 KB thread_local buffer (only the calling thread
// writes it; pool threads read it through a pointer), the panels 26 KB.
//
//===----------------------------------------------------------------------===//

#include "runtime/src/kernels/kernels.h"
#include "runtime/src/kernels/quant_layout.h"
#include "runtime/src/threadpool.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
// GCC 12 reports the _mm512_undefined_* operands inside the AVX-512
// intrinsics (the reductions, and even lane shuffles and casts) as
// uninitialized once they are inlined here (GCC bug 105593); they are not.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>
#define KILN_KERNELS_X86 1
#define KILN_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define KILN_TARGET_VNNI512                                                    \
  __attribute__((                                                              \
      target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma")))
#endif

#define KILN_INLINE inline __attribute__((always_inline))

namespace kiln::kernels {
namespace {

/// Below this many flops per thread, waking threads costs more than it
/// saves.
constexpr int64_t kMinFlopsPerThread = 1 << 16;
/// Bytes of the calling thread's quantized A: int8 rows, block scales and
/// sums.
constexpr int64_t kQuantABytes = 256 << 10;
/// At most this many rows of A per chunk: more rows per pass over W mean
/// fewer passes, but a shorter K chunk.
constexpr int64_t kMaxChunkRows = 256;
/// The GEMV path handles at most this many rows of A.
constexpr int64_t kMaxGemvM = 4;
/// Rows of W a GEMV thread range is made of.
constexpr int64_t kGemvRowUnit = 8;
/// The deepest k range of a panel, and the most blocks it may meet.
constexpr int64_t kPanelMaxK = 512;
constexpr int64_t kPanelMaxBlocks = 40;
constexpr int64_t kPanelMaxRows = 32;
/// Rows of W a generic thread range is made of (a multiple of its panel
/// widths, 8 and 16), the generic panel's k depth and most blocks.
constexpr int64_t kGenericRows = 16;
constexpr int64_t kGenericK = 256;
constexpr int64_t kGenericBlocks = 64;
constexpr int64_t kPanelBytes =
    kPanelMaxRows * kPanelMaxK + kPanelMaxBlocks * kPanelMaxRows * 8;
// The generic path's fp32 panel, scales and 4 rows of A.
static_assert(kPanelBytes >=
                  (16 * kGenericK + 16 * kGenericBlocks + 4 * kGenericK) * 4,
              "the generic path shares the panel buffer");

alignas(64) thread_local int8_t tlsQuantA[kQuantABytes];
alignas(64) thread_local uint8_t tlsPanel[kPanelBytes];

/// Rows [m0, m0 + mc) of A quantized over k in [k0, k1) (k0 a multiple of
/// 64), in tlsQuantA of the calling thread.
struct QuantA {
  int64_t m0, mc, k0, k1;
  int64_t bFirst; ///< the first block meeting [k0, k1)
  const int8_t *q;
  int64_t ldq; ///< q rows are zero-padded to a multiple of 64
  /// [row][block - bFirst]: sa_b and -sum qa over the whole block, times
  /// the implied zero point when W has none (the whole correction).
  const float *scale;
  const int32_t *negSum;
  int64_t ldb;
};

//===----------------------------------------------------------------------===//
// Quantizing A
//===----------------------------------------------------------------------===//

KILN_INLINE float quantScale(float amax) { return amax / 127.0f; }
KILN_INLINE float quantInverse(float amax) {
  return amax != 0.0f ? 127.0f / amax : 0.0f;
}
/// qa for one element; the vector quantizers compute the same fp32 ops.
KILN_INLINE int quantizeOne(float x, float inv) {
  float p = x * inv;
  p = std::fmin(std::fmax(p, -127.0f), 127.0f);
  return static_cast<int>(std::nearbyint(p));
}

/// Writes q[i][k - k0] for k in [k0, k1) and the scale and -sum of every
/// block meeting [k0, k1), quantizing whole blocks even where they reach
/// past the chunk. Any group.
void quantizeScalar(const QuantProblem &p, const QuantA &qa, int8_t *q,
                    float *scale, int32_t *negSum) {
  const int64_t g = p.group;
  const int64_t bLast = (qa.k1 - 1) / g;
  for (int64_t i = 0; i < qa.mc; ++i) {
    const float *a = p.a + (qa.m0 + i) * p.lda;
    int8_t *qi = q + i * qa.ldq;
    for (int64_t b = qa.bFirst; b <= bLast; ++b) {
      const int64_t kb0 = b * g, kb1 = kb0 + g;
      float amax = 0.0f;
      for (int64_t kk = kb0; kk < kb1; ++kk)
        amax = std::max(amax, std::fabs(a[kk]));
      const float inv = quantInverse(amax);
      int32_t sum = 0;
      for (int64_t kk = kb0; kk < kb1; ++kk) {
        int v = quantizeOne(a[kk], inv);
        sum += v;
        if (kk >= qa.k0 && kk < qa.k1)
          qi[kk - qa.k0] = static_cast<int8_t>(v);
      }
      scale[i * qa.ldb + b - qa.bFirst] = quantScale(amax);
      negSum[i * qa.ldb + b - qa.bFirst] = -sum;
    }
    std::fill(qi + (qa.k1 - qa.k0), qi + qa.ldq, int8_t{0});
  }
}

/// The slices K is summed in (see the file comment) for the GEMV and panel
/// paths: a panel's k depth, at most kPanelMaxK, a multiple of 64, and
/// meeting at most kPanelMaxBlocks blocks.
int64_t panelDepth(int64_t group) {
  return std::min(kPanelMaxK, std::max<int64_t>(64, (32 * group) / 64 * 64));
}

/// The same for the generic path: its panel's k depth, meeting at most
/// kGenericBlocks - 2 whole blocks.
int64_t genericDepth(int64_t group) {
  return std::min(kGenericK, (kGenericBlocks - 2) * group);
}

using QuantizeFn = void (*)(const QuantProblem &, const QuantA &, int8_t *,
                            float *, int32_t *);

//===----------------------------------------------------------------------===//
// Generic path (GCC vector types, compiled per instruction set)
//===----------------------------------------------------------------------===//

// The generic path multiplies in fp32, where products of integers and their
// sums are exact below 2^24: a block's sum of qa * (q - zp) is exact for
// groups up to 518 (8-bit) or 8808 (4-bit), and beyond that rounds like
// the int32 -> fp32 conversion the other paths make.

// GCC drops vector_size on a dependent alias template, so each width is
// spelled out.
template <int W> struct VecOf;
template <> struct VecOf<4> {
  typedef float type __attribute__((vector_size(16)));
};
template <> struct VecOf<8> {
  typedef float type __attribute__((vector_size(32)));
};

/// C[m0 + i0 : + MR][nb : nb + nValid] (+)= the rows i0.. of A (fp32
/// copies of qa, rows kGenericK apart) times the fp32 panel of q - zp
/// ([k][2 W]), a block at a time: one vector pair of sums per row of A,
/// scaled by sa * sw into the outputs at the end of each block.
template <int W, int MR>
KILN_INLINE void genericTile(const QuantProblem &p, const QuantA &qa,
                             int64_t i0, const float *af, const float *panel,
                             const float *sw, int64_t k0, int64_t k1,
                             int64_t nb, int64_t nValid) {
  typedef typename VecOf<W>::type V;
  constexpr int NR = 2 * W;
  const int64_t g = p.group;
  V out[MR][2];
  for (int i = 0; i < MR; ++i)
    out[i][0] = out[i][1] = V{};
  for (int64_t kk = k0, b = k0 / g; kk < k1; ++b) {
    const int64_t end = std::min(k1, (b + 1) * g);
    V acc[MR][2];
    for (int i = 0; i < MR; ++i)
      acc[i][0] = acc[i][1] = V{};
    for (int64_t t = kk; t < end; ++t) {
      V w0, w1;
      std::memcpy(&w0, panel + (t - k0) * NR, sizeof(V));
      std::memcpy(&w1, panel + (t - k0) * NR + W, sizeof(V));
      for (int i = 0; i < MR; ++i) {
        const float a = af[i * kGenericK + (t - k0)];
        acc[i][0] += w0 * a;
        acc[i][1] += w1 * a;
      }
    }
    V s0, s1;
    std::memcpy(&s0, sw + (b - k0 / g) * NR, sizeof(V));
    std::memcpy(&s1, sw + (b - k0 / g) * NR + W, sizeof(V));
    for (int i = 0; i < MR; ++i) {
      const float sa = qa.scale[(i0 + i) * qa.ldb + b - qa.bFirst];
      out[i][0] += acc[i][0] * (s0 * sa);
      out[i][1] += acc[i][1] * (s1 * sa);
    }
    kk = end;
  }
  for (int i = 0; i < MR; ++i) {
    float o[NR];
    std::memcpy(o, &out[i][0], sizeof(V));
    std::memcpy(o + W, &out[i][1], sizeof(V));
    float *ci = p.c + (qa.m0 + i0 + i) * p.ldc + nb;
    for (int64_t j = 0; j < nValid; ++j)
      ci[j] = k0 > 0 ? ci[j] + o[j] : o[j];
  }
}

/// Rows [n0, n1) of C over the chunk of A, 2 W rows of W at a time
/// unpacked to an fp32 [k][2 W] panel of q - zp over kGenericK k, and 4
/// rows of A at a time converted to fp32 per panel.
template <int W>
KILN_INLINE void genericRange(const QuantProblem &p, const QuantA &qa,
                              int64_t n0, int64_t n1) {
  constexpr int NR = 2 * W, kMr = 4;
  float *panel = reinterpret_cast<float *>(tlsPanel);
  float *sw = panel + kGenericK * NR;
  float *af = sw + kGenericBlocks * NR;
  const int64_t g = p.group;
  const int64_t depth = genericDepth(g);
  for (int64_t nb = n0; nb < n1; nb += NR) {
    const int64_t nValid = std::min<int64_t>(NR, n1 - nb);
    for (int64_t k0 = qa.k0; k0 < qa.k1; k0 += depth) {
      const int64_t k1 = std::min(qa.k1, k0 + depth), b0 = k0 / g;
      const int64_t blocks = (k1 - 1) / g - b0 + 1;
      for (int64_t bi = 0; bi < blocks; ++bi)
        for (int64_t j = 0; j < NR; ++j)
          sw[bi * NR + j] =
              j < nValid ? p.scales[(nb + j) * p.groupsPerRow + b0 + bi] : 0;
      for (int64_t kk = k0, b = b0; kk < k1; ++b) {
        const int64_t end = std::min(k1, (b + 1) * g);
        int z[NR] = {};
        for (int64_t j = 0; j < nValid; ++j)
          z[j] = zeroPoint(p, nb + j, b);
        for (; kk < end; ++kk)
          for (int64_t j = 0; j < NR; ++j)
            panel[(kk - k0) * NR + j] =
                j < nValid ? static_cast<float>(weightQ(p, nb + j, kk) - z[j])
                           : 0.0f;
      }
      for (int64_t i = 0; i < qa.mc; i += kMr) {
        const int64_t mr = std::min<int64_t>(kMr, qa.mc - i);
        for (int64_t r = 0; r < mr; ++r) {
          const int8_t *q = qa.q + (i + r) * qa.ldq + (k0 - qa.k0);
          for (int64_t t = 0; t < k1 - k0; ++t)
            af[r * kGenericK + t] = q[t];
        }
        switch (mr) {
        case 1:
          genericTile<W, 1>(p, qa, i, af, panel, sw, k0, k1, nb, nValid);
          break;
        case 2:
          genericTile<W, 2>(p, qa, i, af, panel, sw, k0, k1, nb, nValid);
          break;
        case 3:
          genericTile<W, 3>(p, qa, i, af, panel, sw, k0, k1, nb, nValid);
          break;
        default:
          genericTile<W, 4>(p, qa, i, af, panel, sw, k0, k1, nb, nValid);
          break;
        }
      }
    }
  }
}

using RangeFn = void (*)(const QuantProblem &, const QuantA &, int64_t n0,
                         int64_t n1);

void genericPortable(const QuantProblem &p, const QuantA &qa, int64_t n0,
                     int64_t n1) {
  genericRange<4>(p, qa, n0, n1);
}

//===----------------------------------------------------------------------===//
// One Int8Dot's kernels
//===----------------------------------------------------------------------===//

struct A8Kernels {
  /// Quantizes whole blocks when the group is a multiple of quantStep
  /// (nullptr: quantizeScalar always).
  QuantizeFn quantize;
  int64_t quantStep;
  /// k per GEMV step (0: no GEMV path); the GEMV kernels by bits.
  int64_t gemvStep;
  RangeFn gemv4, gemv8;
  /// Rows of W per panel; the panel kernels by bits (nullptr: generic).
  int64_t panelRows;
  RangeFn panel4, panel8;
  RangeFn generic;
};

const A8Kernels kPortableKernels = {
    nullptr, 0, 0, nullptr, nullptr, 0, nullptr, nullptr, genericPortable};

#ifdef KILN_KERNELS_X86
//===----------------------------------------------------------------------===//
// What both GEMV paths share
//===----------------------------------------------------------------------===//

// A GEMV tile is NJ rows of W (row0 .. row0 + NJ - 1, nValid of them real;
// NJ = 8 for AVX-512, 4 for AVX2) and the M <= 4 rows of A of the chunk.
// Its vector steps leave, per row i of A, the step's integer sums per 16 k
// as NJ-lane vectors (one lane per row of W); GemvChains turns them into
// the panel paths' fp32 chains (see the file comment), NJ rows of W per
// vector. AVX2 at most, so that both the AVX-512 and the AVX2 tiles inline
// it.

/// NJ-lane vectors of fp32 (F) and int32 (I) and what GemvChains does with
/// them.
template <int NJ> struct GemvLanes;

template <> struct GemvLanes<4> {
  using F = __m128;
  using I = __m128i;
  KILN_TARGET_AVX2 static KILN_INLINE F zeroF() { return _mm_setzero_ps(); }
  KILN_TARGET_AVX2 static KILN_INLINE I zeroI() { return _mm_setzero_si128(); }
  KILN_TARGET_AVX2 static KILN_INLINE I add(I a, I b) {
    return _mm_add_epi32(a, b);
  }
  KILN_TARGET_AVX2 static KILN_INLINE I mullo(I a, I b) {
    return _mm_mullo_epi32(a, b);
  }
  KILN_TARGET_AVX2 static KILN_INLINE I set1(int32_t x) {
    return _mm_set1_epi32(x);
  }
  KILN_TARGET_AVX2 static KILN_INLINE I loadI(const int32_t *x) {
    return _mm_load_si128(reinterpret_cast<const __m128i *>(x));
  }
  /// acc + float(d) * (sw * sa), fused.
  KILN_TARGET_AVX2 static KILN_INLINE F chain(F acc, I d, F sw, float sa) {
    return _mm_fmadd_ps(_mm_cvtepi32_ps(d), _mm_mul_ps(sw, _mm_set1_ps(sa)),
                        acc);
  }
  KILN_TARGET_AVX2 static KILN_INLINE void store(float *out, F v) {
    _mm_storeu_ps(out, v);
  }
  /// Rows j < nValid of scales + j * stride (0 beyond).
  KILN_TARGET_AVX2 static KILN_INLINE F load(const float *x) {
    return _mm_load_ps(x);
  }
};

template <> struct GemvLanes<8> {
  using F = __m256;
  using I = __m256i;
  KILN_TARGET_AVX2 static KILN_INLINE F zeroF() { return _mm256_setzero_ps(); }
  KILN_TARGET_AVX2 static KILN_INLINE I zeroI() {
    return _mm256_setzero_si256();
  }
  KILN_TARGET_AVX2 static KILN_INLINE I add(I a, I b) {
    return _mm256_add_epi32(a, b);
  }
  KILN_TARGET_AVX2 static KILN_INLINE I mullo(I a, I b) {
    return _mm256_mullo_epi32(a, b);
  }
  KILN_TARGET_AVX2 static KILN_INLINE I set1(int32_t x) {
    return _mm256_set1_epi32(x);
  }
  KILN_TARGET_AVX2 static KILN_INLINE I loadI(const int32_t *x) {
    return _mm256_load_si256(reinterpret_cast<const __m256i *>(x));
  }
  KILN_TARGET_AVX2 static KILN_INLINE F chain(F acc, I d, F sw, float sa) {
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(d),
                           _mm256_mul_ps(sw, _mm256_set1_ps(sa)), acc);
  }
  KILN_TARGET_AVX2 static KILN_INLINE void store(float *out, F v) {
    _mm256_storeu_ps(out, v);
  }
  KILN_TARGET_AVX2 static KILN_INLINE F load(const float *x) {
    return _mm256_load_ps(x);
  }
};

/// Blocks a GEMV slice [k0, k1) meets at most, and room for the transposed
/// scales of as many, rounded up to whole transposes.
constexpr int64_t kGemvMaxBlocks = kPanelMaxK / 16 + 1;
constexpr int64_t kGemvScaleBlocks = (kGemvMaxBlocks + 15) / 16 * 16;

/// The scales of rows row0 .. row0 + 3 of W (0 past nValid) for the blocks
/// of [k0, k1), transposed to out[(b - k0 / group) * 4 + j].
KILN_TARGET_AVX2 KILN_INLINE void gemvScales4(const QuantProblem &p,
                                              int64_t row0, int64_t nValid,
                                              int64_t k0, int64_t k1,
                                              float *out) {
  const int64_t b0 = k0 / p.group, nb = (k1 - 1) / p.group - b0 + 1;
  for (int64_t t0 = 0; t0 < nb; t0 += 4) {
    const __m128i m = _mm_cmpgt_epi32(
        _mm_set1_epi32(static_cast<int>(std::min<int64_t>(4, nb - t0))),
        _mm_setr_epi32(0, 1, 2, 3));
    __m128 r[4];
    for (int64_t j = 0; j < 4; ++j)
      r[j] = j < nValid
                 ? _mm_maskload_ps(
                       p.scales + (row0 + j) * p.groupsPerRow + b0 + t0, m)
                 : _mm_setzero_ps();
    _MM_TRANSPOSE4_PS(r[0], r[1], r[2], r[3]);
    for (int64_t t = 0; t < 4; ++t)
      _mm_store_ps(out + (t0 + t) * 4, r[t]);
  }
}

template <int M, int NJ, bool HasZp> struct GemvChains {
  using L = GemvLanes<NJ>;
  using F = typename L::F;
  using I = typename L::I;
  const QuantProblem &p;
  const QuantA &qa;
  int64_t row0, nValid;
  int64_t sliceStart, sliceEnd;
  /// The tile's scales, [block - swB0][NJ]: NJ rows per block.
  const float *swT;
  int64_t swB0;
  int64_t partStart; ///< where the integer sums in `part` begin
  F acc[M];          ///< the fp32 chain of row i of A, rows of W in lanes
  I part[M];         ///< a block's integer sums (groups longer than a step)

  KILN_TARGET_AVX2 KILN_INLINE GemvChains(const QuantProblem &p,
                                          const QuantA &qa, int64_t row0,
                                          int64_t nValid, int64_t k0,
                                          int64_t k1, const float *swT)
      : p(p), qa(qa), row0(row0), nValid(nValid), sliceStart(k0), sliceEnd(k1),
        swT(swT), swB0(k0 / p.group), partStart(k0) {
    for (int i = 0; i < M; ++i) {
      acc[i] = L::zeroF();
      part[i] = L::zeroI();
    }
  }

  /// Adds block b's integer sums d[i] (the correction -zp * sum qa added
  /// when `whole`, i.e. the part starts the block, as the panels do) to the
  /// chains: acc = fma(float(d), sw * sa, acc).
  KILN_TARGET_AVX2 KILN_INLINE void chain(int64_t b, const I *d, bool whole) {
    const F sw = L::load(swT + (b - swB0) * NJ);
    I zp = L::zeroI();
    if constexpr (HasZp)
      if (whole) {
        alignas(32) int32_t z[NJ] = {};
        for (int64_t j = 0; j < nValid; ++j)
          z[j] = zeroPoint(p, row0 + j, b);
        zp = L::loadI(z);
      }
    for (int i = 0; i < M; ++i) {
      I di = d[i];
      if (whole) {
        const I s = L::set1(qa.negSum[i * qa.ldb + b - qa.bFirst]);
        // Without stored zero points the sums are premultiplied.
        di = L::add(di, HasZp ? L::mullo(zp, s) : s);
      }
      acc[i] = L::chain(acc[i], di, sw, qa.scale[i * qa.ldb + b - qa.bFirst]);
    }
  }

  /// One vector step over [k, k + valid): sums[i][t] holds row i's sums over
  /// k + 16 t .. k + 16 t + 15. A step holds whole blocks of Per * 16 k
  /// (Per > 0: the group) or lies inside one block (Per = 0: groups that
  /// are multiples of the step).
  template <int Per>
  KILN_TARGET_AVX2 KILN_INLINE void step(int64_t k, int64_t valid,
                                         const I (*sums)[4]) {
    const int64_t g = p.group, groups = valid / 16;
    if constexpr (Per > 0) {
      const int64_t nb = groups / Per, b0 = k / g;
      for (int64_t t = 0; t < nb; ++t) {
        I d[M];
        for (int i = 0; i < M; ++i) {
          d[i] = sums[i][t * Per];
          for (int u = 1; u < Per; ++u)
            d[i] = L::add(d[i], sums[i][t * Per + u]);
        }
        chain(b0 + t, d, true);
      }
      return;
    }
    for (int i = 0; i < M; ++i)
      for (int64_t t = 0; t < groups; ++t)
        part[i] = L::add(part[i], sums[i][t]);
    const int64_t end = k + valid;
    if (end % g != 0 && end != sliceEnd)
      return;
    chain(k / g, part, partStart % g == 0);
    for (int i = 0; i < M; ++i)
      part[i] = L::zeroI();
    partStart = end;
  }

  /// C = the slice's sums, or C + them after the first slice.
  KILN_TARGET_AVX2 KILN_INLINE void store() const {
    for (int i = 0; i < M; ++i) {
      float out[NJ];
      L::store(out, acc[i]);
      float *ci = p.c + (qa.m0 + i) * p.ldc + row0;
      for (int64_t j = 0; j < nValid; ++j)
        ci[j] = sliceStart > 0 ? ci[j] + out[j] : out[j];
    }
  }
};

//===----------------------------------------------------------------------===//
// AVX-512 VNNI
//===----------------------------------------------------------------------===//

/// Lanes [0, count) set, count clamped to [0, 16].
inline __mmask16 mask16(int64_t count) {
  if (count >= 16)
    return 0xFFFF;
  return count <= 0 ? 0 : static_cast<__mmask16>((1u << count) - 1);
}

/// quantizeScalar for whole blocks and a group that is a multiple of 16.
KILN_TARGET_VNNI512 void quantizeAvx512(const QuantProblem &p, const QuantA &qa,
                                        int8_t *q, float *scale,
                                        int32_t *negSum) {
  const int64_t g = p.group;
  const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
  for (int64_t i = 0; i < qa.mc; ++i) {
    const float *a = p.a + (qa.m0 + i) * p.lda;
    int8_t *qi = q + i * qa.ldq;
    for (int64_t kb = qa.k0, bi = 0; kb < qa.k1; kb += g, ++bi) {
      __m512 mx = _mm512_setzero_ps();
      for (int64_t kk = kb; kk < kb + g; kk += 16)
        mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_loadu_ps(a + kk)));
      const float amax = _mm512_reduce_max_ps(mx);
      const __m512 inv = _mm512_set1_ps(quantInverse(amax));
      __m512i sum = _mm512_setzero_si512();
      for (int64_t kk = kb; kk < kb + g; kk += 16) {
        __m512 x = _mm512_mul_ps(_mm512_loadu_ps(a + kk), inv);
        x = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
        __m512i v = _mm512_cvt_roundps_epi32(x, _MM_FROUND_TO_NEAREST_INT |
                                                    _MM_FROUND_NO_EXC);
        sum = _mm512_add_epi32(sum, v);
        _mm_storeu_si128(reinterpret_cast<__m128i *>(qi + (kk - qa.k0)),
                         _mm512_cvtepi32_epi8(v));
      }
      scale[i * qa.ldb + bi] = quantScale(amax);
      negSum[i * qa.ldb + bi] = -_mm512_reduce_add_epi32(sum);
    }
    std::fill(qi + (qa.k1 - qa.k0), qi + qa.ldq, int8_t{0});
  }
}

/// W[row][k : k + valid] as 64 u8 in k order, zero past valid (a multiple
/// of 4, at most 64). 4-bit: a byte b becomes the word b, and
/// (b | b << 4) & 0x0F0F holds the low nibble (even k) in its low byte and
/// the high nibble (odd k) in its high byte.
template <int Bits>
KILN_TARGET_VNNI512 KILN_INLINE __m512i loadWeightsZmm(const QuantProblem &p,
                                                       int64_t row, int64_t k,
                                                       int64_t valid) {
  const uint8_t *r = p.w + row * p.rowBytes;
  if constexpr (Bits == 4) {
    const __mmask32 m =
        valid >= 64 ? ~__mmask32{0}
                    : static_cast<__mmask32>((uint64_t{1} << (valid / 2)) - 1);
    __m512i x = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, r + k / 2));
    return _mm512_ternarylogic_epi32(x, _mm512_slli_epi16(x, 4),
                                     _mm512_set1_epi16(0x0F0F), 0xA8);
  } else {
    const __mmask64 m =
        valid >= 64 ? ~__mmask64{0} : (__mmask64{1} << valid) - 1;
    return _mm512_maskz_loadu_epi8(m, r + k);
  }
}

/// How far ahead the GEMV path prefetches W, as matmul_quant.cpp's fused
/// path does (the hardware prefetchers alone keep too few of NJ
/// side-by-side streams in flight from DRAM): the same k of the rows of a
/// tile at least kPrefetchAheadBytes ahead when a tile spans at most
/// kPrefetchTileBytes, else kPrefetchBytes ahead in its own rows.
constexpr int64_t kPrefetchTileBytes = 32 << 10;
constexpr int64_t kPrefetchAheadBytes = 8192;
constexpr int64_t kPrefetchBytes = 1024;

/// Prefetches rows w0 + j * rowBytes (j < NJ) ahead of byte `offset`, once
/// per cache line, and their scales ahead of `scales` once per line of
/// those.
template <int NJ>
KILN_INLINE void prefetchRows(const uint8_t *w0, int64_t rowBytes,
                              int64_t offset, const float *s0, int64_t gpr,
                              int64_t b) {
  if (offset % 64 != 0)
    return;
  const int64_t tileBytes = NJ * rowBytes;
  const bool nextTile = tileBytes <= kPrefetchTileBytes;
  const int64_t tiles = std::max<int64_t>(1, kPrefetchAheadBytes / tileBytes);
  const uint8_t *p =
      w0 + offset + (nextTile ? tiles * tileBytes : kPrefetchBytes);
  for (int j = 0; j < NJ; ++j)
    __builtin_prefetch(p + j * rowBytes);
  if (b % 16 == 0) {
    const float *s = s0 + b + (nextTile ? tiles * NJ * gpr : 64);
    for (int j = 0; j < NJ; ++j)
      __builtin_prefetch(s + j * gpr);
  }
}

/// Per 128-bit lane L, the sums of d[0] .. d[3] over their dwords
/// 4 L .. 4 L + 3 (16 k of 4 rows of W): [d0, d1, d2, d3].
KILN_TARGET_VNNI512 KILN_INLINE __m512i sum16Zmm(const __m512i *d) {
  const __m512i x01 = _mm512_add_epi32(_mm512_unpacklo_epi32(d[0], d[1]),
                                       _mm512_unpackhi_epi32(d[0], d[1]));
  const __m512i x23 = _mm512_add_epi32(_mm512_unpacklo_epi32(d[2], d[3]),
                                       _mm512_unpackhi_epi32(d[2], d[3]));
  return _mm512_add_epi32(_mm512_unpacklo_epi64(x01, x23),
                          _mm512_unpackhi_epi64(x01, x23));
}

/// gemvScales4 for 8 rows: out[(b - k0 / group) * 8 + j], an 8 x 16
/// transpose per 16 blocks.
KILN_TARGET_VNNI512 KILN_INLINE void gemvScales8(const QuantProblem &p,
                                                 int64_t row0, int64_t nValid,
                                                 int64_t k0, int64_t k1,
                                                 float *out) {
  const int64_t b0 = k0 / p.group, nb = (k1 - 1) / p.group - b0 + 1;
  for (int64_t t0 = 0; t0 < nb; t0 += 16) {
    const __mmask16 m = mask16(nb - t0);
    __m512 r[8];
    for (int64_t j = 0; j < 8; ++j)
      r[j] = j < nValid
                 ? _mm512_maskz_loadu_ps(
                       m, p.scales + (row0 + j) * p.groupsPerRow + b0 + t0)
                 : _mm512_setzero_ps();
    // Per 128-bit lane L, a[2h] = [r(2h)[4L], r(2h+1)[4L], r(2h)[4L+1],
    // r(2h+1)[4L+1]] and a[2h+1] the same for 4L+2 and 4L+3.
    __m512 a[8];
    for (int h = 0; h < 4; ++h) {
      a[2 * h] = _mm512_unpacklo_ps(r[2 * h], r[2 * h + 1]);
      a[2 * h + 1] = _mm512_unpackhi_ps(r[2 * h], r[2 * h + 1]);
    }
    // b[4q + c], lane L: rows 4q .. 4q + 3 of column 4L + c.
    __m512 b[8];
    for (int q = 0; q < 2; ++q) {
      b[4 * q] = _mm512_shuffle_ps(a[4 * q], a[4 * q + 2], 0x44);
      b[4 * q + 1] = _mm512_shuffle_ps(a[4 * q], a[4 * q + 2], 0xEE);
      b[4 * q + 2] = _mm512_shuffle_ps(a[4 * q + 1], a[4 * q + 3], 0x44);
      b[4 * q + 3] = _mm512_shuffle_ps(a[4 * q + 1], a[4 * q + 3], 0xEE);
    }
    // Column 4L + c: lane L of b[c] then of b[4 + c].
    const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7,
                                         20, 21, 22, 23);
    const __m512i hi = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13,
                                         14, 15, 28, 29, 30, 31);
    for (int c = 0; c < 4; ++c) {
      const __m512 x = _mm512_permutex2var_ps(b[c], lo, b[4 + c]);
      const __m512 y = _mm512_permutex2var_ps(b[c], hi, b[4 + c]);
      float *o = out + (t0 + c) * 8;
      _mm256_store_ps(o, _mm512_castps512_ps256(x));
      _mm256_store_ps(o + 32, _mm512_extractf32x8_ps(x, 1));
      _mm256_store_ps(o + 64, _mm512_castps512_ps256(y));
      _mm256_store_ps(o + 96, _mm512_extractf32x8_ps(y, 1));
    }
  }
}

/// C[m0 : m0 + M][row0 : row0 + nValid] over the chunk (nValid <= 8), rows
/// of W read in place, summed as the panel path sums.
template <int M, int Bits, bool HasZp, int Per>
KILN_TARGET_VNNI512 void gemvTileZmm(const QuantProblem &p, const QuantA &qa,
                                     int64_t row0, int64_t nValid) {
  const int64_t gpr = p.groupsPerRow, depth = panelDepth(p.group);
  const float *s0 = p.scales + row0 * gpr;
  for (int64_t k0 = qa.k0; k0 < qa.k1; k0 += depth) {
    const int64_t k1 = std::min(qa.k1, k0 + depth);
    alignas(64) float swT[kGemvScaleBlocks * 8];
    gemvScales8(p, row0, nValid, k0, k1, swT);
    GemvChains<M, 8, HasZp> chains(p, qa, row0, nValid, k0, k1, swT);
    for (int64_t k = k0; k < k1; k += 64) {
      const int64_t valid = std::min<int64_t>(64, k1 - k);
      prefetchRows<8>(p.w + row0 * p.rowBytes, p.rowBytes, k * Bits / 8, s0,
                      gpr, k / p.group);
      __m512i w[8];
      for (int64_t j = 0; j < 8; ++j)
        w[j] = j < nValid ? loadWeightsZmm<Bits>(p, row0 + j, k, valid)
                          : _mm512_setzero_si512();
      __m256i sums[M][4];
      for (int i = 0; i < M; ++i) {
        const __m512i a = _mm512_loadu_si512(qa.q + i * qa.ldq + (k - qa.k0));
        __m512i d[8];
        for (int j = 0; j < 8; ++j)
          d[j] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[j], a);
        // Lane L of lo / hi: rows 0-3 / 4-7 over k + 16 L .. + 15.
        const __m512i lo = sum16Zmm(d), hi = sum16Zmm(d + 4);
        // [lo.0, hi.0 | lo.1, hi.1]: 16 k groups 0 and 1, 8 rows each; the
        // same for groups 2 and 3.
        const __m512i g01 = _mm512_permutex2var_epi64(
            lo, _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11), hi);
        const __m512i g23 = _mm512_permutex2var_epi64(
            lo, _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15), hi);
        sums[i][0] = _mm512_castsi512_si256(g01);
        sums[i][1] = _mm512_extracti64x4_epi64(g01, 1);
        sums[i][2] = _mm512_castsi512_si256(g23);
        sums[i][3] = _mm512_extracti64x4_epi64(g23, 1);
      }
      chains.template step<Per>(k, valid, sums);
    }
    chains.store();
  }
}

template <int M, int Bits, bool HasZp>
KILN_TARGET_VNNI512 void gemvTilesZmm(const QuantProblem &p, const QuantA &qa,
                                      int64_t n0, int64_t n1) {
  // Groups of 16, 32 and 64 are 1, 2 and 4 sums per block; longer ones
  // gather over steps.
  for (int64_t n = n0; n < n1; n += 8) {
    const int64_t nValid = std::min<int64_t>(8, n1 - n);
    switch (p.group) {
    case 16:
      gemvTileZmm<M, Bits, HasZp, 1>(p, qa, n, nValid);
      break;
    case 32:
      gemvTileZmm<M, Bits, HasZp, 2>(p, qa, n, nValid);
      break;
    case 64:
      gemvTileZmm<M, Bits, HasZp, 4>(p, qa, n, nValid);
      break;
    default:
      gemvTileZmm<M, Bits, HasZp, 0>(p, qa, n, nValid);
      break;
    }
  }
}

template <int Bits, bool HasZp>
KILN_TARGET_VNNI512 void gemvZmmZp(const QuantProblem &p, const QuantA &qa,
                                   int64_t n0, int64_t n1) {
  switch (qa.mc) {
  case 1:
    return gemvTilesZmm<1, Bits, HasZp>(p, qa, n0, n1);
  case 2:
    return gemvTilesZmm<2, Bits, HasZp>(p, qa, n0, n1);
  case 3:
    return gemvTilesZmm<3, Bits, HasZp>(p, qa, n0, n1);
  default:
    return gemvTilesZmm<4, Bits, HasZp>(p, qa, n0, n1);
  }
}

template <int Bits>
KILN_TARGET_VNNI512 void gemvZmm(const QuantProblem &p, const QuantA &qa,
                                 int64_t n0, int64_t n1) {
  if (p.zp)
    gemvZmmZp<Bits, true>(p, qa, n0, n1);
  else
    gemvZmmZp<Bits, false>(p, qa, n0, n1);
}

/// Transposes 16 x 16 dwords in registers: r[t] lane j <- r[j] lane t.
KILN_TARGET_VNNI512 KILN_INLINE void transpose16x16Epi32(__m512i *r) {
  __m512i a[16], b[16];
  for (int i = 0; i < 16; i += 2) {
    a[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    a[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  // b[4q + c], 128-bit lane L: rows 4q .. 4q + 3 at column 4 L + c.
  for (int q = 0; q < 16; q += 4) {
    b[q] = _mm512_unpacklo_epi64(a[q], a[q + 2]);
    b[q + 1] = _mm512_unpackhi_epi64(a[q], a[q + 2]);
    b[q + 2] = _mm512_unpacklo_epi64(a[q + 1], a[q + 3]);
    b[q + 3] = _mm512_unpackhi_epi64(a[q + 1], a[q + 3]);
  }
  // Column 4 L + c takes lane L of b[c], b[4 + c], b[8 + c], b[12 + c].
  for (int c = 0; c < 4; ++c) {
    __m512i s0 = _mm512_shuffle_i32x4(b[c], b[4 + c], 0x44);
    __m512i s1 = _mm512_shuffle_i32x4(b[c], b[4 + c], 0xEE);
    __m512i s2 = _mm512_shuffle_i32x4(b[8 + c], b[12 + c], 0x44);
    __m512i s3 = _mm512_shuffle_i32x4(b[8 + c], b[12 + c], 0xEE);
    r[c] = _mm512_shuffle_i32x4(s0, s2, 0x88);
    r[4 + c] = _mm512_shuffle_i32x4(s0, s2, 0xDD);
    r[8 + c] = _mm512_shuffle_i32x4(s1, s3, 0x88);
    r[12 + c] = _mm512_shuffle_i32x4(s1, s3, 0xDD);
  }
}

/// A panel of `rows` rows of W over k in [k0, k1): weights as u8
/// [(k - k0) / 4][rows][4], and per block meeting the range (from bFirst)
/// the rows' scales and zero points. Rows past nValid are zero.
struct Panel {
  uint8_t *w;
  float *sw;
  int32_t *zp;
  int64_t k0, k1, bFirst;
};

Panel panelBuffers(int64_t rows) {
  Panel pc{};
  pc.w = tlsPanel;
  pc.sw = reinterpret_cast<float *>(tlsPanel + rows * kPanelMaxK);
  pc.zp = reinterpret_cast<int32_t *>(pc.sw + kPanelMaxBlocks * rows);
  return pc;
}

/// Prefetches part `part` of `parts` of the cache lines that the next
/// panel (rows [nb, nb + rows) below n1, k in [k0, k1)) will read: the
/// panel's tiles each fetch a share while they compute, so packing finds
/// its rows in L1 instead of L3.
void prefetchPanel(const QuantProblem &p, int64_t nb, int64_t rows, int64_t n1,
                   int64_t k0, int64_t k1, int64_t part, int64_t parts) {
  rows = std::min(rows, n1 - nb);
  if (rows <= 0)
    return;
  const int64_t first = k0 * p.bits / 8 / 64, last = (k1 * p.bits / 8 - 1) / 64;
  // One more line per row for the scales (a line holds 16 blocks).
  const int64_t perRow = last - first + 2, lines = rows * perRow;
  const int64_t begin = lines * part / parts, end = lines * (part + 1) / parts;
  int64_t j = begin / perRow, line = begin % perRow;
  const uint8_t *w = p.w + (nb + j) * p.rowBytes + first * 64;
  const float *sc = p.scales + (nb + j) * p.groupsPerRow + k0 / p.group;
  for (int64_t l = begin; l < end; ++l) {
    if (line < perRow - 1) {
      __builtin_prefetch(w + line * 64);
      ++line;
    } else {
      __builtin_prefetch(sc);
      line = 0;
      w += p.rowBytes;
      sc += p.groupsPerRow;
    }
  }
}

/// The zero points of rows [nb, nb + nValid) for the blocks of
/// [pc.k0, pc.k1), `rows` per block. The destination is contiguous: strided
/// stores here became (slow) scatters.
void fillPanelZeroPoints(const QuantProblem &p, int64_t nb, int64_t nValid,
                         int64_t rows, Panel &pc) {
  const int64_t blocks = (pc.k1 - 1) / p.group - pc.bFirst + 1;
  for (int64_t b = 0; b < blocks; ++b) {
    int32_t *zp = pc.zp + b * rows;
    // Rows past nValid have zero weights and scales: any zero point does.
    if (!p.zp) {
      std::fill(zp, zp + rows, p.bits == 4 ? 8 : 128);
      continue;
    }
    for (int64_t j = 0; j < rows; ++j)
      zp[j] = j < nValid ? zeroPoint(p, nb + j, pc.bFirst + b) : 0;
  }
}

template <int Bits>
KILN_TARGET_VNNI512 void packPanelZmm(const QuantProblem &p, int64_t nb,
                                      int64_t nValid, Panel &pc) {
  for (int64_t h = 0; h < 32; h += 16)
    for (int64_t k = pc.k0; k < pc.k1; k += 64) {
      const int64_t valid = std::min<int64_t>(64, pc.k1 - k);
      __m512i r[16];
      for (int64_t j = 0; j < 16; ++j)
        r[j] = h + j < nValid ? loadWeightsZmm<Bits>(p, nb + h + j, k, valid)
                              : _mm512_setzero_si512();
      transpose16x16Epi32(r);
      uint8_t *dst = pc.w + (k - pc.k0) * 32 + h * 4;
      for (int64_t t = 0; t < valid / 4; ++t)
        _mm512_storeu_si512(dst + t * 128, r[t]);
    }
  // Scales [block][32 rows]: one gather per block and 16 rows.
  const int64_t gpr = p.groupsPerRow;
  const int64_t blocks = (pc.k1 - 1) / p.group - pc.bFirst + 1;
  const __m512i rowsAt = _mm512_mullo_epi32(
      _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
      _mm512_set1_epi32(static_cast<int>(gpr)));
  for (int64_t h = 0; h < 32; h += 16) {
    const __mmask16 m = mask16(nValid - h);
    const float *base = p.scales + (nb + h) * gpr + pc.bFirst;
    for (int64_t b = 0; b < blocks; ++b)
      _mm512_storeu_ps(pc.sw + b * 32 + h,
                       _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, rowsAt,
                                                base + b, 4));
  }
  fillPanelZeroPoints(p, nb, nValid, 32, pc);
}

/// C[m0 + i0 : + MR][nb : nb + nValid] (+)= the chunk rows i0.. of A times
/// the panel: per 4 k a broadcast dword of each row against 2 x 16 rows.
template <int MR>
KILN_TARGET_VNNI512 void panelTileZmm(const QuantProblem &p, const QuantA &qa,
                                      int64_t i0, const Panel &pc, int64_t nb,
                                      int64_t nValid) {
  const int64_t g = p.group;
  // -zp * sum qa in 16-bit multiplies while sums fit in 16 bits.
  const bool wideSums = g > 256;
  __m512 acc[MR][2];
  for (int i = 0; i < MR; ++i)
    acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  const int8_t *a = qa.q + i0 * qa.ldq - qa.k0;
  for (int64_t kk = pc.k0, b = pc.bFirst; kk < pc.k1; ++b) {
    const int64_t end = std::min(pc.k1, (b + 1) * g);
    const int64_t pb = (b - pc.bFirst) * 32, ab = b - qa.bFirst;
    __m512i d[MR][2];
    if (kk == b * g && !p.zp) {
      // The implied zero point is the same for every row of W.
      for (int i = 0; i < MR; ++i)
        d[i][0] = d[i][1] =
            _mm512_set1_epi32(qa.negSum[(i0 + i) * qa.ldb + ab]);
    } else if (kk == b * g) {
      const __m512i z0 = _mm512_loadu_si512(pc.zp + pb);
      const __m512i z1 = _mm512_loadu_si512(pc.zp + pb + 16);
      for (int i = 0; i < MR; ++i) {
        const __m512i s = _mm512_set1_epi32(qa.negSum[(i0 + i) * qa.ldb + ab]);
        d[i][0] =
            wideSums ? _mm512_mullo_epi32(z0, s) : _mm512_madd_epi16(z0, s);
        d[i][1] =
            wideSums ? _mm512_mullo_epi32(z1, s) : _mm512_madd_epi16(z1, s);
      }
    } else {
      for (int i = 0; i < MR; ++i)
        d[i][0] = d[i][1] = _mm512_setzero_si512();
    }
    const uint8_t *w = pc.w + (kk - pc.k0) * 32;
#pragma GCC unroll 4
    for (int64_t t = kk; t < end; t += 4, w += 128) {
      const __m512i w0 = _mm512_loadu_si512(w), w1 = _mm512_loadu_si512(w + 64);
      for (int i = 0; i < MR; ++i) {
        int32_t x;
        std::memcpy(&x, a + i * qa.ldq + t, 4);
        const __m512i ai = _mm512_set1_epi32(x);
        d[i][0] = _mm512_dpbusd_epi32(d[i][0], w0, ai);
        d[i][1] = _mm512_dpbusd_epi32(d[i][1], w1, ai);
      }
    }
    const __m512 s0 = _mm512_loadu_ps(pc.sw + pb);
    const __m512 s1 = _mm512_loadu_ps(pc.sw + pb + 16);
    for (int i = 0; i < MR; ++i) {
      const __m512 sa = _mm512_set1_ps(qa.scale[(i0 + i) * qa.ldb + ab]);
      acc[i][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d[i][0]),
                                  _mm512_mul_ps(s0, sa), acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d[i][1]),
                                  _mm512_mul_ps(s1, sa), acc[i][1]);
    }
    kk = end;
  }
  const __mmask16 m0 = mask16(nValid), m1 = mask16(nValid - 16);
  for (int i = 0; i < MR; ++i) {
    float *ci = p.c + (qa.m0 + i0 + i) * p.ldc + nb;
    if (pc.k0 > 0) {
      acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_maskz_loadu_ps(m0, ci));
      acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_maskz_loadu_ps(m1, ci + 16));
    }
    _mm512_mask_storeu_ps(ci, m0, acc[i][0]);
    _mm512_mask_storeu_ps(ci + 16, m1, acc[i][1]);
  }
}

template <int Bits>
KILN_TARGET_VNNI512 void panelZmm(const QuantProblem &p, const QuantA &qa,
                                  int64_t n0, int64_t n1) {
  constexpr int kMr = 6;
  using TileFn = void (*)(const QuantProblem &, const QuantA &, int64_t,
                          const Panel &, int64_t, int64_t);
  static constexpr TileFn tiles[kMr + 1] = {
      nullptr,         panelTileZmm<1>, panelTileZmm<2>, panelTileZmm<3>,
      panelTileZmm<4>, panelTileZmm<5>, panelTileZmm<6>};
  Panel pc = panelBuffers(32);
  const int64_t depth = panelDepth(p.group),
                tileCount = (qa.mc + kMr - 1) / kMr;
  for (int64_t nb = n0; nb < n1; nb += 32) {
    const int64_t nValid = std::min<int64_t>(32, n1 - nb);
    for (pc.k0 = qa.k0; pc.k0 < qa.k1; pc.k0 += depth) {
      pc.k1 = std::min(qa.k1, pc.k0 + depth);
      pc.bFirst = pc.k0 / p.group;
      packPanelZmm<Bits>(p, nb, nValid, pc);
      // The next panel: the next k range of these rows, or the next rows.
      const bool lastK = pc.k1 == qa.k1;
      const int64_t nextNb = lastK ? nb + 32 : nb;
      const int64_t nextK0 = lastK ? qa.k0 : pc.k1;
      const int64_t nextK1 = std::min(qa.k1, nextK0 + depth);
      for (int64_t i = 0, t = 0; i < qa.mc; i += kMr, ++t) {
        prefetchPanel(p, nextNb, 32, n1, nextK0, nextK1, t, tileCount);
        tiles[std::min<int64_t>(kMr, qa.mc - i)](p, qa, i, pc, nb, nValid);
      }
    }
  }
}

//===----------------------------------------------------------------------===//
// AVX2, with or without AVX-VNNI
//===----------------------------------------------------------------------===//

/// quantizeScalar for whole blocks and a group that is a multiple of 16.
KILN_TARGET_AVX2 void quantizeAvx2(const QuantProblem &p, const QuantA &qa,
                                   int8_t *q, float *scale, int32_t *negSum) {
  const int64_t g = p.group;
  const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
  const __m256 absMask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  // Dwords of the two packs: v0[0:4], v1[0:4], (copies), v0[4:8], v1[4:8].
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t i = 0; i < qa.mc; ++i) {
    const float *a = p.a + (qa.m0 + i) * p.lda;
    int8_t *qi = q + i * qa.ldq;
    for (int64_t kb = qa.k0, bi = 0; kb < qa.k1; kb += g, ++bi) {
      __m256 mx = _mm256_setzero_ps();
      for (int64_t kk = kb; kk < kb + g; kk += 8)
        mx = _mm256_max_ps(mx, _mm256_and_ps(_mm256_loadu_ps(a + kk), absMask));
      __m128 m4 =
          _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
      m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
      m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
      const float amax = _mm_cvtss_f32(m4);
      const __m256 inv = _mm256_set1_ps(quantInverse(amax));
      __m256i sum = _mm256_setzero_si256();
      for (int64_t kk = kb; kk < kb + g; kk += 16) {
        __m256i v[2];
        for (int h = 0; h < 2; ++h) {
          __m256 x = _mm256_mul_ps(_mm256_loadu_ps(a + kk + 8 * h), inv);
          x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
          v[h] = _mm256_cvtps_epi32(_mm256_round_ps(
              x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
          sum = _mm256_add_epi32(sum, v[h]);
        }
        __m256i w = _mm256_packs_epi32(v[0], v[1]);
        w = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w, w), order);
        _mm_storeu_si128(reinterpret_cast<__m128i *>(qi + (kk - qa.k0)),
                         _mm256_castsi256_si128(w));
      }
      __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum),
                                 _mm256_extracti128_si256(sum, 1));
      s4 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 1));
      scale[i * qa.ldb + bi] = quantScale(amax);
      negSum[i * qa.ldb + bi] = -_mm_cvtsi128_si32(s4);
    }
    std::fill(qi + (qa.k1 - qa.k0), qi + qa.ldq, int8_t{0});
  }
}

/// acc += per dword the sum of 4 u8 of w times 4 s8 of a: vpdpbusd in its
/// VEX (AVX-VNNI) form. Inline assembly, because the intrinsic would need
/// the avxvnni target on every function it inlines into, and those are
/// shared with CPUs without it (the callers check cpuid).
KILN_TARGET_AVX2 KILN_INLINE void dpbusdVex(__m256i &acc, const __m256i &w,
                                            const __m256i &a) {
  __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(w), "x"(a));
}

/// The same with vpmaddubsw (pairs to 16 bits, which 4-bit weights cannot
/// saturate: 2 * 15 * 127) and vpmaddwd.
KILN_TARGET_AVX2 KILN_INLINE void dpbusdMadd(__m256i &acc, const __m256i &w,
                                             const __m256i &a) {
  acc = _mm256_add_epi32(
      acc, _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), _mm256_set1_epi16(1)));
}

template <bool Vnni>
KILN_TARGET_AVX2 KILN_INLINE void dpbusdAvx2(__m256i &acc, const __m256i &w,
                                             const __m256i &a) {
  if constexpr (Vnni)
    dpbusdVex(acc, w, a);
  else
    dpbusdMadd(acc, w, a);
}

/// W[row][k : k + valid] as 32 u8 in k order, zero past valid (a multiple
/// of 4, at most 32); see loadWeightsZmm.
template <int Bits>
KILN_TARGET_AVX2 KILN_INLINE __m256i loadWeightsYmm(const QuantProblem &p,
                                                    int64_t row, int64_t k,
                                                    int64_t valid) {
  const uint8_t *r = p.w + row * p.rowBytes + k * Bits / 8;
  const int64_t bytes = valid * Bits / 8;
  alignas(32) uint8_t tail[32] = {};
  if (bytes < 32 / (8 / Bits)) {
    std::memcpy(tail, r, bytes);
    r = tail;
  }
  if constexpr (Bits == 4) {
    __m256i x = _mm256_cvtepu8_epi16(
        _mm_loadu_si128(reinterpret_cast<const __m128i *>(r)));
    return _mm256_and_si256(_mm256_or_si256(x, _mm256_slli_epi16(x, 4)),
                            _mm256_set1_epi16(0x0F0F));
  } else {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i *>(r));
  }
}

/// sum16Zmm for 8 dwords: per 128-bit lane L, [d0, d1, d2, d3] summed
/// over dwords 4 L .. 4 L + 3.
KILN_TARGET_AVX2 KILN_INLINE __m256i sum16Ymm(const __m256i *d) {
  const __m256i x01 = _mm256_add_epi32(_mm256_unpacklo_epi32(d[0], d[1]),
                                       _mm256_unpackhi_epi32(d[0], d[1]));
  const __m256i x23 = _mm256_add_epi32(_mm256_unpacklo_epi32(d[2], d[3]),
                                       _mm256_unpackhi_epi32(d[2], d[3]));
  return _mm256_add_epi32(_mm256_unpacklo_epi64(x01, x23),
                          _mm256_unpackhi_epi64(x01, x23));
}

/// gemvTileZmm with 32 k per step.
template <bool Vnni, int M, int Bits, bool HasZp, int Per>
KILN_TARGET_AVX2 void gemvTileYmm(const QuantProblem &p, const QuantA &qa,
                                  int64_t row0, int64_t nValid) {
  const int64_t gpr = p.groupsPerRow, depth = panelDepth(p.group);
  const float *s0 = p.scales + row0 * gpr;
  for (int64_t k0 = qa.k0; k0 < qa.k1; k0 += depth) {
    const int64_t k1 = std::min(qa.k1, k0 + depth);
    alignas(64) float swT[kGemvScaleBlocks * 4];
    gemvScales4(p, row0, nValid, k0, k1, swT);
    GemvChains<M, 4, HasZp> chains(p, qa, row0, nValid, k0, k1, swT);
    for (int64_t k = k0; k < k1; k += 32) {
      const int64_t valid = std::min<int64_t>(32, k1 - k);
      prefetchRows<4>(p.w + row0 * p.rowBytes, p.rowBytes, k * Bits / 8, s0,
                      gpr, k / p.group);
      __m256i w[4];
      for (int64_t j = 0; j < 4; ++j)
        w[j] = j < nValid ? loadWeightsYmm<Bits>(p, row0 + j, k, valid)
                          : _mm256_setzero_si256();
      __m128i sums[M][4];
      for (int i = 0; i < M; ++i) {
        const __m256i a = _mm256_loadu_si256(
            reinterpret_cast<const __m256i *>(qa.q + i * qa.ldq + (k - qa.k0)));
        __m256i d[4];
        for (int j = 0; j < 4; ++j) {
          d[j] = _mm256_setzero_si256();
          dpbusdAvx2<Vnni>(d[j], w[j], a);
        }
        const __m256i y = sum16Ymm(d);
        sums[i][0] = _mm256_castsi256_si128(y);
        sums[i][1] = _mm256_extracti128_si256(y, 1);
      }
      chains.template step<Per>(k, valid, sums);
    }
    chains.store();
  }
}

template <bool Vnni, int M, int Bits, bool HasZp>
KILN_TARGET_AVX2 void gemvTilesYmm(const QuantProblem &p, const QuantA &qa,
                                   int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; n += 4) {
    const int64_t nValid = std::min<int64_t>(4, n1 - n);
    switch (p.group) {
    case 16:
      gemvTileYmm<Vnni, M, Bits, HasZp, 1>(p, qa, n, nValid);
      break;
    case 32:
      gemvTileYmm<Vnni, M, Bits, HasZp, 2>(p, qa, n, nValid);
      break;
    default:
      gemvTileYmm<Vnni, M, Bits, HasZp, 0>(p, qa, n, nValid);
      break;
    }
  }
}

template <bool Vnni, int Bits, bool HasZp>
KILN_TARGET_AVX2 void gemvYmmZp(const QuantProblem &p, const QuantA &qa,
                                int64_t n0, int64_t n1) {
  switch (qa.mc) {
  case 1:
    return gemvTilesYmm<Vnni, 1, Bits, HasZp>(p, qa, n0, n1);
  case 2:
    return gemvTilesYmm<Vnni, 2, Bits, HasZp>(p, qa, n0, n1);
  case 3:
    return gemvTilesYmm<Vnni, 3, Bits, HasZp>(p, qa, n0, n1);
  default:
    return gemvTilesYmm<Vnni, 4, Bits, HasZp>(p, qa, n0, n1);
  }
}

template <bool Vnni, int Bits>
KILN_TARGET_AVX2 void gemvYmm(const QuantProblem &p, const QuantA &qa,
                              int64_t n0, int64_t n1) {
  if (p.zp)
    gemvYmmZp<Vnni, Bits, true>(p, qa, n0, n1);
  else
    gemvYmmZp<Vnni, Bits, false>(p, qa, n0, n1);
}

/// Transposes 8 x 8 dwords in registers: r[t] lane j <- r[j] lane t.
KILN_TARGET_AVX2 KILN_INLINE void transpose8x8Epi32(__m256i *r) {
  __m256i a[8], b[8];
  for (int i = 0; i < 8; i += 2) {
    a[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
    a[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int q = 0; q < 8; q += 4) {
    b[q] = _mm256_unpacklo_epi64(a[q], a[q + 2]);
    b[q + 1] = _mm256_unpackhi_epi64(a[q], a[q + 2]);
    b[q + 2] = _mm256_unpacklo_epi64(a[q + 1], a[q + 3]);
    b[q + 3] = _mm256_unpackhi_epi64(a[q + 1], a[q + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    r[c] = _mm256_permute2x128_si256(b[c], b[4 + c], 0x20);
    r[4 + c] = _mm256_permute2x128_si256(b[c], b[4 + c], 0x31);
  }
}

template <int Bits>
KILN_TARGET_AVX2 void packPanelYmm(const QuantProblem &p, int64_t nb,
                                   int64_t nValid, Panel &pc) {
  for (int64_t h = 0; h < 16; h += 8)
    for (int64_t k = pc.k0; k < pc.k1; k += 32) {
      const int64_t valid = std::min<int64_t>(32, pc.k1 - k);
      __m256i r[8];
      for (int64_t j = 0; j < 8; ++j)
        r[j] = h + j < nValid ? loadWeightsYmm<Bits>(p, nb + h + j, k, valid)
                              : _mm256_setzero_si256();
      transpose8x8Epi32(r);
      uint8_t *dst = pc.w + (k - pc.k0) * 16 + h * 4;
      for (int64_t t = 0; t < valid / 4; ++t)
        _mm256_storeu_si256(reinterpret_cast<__m256i *>(dst + t * 64), r[t]);
    }
  // Scales [block][16 rows]: one gather per block and 8 rows.
  const int64_t gpr = p.groupsPerRow;
  const int64_t blocks = (pc.k1 - 1) / p.group - pc.bFirst + 1;
  const __m256i laneIds = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i rowsAt =
      _mm256_mullo_epi32(laneIds, _mm256_set1_epi32(static_cast<int>(gpr)));
  for (int64_t h = 0; h < 16; h += 8) {
    const __m256i m = _mm256_cmpgt_epi32(
        _mm256_set1_epi32(static_cast<int>(std::min<int64_t>(8, nValid - h))),
        laneIds);
    const float *base = p.scales + (nb + h) * gpr + pc.bFirst;
    for (int64_t b = 0; b < blocks; ++b)
      _mm256_storeu_ps(pc.sw + b * 16 + h,
                       _mm256_mask_i32gather_ps(_mm256_setzero_ps(), base + b,
                                                rowsAt, _mm256_castsi256_ps(m),
                                                4));
  }
  fillPanelZeroPoints(p, nb, nValid, 16, pc);
}

/// panelTileZmm for 2 x 8 rows of W. Without VNNI, vpmaddubsw pairs add up
/// in 16 bits for 8 steps (8 * 2 * 15 * 127 < 2^15) before one vpmaddwd.
template <bool Vnni, int MR>
KILN_TARGET_AVX2 void panelTileYmm(const QuantProblem &p, const QuantA &qa,
                                   int64_t i0, const Panel &pc, int64_t nb,
                                   int64_t nValid) {
  const int64_t g = p.group;
  const bool wideSums = g > 256;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[MR][2];
  for (int i = 0; i < MR; ++i)
    acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  const int8_t *a = qa.q + i0 * qa.ldq - qa.k0;
  for (int64_t kk = pc.k0, b = pc.bFirst; kk < pc.k1; ++b) {
    const int64_t end = std::min(pc.k1, (b + 1) * g);
    const int64_t pb = (b - pc.bFirst) * 16, ab = b - qa.bFirst;
    __m256i d[MR][2];
    if (kk == b * g && !p.zp) {
      for (int i = 0; i < MR; ++i)
        d[i][0] = d[i][1] =
            _mm256_set1_epi32(qa.negSum[(i0 + i) * qa.ldb + ab]);
    } else if (kk == b * g) {
      const __m256i z0 =
          _mm256_loadu_si256(reinterpret_cast<const __m256i *>(pc.zp + pb));
      const __m256i z1 =
          _mm256_loadu_si256(reinterpret_cast<const __m256i *>(pc.zp + pb + 8));
      for (int i = 0; i < MR; ++i) {
        const __m256i s = _mm256_set1_epi32(qa.negSum[(i0 + i) * qa.ldb + ab]);
        d[i][0] =
            wideSums ? _mm256_mullo_epi32(z0, s) : _mm256_madd_epi16(z0, s);
        d[i][1] =
            wideSums ? _mm256_mullo_epi32(z1, s) : _mm256_madd_epi16(z1, s);
      }
    } else {
      for (int i = 0; i < MR; ++i)
        d[i][0] = d[i][1] = _mm256_setzero_si256();
    }
    const uint8_t *w = pc.w + (kk - pc.k0) * 16;
    for (int64_t t0 = kk; t0 < end;) {
      const int64_t t1 = Vnni ? end : std::min(end, t0 + 32);
      __m256i h[MR][2];
      if constexpr (!Vnni)
        for (int i = 0; i < MR; ++i)
          h[i][0] = h[i][1] = _mm256_setzero_si256();
#pragma GCC unroll 4
      for (int64_t t = t0; t < t1; t += 4, w += 64) {
        const __m256i w0 =
            _mm256_loadu_si256(reinterpret_cast<const __m256i *>(w));
        const __m256i w1 =
            _mm256_loadu_si256(reinterpret_cast<const __m256i *>(w + 32));
        for (int i = 0; i < MR; ++i) {
          int32_t x;
          std::memcpy(&x, a + i * qa.ldq + t, 4);
          const __m256i ai = _mm256_set1_epi32(x);
          if constexpr (Vnni) {
            dpbusdVex(d[i][0], w0, ai);
            dpbusdVex(d[i][1], w1, ai);
          } else {
            h[i][0] = _mm256_add_epi16(h[i][0], _mm256_maddubs_epi16(w0, ai));
            h[i][1] = _mm256_add_epi16(h[i][1], _mm256_maddubs_epi16(w1, ai));
          }
        }
      }
      if constexpr (!Vnni)
        for (int i = 0; i < MR; ++i) {
          d[i][0] = _mm256_add_epi32(d[i][0], _mm256_madd_epi16(h[i][0], ones));
          d[i][1] = _mm256_add_epi32(d[i][1], _mm256_madd_epi16(h[i][1], ones));
        }
      t0 = t1;
    }
    const __m256 s0 = _mm256_loadu_ps(pc.sw + pb);
    const __m256 s1 = _mm256_loadu_ps(pc.sw + pb + 8);
    for (int i = 0; i < MR; ++i) {
      const __m256 sa = _mm256_set1_ps(qa.scale[(i0 + i) * qa.ldb + ab]);
      acc[i][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d[i][0]),
                                  _mm256_mul_ps(s0, sa), acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d[i][1]),
                                  _mm256_mul_ps(s1, sa), acc[i][1]);
    }
    kk = end;
  }
  for (int i = 0; i < MR; ++i) {
    float *ci = p.c + (qa.m0 + i0 + i) * p.ldc + nb;
    alignas(32) float out[16];
    _mm256_store_ps(out, acc[i][0]);
    _mm256_store_ps(out + 8, acc[i][1]);
    for (int64_t j = 0; j < nValid; ++j)
      ci[j] = pc.k0 > 0 ? ci[j] + out[j] : out[j];
  }
}

template <bool Vnni, int Bits>
KILN_TARGET_AVX2 void panelYmm(const QuantProblem &p, const QuantA &qa,
                               int64_t n0, int64_t n1) {
  constexpr int kMr = Vnni ? 3 : 2;
  using TileFn = void (*)(const QuantProblem &, const QuantA &, int64_t,
                          const Panel &, int64_t, int64_t);
  static constexpr TileFn tiles[4] = {nullptr, panelTileYmm<Vnni, 1>,
                                      panelTileYmm<Vnni, 2>,
                                      panelTileYmm<Vnni, 3>};
  Panel pc = panelBuffers(16);
  const int64_t depth = panelDepth(p.group),
                tileCount = (qa.mc + kMr - 1) / kMr;
  for (int64_t nb = n0; nb < n1; nb += 16) {
    const int64_t nValid = std::min<int64_t>(16, n1 - nb);
    for (pc.k0 = qa.k0; pc.k0 < qa.k1; pc.k0 += depth) {
      pc.k1 = std::min(qa.k1, pc.k0 + depth);
      pc.bFirst = pc.k0 / p.group;
      packPanelYmm<Bits>(p, nb, nValid, pc);
      const bool lastK = pc.k1 == qa.k1;
      const int64_t nextNb = lastK ? nb + 16 : nb;
      const int64_t nextK0 = lastK ? qa.k0 : pc.k1;
      const int64_t nextK1 = std::min(qa.k1, nextK0 + depth);
      for (int64_t i = 0, t = 0; i < qa.mc; i += kMr, ++t) {
        prefetchPanel(p, nextNb, 16, n1, nextK0, nextK1, t, tileCount);
        tiles[std::min<int64_t>(kMr, qa.mc - i)](p, qa, i, pc, nb, nValid);
      }
    }
  }
}

KILN_TARGET_AVX2 void genericAvx2(const QuantProblem &p, const QuantA &qa,
                                  int64_t n0, int64_t n1) {
  genericRange<8>(p, qa, n0, n1);
}

// Every AVX-512 VNNI CPU has AVX2 for the generic path.
const A8Kernels kAvx512VnniKernels = {quantizeAvx512, 16,          64,
                                      gemvZmm<4>,     gemvZmm<8>,  32,
                                      panelZmm<4>,    panelZmm<8>, genericAvx2};

const A8Kernels kAvxVnniKernels = {quantizeAvx2,
                                   16,
                                   32,
                                   gemvYmm<true, 4>,
                                   gemvYmm<true, 8>,
                                   16,
                                   panelYmm<true, 4>,
                                   panelYmm<true, 8>,
                                   genericAvx2};

// 8-bit weights would saturate vpmaddubsw: they take the generic path.
const A8Kernels kAvx2Kernels = {quantizeAvx2,       16,      32,
                                gemvYmm<false, 4>,  nullptr, 16,
                                panelYmm<false, 4>, nullptr, genericAvx2};

bool cpuHasAvx512Vnni() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512vnni");
}

bool cpuHasAvxVnni() {
  __builtin_cpu_init();
  return isaSupported(Isa::Avx2) && __builtin_cpu_supports("avxvnni");
}
#endif // KILN_KERNELS_X86

const A8Kernels &kernelsFor(Int8Dot dot) {
#ifdef KILN_KERNELS_X86
  switch (dot) {
  case Int8Dot::Avx512Vnni:
    return kAvx512VnniKernels;
  case Int8Dot::AvxVnni:
    return kAvxVnniKernels;
  case Int8Dot::Avx2:
    return kAvx2Kernels;
  case Int8Dot::Portable:
    break;
  }
#else
  (void)dot;
#endif
  return kPortableKernels;
}

//===----------------------------------------------------------------------===//
// Driver
//===----------------------------------------------------------------------===//

int64_t roundUp(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

int64_t gcd(int64_t a, int64_t b) {
  while (b) {
    int64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/// Where a chunk of `rows` x `kc` lives in tlsQuantA: q, then block
/// scales and sums.
struct QuantALayout {
  int64_t ldq, ldb, scaleAt, negSumAt, bytes;
};

QuantALayout layoutFor(int64_t rows, int64_t kc, int64_t group) {
  QuantALayout l{};
  l.ldq = roundUp(kc, 64);
  // A chunk starting mid-block meets at most two more blocks than kc / g.
  l.ldb = roundUp(kc / group + 2, 16);
  l.scaleAt = rows * l.ldq;
  l.negSumAt = l.scaleAt + rows * l.ldb * 4;
  l.bytes = l.negSumAt + rows * l.ldb * 4;
  return l;
}

/// Whether a GEMV path with `stepK` k per vector step takes a group: whole
/// blocks per step or whole steps per block, and 16 k per block at least
/// (GemvChains sums per 16 k).
bool gemvTakes(int64_t group, int64_t stepK) {
  return group % 16 == 0 && (stepK % group == 0 || group % stepK == 0);
}

void matmulQuantA8(const A8Kernels &f, ThreadPool *pool,
                   const QuantProblem &p) {
  if (p.m <= 0 || p.n <= 0)
    return;
  if (p.k <= 0) {
    for (int64_t i = 0; i < p.m; ++i)
      std::fill(p.c + i * p.ldc, p.c + i * p.ldc + p.n, 0.0f);
    return;
  }
  const int64_t g = p.group;
  RangeFn kernel = f.generic;
  int64_t rowUnit = kGenericRows, depth = genericDepth(g);
  const RangeFn gemv = p.bits == 4 ? f.gemv4 : f.gemv8;
  const RangeFn panel = p.bits == 4 ? f.panel4 : f.panel8;
  // GEMV and panel sum alike (the file comment), so M may choose.
  if (g % 4 == 0 && p.m <= kMaxGemvM && gemv && gemvTakes(g, f.gemvStep)) {
    kernel = gemv;
    rowUnit = kGemvRowUnit;
    depth = panelDepth(g);
  } else if (g % 4 == 0 && panel) {
    kernel = panel;
    rowUnit = f.panelRows;
    depth = panelDepth(g);
  }

  // Chunks of A: rows, and k in units that are whole blocks, whole 64-k
  // steps and whole slices (so that a row sums in the same slices at any
  // M) where one row of such a unit fits.
  auto lcm = [](int64_t a, int64_t b) { return a / gcd(a, b) * b; };
  int64_t unit = lcm(lcm(g, 64), depth);
  int64_t rows = std::min(p.m, kMaxChunkRows);
  auto fits = [&](int64_t r, int64_t kc) {
    return layoutFor(r, kc, g).bytes <= kQuantABytes;
  };
  while (rows > 1 && !fits(rows, unit))
    rows = (rows + 1) / 2;
  if (!fits(rows, unit)) {
    // One row of a block is more than the buffer: chunks split blocks (at
    // slice boundaries) and the scalar quantizer sees whole ones.
    unit = lcm(64, depth);
  }
  int64_t kc = unit;
  while (kc < p.k && fits(rows, kc + unit))
    kc += unit;
  kc = std::min(kc, p.k);
  const bool wholeBlocks = kc % g == 0;
  const QuantizeFn quantize = f.quantize && wholeBlocks && g % f.quantStep == 0
                                  ? f.quantize
                                  : quantizeScalar;

  int64_t threads = pool ? pool->numThreads() : 1;
  threads = std::max<int64_t>(
      1, std::min(threads, 2 * p.m * p.n * p.k / kMinFlopsPerThread));
  const int64_t units = (p.n + rowUnit - 1) / rowUnit;

  for (int64_t m0 = 0; m0 < p.m; m0 += rows) {
    const int64_t mc = std::min(rows, p.m - m0);
    for (int64_t k0 = 0; k0 < p.k; k0 += kc) {
      const int64_t k1 = std::min(p.k, k0 + kc);
      const QuantALayout l = layoutFor(mc, k1 - k0, g);
      int8_t *buf = tlsQuantA;
      QuantA qa{};
      qa.m0 = m0;
      qa.mc = mc;
      qa.k0 = k0;
      qa.k1 = k1;
      qa.bFirst = k0 / g;
      qa.q = buf;
      qa.ldq = l.ldq;
      qa.ldb = l.ldb;
      float *scale = reinterpret_cast<float *>(buf + l.scaleAt);
      int32_t *negSum = reinterpret_cast<int32_t *>(buf + l.negSumAt);
      qa.scale = scale;
      qa.negSum = negSum;
      quantize(p, qa, buf, scale, negSum);
      if (!p.zp)
        // Unsigned: padding entries hold stale sums from earlier calls,
        // whose product must not be a signed overflow.
        for (int64_t i = 0; i < mc * l.ldb; ++i)
          negSum[i] = static_cast<int32_t>(static_cast<uint32_t>(negSum[i]) *
                                           (p.bits == 4 ? 8u : 128u));
      auto range = [&](int64_t u0, int64_t u1) {
        kernel(p, qa, u0 * rowUnit, std::min(p.n, u1 * rowUnit));
      };
      if (threads == 1)
        range(0, units);
      else
        pool->parallelFor(units, range,
                          std::max<int64_t>(1, units / (4 * threads)));
    }
  }
}

} // namespace

const char *int8DotName(Int8Dot dot) {
  switch (dot) {
  case Int8Dot::Avx512Vnni:
    return "avx512vnni";
  case Int8Dot::AvxVnni:
    return "avxvnni";
  case Int8Dot::Avx2:
    return "avx2";
  case Int8Dot::Portable:
    break;
  }
  return "portable";
}

bool int8DotSupported(Int8Dot dot) {
  switch (dot) {
  case Int8Dot::Portable:
    return true;
#ifdef KILN_KERNELS_X86
  case Int8Dot::Avx2:
    return isaSupported(Isa::Avx2);
  case Int8Dot::AvxVnni:
    return cpuHasAvxVnni();
  case Int8Dot::Avx512Vnni:
    return isaSupported(Isa::Avx512) && cpuHasAvx512Vnni();
#else
  case Int8Dot::Avx2:
  case Int8Dot::AvxVnni:
  case Int8Dot::Avx512Vnni:
    return false;
#endif
  }
  return false;
}

Int8Dot int8DotFor(Isa isa) {
  switch (isa) {
  case Isa::Avx512:
    if (int8DotSupported(Int8Dot::Avx512Vnni))
      return Int8Dot::Avx512Vnni;
    [[fallthrough]];
  case Isa::Avx2:
    if (int8DotSupported(Int8Dot::AvxVnni))
      return Int8Dot::AvxVnni;
    if (int8DotSupported(Int8Dot::Avx2))
      return Int8Dot::Avx2;
    [[fallthrough]];
  case Isa::Portable:
    break;
  }
  return Int8Dot::Portable;
}

void matmulQuantA8F32(Int8Dot dot, ThreadPool *pool, const float *a,
                      int64_t lda, const uint8_t *b, const float *scales,
                      const uint8_t *zeroPoints, float *c, int64_t ldc,
                      int64_t m, int64_t n, int64_t k, int64_t group,
                      int64_t bits) noexcept {
  QuantProblem p(a, lda, b, scales, zeroPoints, c, ldc, m, n, k, group, bits);
  matmulQuantA8(kernelsFor(dot), pool, p);
}

void matmulQuantA8F32(Isa isa, ThreadPool *pool, const float *a, int64_t lda,
                      const uint8_t *b, const float *scales,
                      const uint8_t *zeroPoints, float *c, int64_t ldc,
                      int64_t m, int64_t n, int64_t k, int64_t group,
                      int64_t bits) noexcept {
  matmulQuantA8F32(int8DotFor(isa), pool, a, lda, b, scales, zeroPoints, c, ldc,
                   m, n, k, group, bits);
}

} // namespace kiln::kernels

extern "C" void kiln_matmul_quant_a8_f32(
    void *pool, const float *a, int64_t lda, const uint8_t *b,
    const float *scales, const uint8_t *zero_points, float *c, int64_t ldc,
    int64_t m, int64_t n, int64_t k, int64_t group, int64_t bits) {
  static const kiln::kernels::Int8Dot dot =
      kiln::kernels::int8DotFor(kiln::kernels::activeIsa());
  kiln::kernels::matmulQuantA8F32(dot, static_cast<kiln::ThreadPool *>(pool), a,
                                  lda, b, scales, zero_points, c, ldc, m, n, k,
                                  group, bits);
}
