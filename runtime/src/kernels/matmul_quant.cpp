//===- matmul_quant.cpp - C = A * W^T for a 4- or 8-bit grouped weight ----===//
//
// W is [N][K] unsigned integers with a scale and a zero point per (row,
// group of K), and the math is fp32: every weight is the float
// (q - zp) * scale, A is not quantized. Two paths.
//
// Fused (decode: M <= 8, x86, the group a whole number of 32-k AVX-512 or
// 16-k AVX2 steps). A GEMV reads each weight once, and the point of 4-bit
// weights is reading an eighth of fp32's bytes, so the packed weight is
// streamed and unpacked in registers. A tile of NJ consecutive rows of W
// times all M rows of A keeps M x NJ vector accumulators along K. A step
// zero-extends 16 bytes of a row to 16 dwords (vpmovzxbd) and turns them
// into exact floats with logic ops: the float with bits 0x4B000000 | q is
// 2^23 + q, so (d & 0x0F) | 0x4B000000 minus (2^23 + zp) is q - zp for the
// low nibbles (the even k) and (d & 0xF0) | 0x4B000000 minus
// (2^23 + 16 zp) is 16 (q - zp) for the high ones (the odd k). This core
// sustains about two FP/shuffle/convert zmm ops per cycle but more logic
// ops, and a shift plus two int-to-float conversions per step cost 25%
// more time at M = 1 (measured). For 4-bit weights the caller copies A
// once into the order the weights unpack in: each block of 32 floats (16
// for AVX2) becomes its even then its odd elements, the odd ones divided by
// 16 (exact). That copy lives in a thread-local buffer of the calling
// thread, so for long K it is made one chunk of K at a time and each chunk
// is one parallel pass over N that adds into C. 8-bit weights unpack in
// order and read A in place. Scales are applied one of three ways (see
// Scaling): per weight vector when M is large against the group, else once
// per group on a sum of a * (q - zp). Tiles prefetch their rows a line at a
// time, a tile ahead: the hardware prefetchers alone keep too few of NJ
// side-by-side streams in flight from DRAM.
//
// Panel (prefill, M > 8, and anything the fused path does not take). Rows of
// W are dequantized once per call into a thread-local fp32 panel that every
// row of A then runs over, so each weight is unpacked once however large M
// is. AVX-512 transposes 32 rows x 128 k into a [k][32] panel (16 x 16
// register transposes) and runs matmul.cpp's 8 x 32 broadcast microkernel
// over it; AVX2 and portable run a dot-product tile (2 rows of A x 4 rows of
// the panel, vector accumulators along K, one transposing reduction per
// tile) written once over GCC vector types, like matmul_bt_f32.
//
//   ISA        fused tile (M x NJ)    panel
//   avx512     M x 8..2 zmm           32 rows, 8 x 32 broadcast tile
//   avx2       M x 4..1 ymm           4 rows, 2 x 4 dot tile
//   portable   (panel only)           4 rows, 2 x 4 dot tile (xmm)
//
// An AVX-512 call whose group is not a multiple of 32 (16, 48, ...) runs
// the AVX2 kernels, which every AVX-512 CPU has. Groups that are no whole
// step of either (2, 6, ...) take the panel path at any M.
//
// Threads own ranges of whole 8-row units of N (32 for the AVX-512 panel),
// a few per thread claimed dynamically, so every output element is written
// by exactly one thread.
//
//===----------------------------------------------------------------------===//

#include "runtime/src/kernels/kernels.h"
#include "runtime/src/kernels/quant_layout.h"
#include "runtime/src/threadpool.h"

#include <algorithm>
#include <cstring>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
// GCC 12 reports the _mm512_undefined_* operands inside the AVX-512
// intrinsics as maybe-uninitialized once they are inlined here (GCC bug
// 105593); they are not.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#define KILN_KERNELS_X86 1
#define KILN_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define KILN_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))
#endif

#define KILN_INLINE inline __attribute__((always_inline))

namespace kiln::kernels {
namespace {

/// Rows of W a thread's range is made of; fused tile heights divide it, so
/// only the end of N has a ragged tile.
constexpr int64_t kRowUnit = 8;
/// The fused path handles at most this many rows of A.
constexpr int64_t kMaxFusedM = 8;
/// Floats of the per-thread scratch: the even/odd copy of A (calling thread,
/// fused path) or the dequantized panel (every thread, panel path).
constexpr int64_t kScratchFloats = 8192;
/// The deepest K block of a panel.
constexpr int64_t kPanelMaxK = 2048;
/// Below this many flops per thread, waking threads costs more than it
/// saves.
constexpr int64_t kMinFlopsPerThread = 1 << 16;

alignas(64) thread_local float tlsScratch[kScratchFloats];

/// out[0:k1-k0] = W[row][k0:k1] in fp32, one element at a time.
KILN_INLINE void dequantRowScalar(const QuantProblem &p, int64_t row,
                                  int64_t k0, int64_t k1, float *out) {
  for (int64_t kk = k0; kk < k1;) {
    int64_t g = kk / p.group;
    int64_t end = std::min(k1, (g + 1) * p.group);
    const float s = p.scales[row * p.groupsPerRow + g];
    const int z = zeroPoint(p, row, g);
    for (; kk < end; ++kk)
      out[kk - k0] = static_cast<float>(weightQ(p, row, kk) - z) * s;
  }
}

/// Copies A[0:m][k0:k1] to dst (rows k1 - k0 apart) with each block of
/// `block` floats reordered to its even then its odd elements, the order in
/// which the fused path unpacks 4-bit weights, and the odd ones divided by
/// 16 (exact), as the fused path unpacks a high nibble q as 16 q. k1 - k0 is
/// a multiple of `block`.
void permuteA(const QuantProblem &p, int64_t k0, int64_t k1, int64_t block,
              float *dst) {
  const int64_t len = k1 - k0, half = block / 2;
  for (int64_t i = 0; i < p.m; ++i) {
    const float *src = p.a + i * p.lda + k0;
    float *d = dst + i * len;
    for (int64_t b = 0; b < len; b += block)
      for (int64_t t = 0; t < half; ++t) {
        d[b + t] = src[b + 2 * t];
        d[b + half + t] = src[b + 2 * t + 1] * 0.0625f;
      }
  }
}

//===----------------------------------------------------------------------===//
// Generic vector helpers (GCC vector types, compiled per instruction set)
//===----------------------------------------------------------------------===//

// GCC drops vector_size on a dependent alias template, so each width is
// spelled out (Vec<1> is a plain float, for the width-1 reductions).
template <int W> struct VecOf;
template <> struct VecOf<1> {
  typedef float type;
};
template <> struct VecOf<2> {
  typedef float type __attribute__((vector_size(8)));
};
template <> struct VecOf<4> {
  typedef float type __attribute__((vector_size(16)));
};
template <> struct VecOf<8> {
  typedef float type __attribute__((vector_size(32)));
};
template <> struct VecOf<16> {
  typedef float type __attribute__((vector_size(64)));
};
template <int W> using Vec = typename VecOf<W>::type;
typedef Vec<16> V16;
typedef Vec<8> V8;
typedef Vec<4> V4;

template <typename V> constexpr int kLanes = sizeof(V) / sizeof(float);

// Vectors go by reference: by value they would change the calling
// convention between the plain and the AVX copies (-Wpsabi).
template <typename V> KILN_INLINE void loadV(V &v, const float *p) {
  std::memcpy(&v, p, sizeof(V));
}

/// out = [x0+x1, y0+y1, x2+x3, y2+y3, ...] for B = 1; in general the lanes
/// of x and y in alternating blocks of B, each the sum of two blocks of B.
template <int B, typename V, size_t... P>
KILN_INLINE void combineBlocks(V &out, const V &x, const V &y,
                               std::index_sequence<P...>) {
  constexpr int W = sizeof...(P);
  V lo = __builtin_shufflevector(
      x, y, ((P % (2 * B) < B) ? 0 : W) + P / (2 * B) * 2 * B + P % B...);
  V hi = __builtin_shufflevector(
      x, y, ((P % (2 * B) < B) ? 0 : W) + P / (2 * B) * 2 * B + B + P % B...);
  out = lo + hi;
}

/// After the levels, v[0] lane l holds a partial sum of input l % N.
template <typename V, int N, int B = 1> KILN_INLINE void reduceLevels(V *v) {
  if constexpr (N > 1) {
    for (int i = 0; i < N / 2; ++i)
      combineBlocks<B>(v[i], v[2 * i], v[2 * i + 1],
                       std::make_index_sequence<kLanes<V>>());
    reduceLevels<V, N / 2, 2 * B>(v);
  }
}

/// Adds the halves of v until it is N lanes wide, and stores those.
template <int N, int W>
KILN_INLINE void foldLanes(const Vec<W> &v, float *out) {
  if constexpr (W == N) {
    std::memcpy(out, &v, sizeof(float) * N);
  } else {
    Vec<W / 2> lo, hi;
    std::memcpy(&lo, &v, sizeof(lo));
    std::memcpy(&hi, reinterpret_cast<const float *>(&v) + W / 2, sizeof(hi));
    Vec<W / 2> sum = lo + hi;
    foldLanes<N, W / 2>(sum, out);
  }
}

/// out[j] = the sum of the lanes of v[j], j < N; N is a power of two no
/// wider than V. A transposing tree: N - 1 two-input shuffles and adds
/// instead of N separate reductions. Clobbers v.
template <int N, typename V> KILN_INLINE void sumLanes(V *v, float *out) {
  static_assert((N & (N - 1)) == 0 && N <= kLanes<V>, "bad reduction width");
  reduceLevels<V, N>(v);
  Vec<kLanes<V>> all = v[0];
  foldLanes<N, kLanes<V>>(all, out);
}

/// C[0:NI][0:nj] (+)= A[0:NI][0:kc] . Wd[0:nj][0:kc]; A rows lda apart,
/// panel rows ldw apart, C rows ldc apart. Panel rows past nj are read (they
/// are in the panel buffer) but not stored.
template <typename V, int NI, int NJ>
KILN_INLINE void panelTile(const float *a, int64_t lda, const float *wd,
                           int64_t ldw, int64_t nj, float *c, int64_t ldc,
                           int64_t kc, bool accumulate) {
  constexpr int W = kLanes<V>;
  V acc[NI][NJ];
  for (int i = 0; i < NI; ++i)
    for (int j = 0; j < NJ; ++j)
      acc[i][j] = V{};
  int64_t p = 0;
  for (; p + W <= kc; p += W) {
    V wv[NJ], av;
    for (int j = 0; j < NJ; ++j)
      loadV(wv[j], wd + j * ldw + p);
    for (int i = 0; i < NI; ++i) {
      loadV(av, a + i * lda + p);
      for (int j = 0; j < NJ; ++j)
        acc[i][j] += av * wv[j];
    }
  }
  for (int i = 0; i < NI; ++i) {
    float sums[NJ];
    sumLanes<NJ>(acc[i], sums);
    float *ci = c + i * ldc;
    for (int j = 0; j < nj; ++j) {
      float r = sums[j];
      for (int64_t q = p; q < kc; ++q)
        r += a[i * lda + q] * wd[j * ldw + q];
      ci[j] = accumulate ? ci[j] + r : r;
    }
  }
}

using DequantFn = void (*)(const QuantProblem &, int64_t row, int64_t k0,
                           int64_t k1, float *out);

/// Rows [n0, n1) of C through the dequantized panel, NB rows at a time.
template <typename V, int NI, int NB, DequantFn Dequant>
KILN_INLINE void panelRange(const QuantProblem &p, int64_t n0, int64_t n1) {
  static_assert(kRowUnit % NB == 0, "tiles must not straddle thread ranges");
  float *wd = tlsScratch;
  const int64_t kcMax =
      std::min(kPanelMaxK, kScratchFloats / NB / kLanes<V16> * kLanes<V16>);
  for (int64_t nb = n0; nb < n1; nb += NB) {
    const int64_t nj = std::min<int64_t>(NB, n1 - nb);
    for (int64_t k0 = 0; k0 < p.k; k0 += kcMax) {
      const int64_t kc = std::min(kcMax, p.k - k0);
      for (int64_t j = 0; j < nj; ++j)
        Dequant(p, nb + j, k0, k0 + kc, wd + j * kcMax);
      const float *a = p.a + k0;
      float *c = p.c + nb;
      int64_t i = 0;
      for (; i + NI <= p.m; i += NI)
        panelTile<V, NI, NB>(a + i * p.lda, p.lda, wd, kcMax, nj, c + i * p.ldc,
                             p.ldc, kc, k0 > 0);
      for (; i < p.m; ++i)
        panelTile<V, 1, NB>(a + i * p.lda, p.lda, wd, kcMax, nj, c + i * p.ldc,
                            p.ldc, kc, k0 > 0);
    }
  }
}

//===----------------------------------------------------------------------===//
// One instruction set's kernels
//===----------------------------------------------------------------------===//

/// Rows [n0, n1) of C over k in [kBegin, kEnd) (whole groups), adding to C
/// unless kBegin == 0. `a` holds A[0:m][kBegin:kEnd], rows lda apart; for
/// 4-bit weights in the even/odd order of permuteA.
using FusedFn = void (*)(const QuantProblem &, const float *a, int64_t lda,
                         int64_t kBegin, int64_t kEnd, int64_t n0, int64_t n1);
using PanelFn = void (*)(const QuantProblem &, int64_t n0, int64_t n1);

struct QuantKernels {
  /// The group must be a multiple of this for the fused path (0: none).
  int64_t fusedStep;
  FusedFn fused4, fused8;
  PanelFn panel;
  /// Rows of W the panel path takes at a time; thread ranges are multiples.
  int64_t panelRows;
};

void panelPortable(const QuantProblem &p, int64_t n0, int64_t n1) {
  panelRange<V4, 2, 4, dequantRowScalar>(p, n0, n1);
}

const QuantKernels kPortableKernels = {0, nullptr, nullptr, panelPortable,
                                       kRowUnit};

#ifdef KILN_KERNELS_X86
//===----------------------------------------------------------------------===//
// x86 helpers
//===----------------------------------------------------------------------===//

/// How far ahead the fused path prefetches W. Its tiles read NJ rows side
/// by side, and the hardware prefetchers alone keep too few of those
/// streams' lines in flight from DRAM (4096 x 4096, one thread: 14 GB/s
/// instead of 24, measured). A tile prefetches the same k of the next
/// tile's rows when a tile spans at most kPrefetchTileBytes, else
/// kPrefetchBytes ahead in its own rows (farther was slower: L1 evictions).
constexpr int64_t kPrefetchTileBytes = 32 << 10;
constexpr int64_t kPrefetchBytes = 1024;

/// Prefetches rows w0 + j * rowBytes (j < NJ) ahead of k, once per cache
/// line (see kPrefetchTileBytes).
template <int NJ, int Bits>
KILN_INLINE void prefetchRows(const uint8_t *w0, int64_t rowBytes, int64_t k) {
  const int64_t offset = k * Bits / 8;
  if (offset % 64 != 0)
    return;
  const int64_t tileBytes = NJ * rowBytes;
  const uint8_t *p =
      w0 + offset +
      (tileBytes <= kPrefetchTileBytes ? tileBytes : kPrefetchBytes);
  for (int j = 0; j < NJ; ++j)
    _mm_prefetch(reinterpret_cast<const char *>(p + j * rowBytes), _MM_HINT_T0);
}

/// The float whose bits are 0x4B000000 | q is 2^23 + q exactly for q < 2^23.
constexpr float kMagic = 8388608.0f;
constexpr int32_t kMagicBits = 0x4B000000;

//===----------------------------------------------------------------------===//
// AVX-512F
//===----------------------------------------------------------------------===//

/// The fused path's per-group constants of `row` for groups g0 .. g0 +
/// count (count <= 16): lo = 2^23 + zp and hi = 2^23 + 16 zp for 4-bit
/// weights (the high nibble is unpacked as 16 q), 2^23 + zp for both with
/// 8-bit ones.
KILN_TARGET_AVX512 KILN_INLINE void offsetsAvx512(const QuantProblem &p,
                                                  int64_t row, int64_t g0,
                                                  int count, float *lo,
                                                  float *hi) {
  __m512 z;
  if (!p.zp) {
    z = _mm512_set1_ps(p.bits == 4 ? 8.0f : 128.0f);
  } else {
    alignas(16) uint8_t zq[16] = {};
    for (int i = 0; i < count; ++i)
      zq[i] = static_cast<uint8_t>(zeroPoint(p, row, g0 + i));
    z = _mm512_cvtepi32_ps(
        _mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<__m128i *>(zq))));
  }
  const __m512 magic = _mm512_set1_ps(kMagic);
  _mm512_store_ps(lo, _mm512_add_ps(z, magic));
  _mm512_store_ps(hi, p.bits == 4
                          ? _mm512_fmadd_ps(z, _mm512_set1_ps(16.0f), magic)
                          : _mm512_add_ps(z, magic));
}

/// How a fused tile applies the scales.
enum class Scaling {
  /// Multiply each weight vector by its scale, then by A: fewest operations
  /// when M is large against the group (16 M >= group).
  Weights,
  /// Sum a * (q - zp) over the group in M x NJ extra accumulators, then one
  /// FMA by the scale per group.
  GroupSums,
  /// GroupSums when a group is one step (M = 1): no extra accumulators, and
  /// the per-group values are broadcast straight from memory.
  Steps,
};

/// Unpacks 32 weights of a row at kk into the exact floats q - zp (16 q -
/// 16 zp for high nibbles, which the even/odd copy of A balances with its
/// odd half divided by 16) with logic ops and one subtraction per vector:
/// the float with bits 0x4B000000 | q is 2^23 + q, and o0 / o1 hold
/// 2^23 + zp / 2^23 + 16 zp.
template <int Bits>
KILN_TARGET_AVX512 KILN_INLINE void
unpackAvx512(const uint8_t *w, int64_t kk, const __m512 &o0, const __m512 &o1,
             __m512 &w0, __m512 &w1) {
  const __m512i magic = _mm512_set1_epi32(kMagicBits);
  __m512i b0, b1;
  if constexpr (Bits == 4) {
    __m512i d = _mm512_cvtepu8_epi32(
        _mm_loadu_si128(reinterpret_cast<const __m128i *>(w + kk / 2)));
    // (d & mask) | magic
    b0 = _mm512_ternarylogic_epi32(d, _mm512_set1_epi32(0x0F), magic, 0xEA);
    b1 = _mm512_ternarylogic_epi32(d, _mm512_set1_epi32(0xF0), magic, 0xEA);
  } else {
    b0 = _mm512_or_si512(_mm512_cvtepu8_epi32(_mm_loadu_si128(
                             reinterpret_cast<const __m128i *>(w + kk))),
                         magic);
    b1 = _mm512_or_si512(_mm512_cvtepu8_epi32(_mm_loadu_si128(
                             reinterpret_cast<const __m128i *>(w + kk + 16))),
                         magic);
  }
  w0 = _mm512_sub_ps(_mm512_castsi512_ps(b0), o0);
  w1 = _mm512_sub_ps(_mm512_castsi512_ps(b1), o1);
}

/// One fused tile: rows n0 .. n0 + NJ of C, all M rows of A, 32 k per step.
template <int M, int NJ, int Bits, Scaling S>
KILN_TARGET_AVX512 void fusedTileAvx512(const QuantProblem &p, const float *a,
                                        int64_t lda, int64_t kBegin,
                                        int64_t kEnd, int64_t n0) {
  static_assert(S != Scaling::Steps || M == 1, "Steps is for one row of A");
  // Rows as base + j * stride: a pointer per row would not fit the
  // general registers with everything else (spills, 1.5x slower measured).
  const int64_t rowBytes = p.rowBytes, gpr = p.groupsPerRow;
  const uint8_t *wBase = p.w + n0 * rowBytes;
  const float *sBase = p.scales + n0 * gpr;
  __m512 acc[M][NJ];
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < NJ; ++j)
      acc[i][j] = _mm512_setzero_ps();
  const int64_t group = p.group, gEnd = kEnd / group;
  alignas(64) float offLo[NJ][16], offHi[NJ][16];
  for (int64_t gb = kBegin / group; gb < gEnd; gb += 16) {
    const int count = static_cast<int>(std::min<int64_t>(16, gEnd - gb));
    for (int j = 0; j < NJ; ++j) {
      offsetsAvx512(p, n0 + j, gb, count, offLo[j], offHi[j]);
      _mm_prefetch(reinterpret_cast<const char *>(sBase + j * gpr + gb + 64),
                   _MM_HINT_T0);
    }
    for (int gi = 0; gi < count; ++gi) {
      const int64_t k0 = (gb + gi) * group;
      if constexpr (S == Scaling::Steps) {
        const float *ak = a + (k0 - kBegin);
        const __m512 a0 = _mm512_loadu_ps(ak), a1 = _mm512_loadu_ps(ak + 16);
        prefetchRows<NJ, Bits>(wBase, rowBytes, k0);
        for (int j = 0; j < NJ; ++j) {
          __m512 w0, w1;
          unpackAvx512<Bits>(wBase + j * rowBytes, k0,
                             _mm512_set1_ps(offLo[j][gi]),
                             _mm512_set1_ps(offHi[j][gi]), w0, w1);
          __m512 t = _mm512_fmadd_ps(a1, w1, _mm512_mul_ps(a0, w0));
          acc[0][j] = _mm512_fmadd_ps(_mm512_set1_ps(sBase[j * gpr + gb + gi]),
                                      t, acc[0][j]);
        }
        continue;
      }
      __m512 s[NJ], o0[NJ], o1[NJ];
      for (int j = 0; j < NJ; ++j) {
        s[j] = _mm512_set1_ps(sBase[j * gpr + gb + gi]);
        o0[j] = _mm512_set1_ps(offLo[j][gi]);
        o1[j] = _mm512_set1_ps(offHi[j][gi]);
      }
      __m512 t[M][NJ];
      if constexpr (S == Scaling::GroupSums)
        for (int i = 0; i < M; ++i)
          for (int j = 0; j < NJ; ++j)
            t[i][j] = _mm512_setzero_ps();
      for (int64_t kk = k0; kk < k0 + group; kk += 32) {
        const float *ak = a + (kk - kBegin);
        prefetchRows<NJ, Bits>(wBase, rowBytes, kk);
        for (int j = 0; j < NJ; ++j) {
          __m512 w0, w1;
          unpackAvx512<Bits>(wBase + j * rowBytes, kk, o0[j], o1[j], w0, w1);
          if constexpr (S == Scaling::Weights) {
            w0 = _mm512_mul_ps(w0, s[j]);
            w1 = _mm512_mul_ps(w1, s[j]);
          }
          for (int i = 0; i < M; ++i) {
            __m512 &x = S == Scaling::GroupSums ? t[i][j] : acc[i][j];
            x = _mm512_fmadd_ps(_mm512_loadu_ps(ak + i * lda), w0, x);
            x = _mm512_fmadd_ps(_mm512_loadu_ps(ak + i * lda + 16), w1, x);
          }
        }
      }
      if constexpr (S == Scaling::GroupSums)
        for (int i = 0; i < M; ++i)
          for (int j = 0; j < NJ; ++j)
            acc[i][j] = _mm512_fmadd_ps(s[j], t[i][j], acc[i][j]);
    }
  }
  const bool accumulate = kBegin > 0;
  for (int i = 0; i < M; ++i) {
    float sums[NJ];
    sumLanes<NJ>(acc[i], sums);
    float *ci = p.c + i * p.ldc + n0;
    for (int j = 0; j < NJ; ++j)
      ci[j] = accumulate ? ci[j] + sums[j] : sums[j];
  }
}

template <int M, int NJ, int Bits, Scaling S>
KILN_TARGET_AVX512 void fusedTilesAvx512(const QuantProblem &p, const float *a,
                                         int64_t lda, int64_t kBegin,
                                         int64_t kEnd, int64_t n0, int64_t n1) {
  int64_t n = n0;
  for (; n + NJ <= n1; n += NJ)
    fusedTileAvx512<M, NJ, Bits, S>(p, a, lda, kBegin, kEnd, n);
  // The last rows of N, one at a time.
  for (; n < n1; ++n)
    fusedTileAvx512<M, 1, Bits, S>(p, a, lda, kBegin, kEnd, n);
}

template <int Bits>
KILN_TARGET_AVX512 void fusedAvx512(const QuantProblem &p, const float *a,
                                    int64_t lda, int64_t kBegin, int64_t kEnd,
                                    int64_t n0, int64_t n1) {
  // NJ rows of W per tile: 8 streams for M = 1 keep enough misses in
  // flight when W comes from DRAM; otherwise as many as keep the
  // accumulators and the per-row scales and offsets in the 32 registers
  // (A is read from memory by the FMAs, so a small NJ costs no arithmetic).
  constexpr Scaling kW = Scaling::Weights, kG = Scaling::GroupSums;
  const bool sums = 16 * p.m < p.group;
  switch (p.m) {
  case 1:
    if (p.group == 32)
      return fusedTilesAvx512<1, 8, Bits, Scaling::Steps>(p, a, lda, kBegin,
                                                          kEnd, n0, n1);
    return fusedTilesAvx512<1, 4, Bits, kG>(p, a, lda, kBegin, kEnd, n0, n1);
  case 2:
    if (sums)
      return fusedTilesAvx512<2, 2, Bits, kG>(p, a, lda, kBegin, kEnd, n0, n1);
    return fusedTilesAvx512<2, 4, Bits, kW>(p, a, lda, kBegin, kEnd, n0, n1);
  case 3:
    if (sums)
      return fusedTilesAvx512<3, 2, Bits, kG>(p, a, lda, kBegin, kEnd, n0, n1);
    return fusedTilesAvx512<3, 2, Bits, kW>(p, a, lda, kBegin, kEnd, n0, n1);
  case 4:
    if (sums)
      return fusedTilesAvx512<4, 2, Bits, kG>(p, a, lda, kBegin, kEnd, n0, n1);
    return fusedTilesAvx512<4, 2, Bits, kW>(p, a, lda, kBegin, kEnd, n0, n1);
  case 5:
    return fusedTilesAvx512<5, 2, Bits, kW>(p, a, lda, kBegin, kEnd, n0, n1);
  case 6:
    return fusedTilesAvx512<6, 2, Bits, kW>(p, a, lda, kBegin, kEnd, n0, n1);
  case 7:
    return fusedTilesAvx512<7, 2, Bits, kW>(p, a, lda, kBegin, kEnd, n0, n1);
  default:
    return fusedTilesAvx512<8, 2, Bits, kW>(p, a, lda, kBegin, kEnd, n0, n1);
  }
}

/// dequantRowScalar with 32 (4-bit) or 16 (8-bit) weights per step.
KILN_TARGET_AVX512 void dequantRowAvx512(const QuantProblem &p, int64_t row,
                                         int64_t k0, int64_t k1, float *out) {
  const uint8_t *w = p.w + row * p.rowBytes;
  const __m512i low4 = _mm512_set1_epi32(15);
  // Interleave the low (even k) and high (odd k) nibbles back into order.
  const __m512i first =
      _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i second = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28,
                                           13, 29, 14, 30, 15, 31);
  for (int64_t kk = k0; kk < k1;) {
    const int64_t g = kk / p.group;
    const int64_t end = std::min(k1, (g + 1) * p.group);
    const float sc = p.scales[row * p.groupsPerRow + g];
    const int z = zeroPoint(p, row, g);
    // (q - zp) * scale, rounded once like the scalar path.
    const __m512 s = _mm512_set1_ps(sc);
    const __m512 zf = _mm512_set1_ps(static_cast<float>(z));
    auto dequant = [&](__m512i q) KILN_TARGET_AVX512 {
      return _mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(q), zf), s);
    };
    if (p.bits == 4) {
      for (; kk + 32 <= end; kk += 32) {
        __m512i d = _mm512_cvtepu8_epi32(
            _mm_loadu_si128(reinterpret_cast<const __m128i *>(w + kk / 2)));
        __m512 lo = dequant(_mm512_and_si512(d, low4));
        __m512 hi = dequant(_mm512_srli_epi32(d, 4));
        _mm512_storeu_ps(out + (kk - k0),
                         _mm512_permutex2var_ps(lo, first, hi));
        _mm512_storeu_ps(out + (kk - k0) + 16,
                         _mm512_permutex2var_ps(lo, second, hi));
      }
      for (; kk + 16 <= end; kk += 16) {
        __m512i d = _mm512_cvtepu8_epi32(
            _mm_loadl_epi64(reinterpret_cast<const __m128i *>(w + kk / 2)));
        __m512 lo = dequant(_mm512_and_si512(d, low4));
        __m512 hi = dequant(_mm512_srli_epi32(d, 4));
        _mm512_storeu_ps(out + (kk - k0),
                         _mm512_permutex2var_ps(lo, first, hi));
      }
    } else {
      for (; kk + 16 <= end; kk += 16)
        _mm512_storeu_ps(out + (kk - k0),
                         dequant(_mm512_cvtepu8_epi32(_mm_loadu_si128(
                             reinterpret_cast<const __m128i *>(w + kk)))));
    }
    for (; kk < end; ++kk)
      out[kk - k0] = static_cast<float>(weightQ(p, row, kk) - z) * sc;
  }
}

/// dst[p][0:16] = src[0:16][p] for p < 16; src rows lds apart, dst rows
/// ldd apart.
KILN_TARGET_AVX512 KILN_INLINE void
transpose16x16(const float *src, int64_t lds, float *dst, int64_t ldd) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i)
    r[i] = _mm512_loadu_ps(src + i * lds);
  // Pairs of rows interleaved, then quads within each 128-bit lane: r[4q +
  // c] holds, per lane l, column 4l + c of rows 4q .. 4q + 3.
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int q = 0; q < 16; q += 4) {
    r[q] = _mm512_shuffle_ps(t[q], t[q + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[q + 1] = _mm512_shuffle_ps(t[q], t[q + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[q + 2] = _mm512_shuffle_ps(t[q + 1], t[q + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[q + 3] = _mm512_shuffle_ps(t[q + 1], t[q + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  // Then the 128-bit lanes: columns c and c + 8 of rows 0..7, then of all.
  for (int c = 0; c < 4; ++c) {
    t[c] = _mm512_shuffle_f32x4(r[c], r[c + 4], 0x88);
    t[c + 4] = _mm512_shuffle_f32x4(r[c], r[c + 4], 0xDD);
    t[c + 8] = _mm512_shuffle_f32x4(r[c + 8], r[c + 12], 0x88);
    t[c + 12] = _mm512_shuffle_f32x4(r[c + 8], r[c + 12], 0xDD);
  }
  for (int c = 0; c < 8; ++c) {
    _mm512_storeu_ps(dst + c * ldd, _mm512_shuffle_f32x4(t[c], t[c + 8], 0x88));
    _mm512_storeu_ps(dst + (c + 8) * ldd,
                     _mm512_shuffle_f32x4(t[c], t[c + 8], 0xDD));
  }
}

/// Lanes [0, count) set, count clamped to [0, 16].
inline __mmask16 mask16(int64_t count) {
  if (count >= 16)
    return 0xFFFF;
  return count <= 0 ? 0 : static_cast<__mmask16>((1u << count) - 1);
}

/// C[0:MR][0:nValid] (+)= A[0:MR][0:kc] * panel[0:kc][0:32]: MR rows of A
/// broadcast against two vectors of the panel per k, matmul.cpp's AVX-512
/// microkernel.
template <int MR>
KILN_TARGET_AVX512 void
packedTileAvx512(int64_t kc, const float *a, int64_t lda, const float *panel,
                 float *c, int64_t ldc, int64_t nValid, bool accumulate) {
  __m512 acc0[MR], acc1[MR];
  for (int i = 0; i < MR; ++i)
    acc0[i] = acc1[i] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    __m512 b0 = _mm512_loadu_ps(panel + p * 32);
    __m512 b1 = _mm512_loadu_ps(panel + p * 32 + 16);
    for (int i = 0; i < MR; ++i) {
      __m512 ai = _mm512_set1_ps(a[i * lda + p]);
      acc0[i] = _mm512_fmadd_ps(ai, b0, acc0[i]);
      acc1[i] = _mm512_fmadd_ps(ai, b1, acc1[i]);
    }
  }
  __mmask16 m0 = mask16(nValid), m1 = mask16(nValid - 16);
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

using PackedTileFn = void (*)(int64_t, const float *, int64_t, const float *,
                              float *, int64_t, int64_t, bool);

/// The panel path for AVX-512: 32 rows of W at a time, dequantized by
/// blocks of 128 k and transposed to a [k][32] panel, which every block of 8
/// rows of A runs over.
KILN_TARGET_AVX512 void panelAvx512(const QuantProblem &p, int64_t n0,
                                    int64_t n1) {
  constexpr int64_t kNr = 32, kKc = 128;
  static_assert(2 * kNr * kKc <= kScratchFloats, "scratch too small");
  static const PackedTileFn tiles[9] = {nullptr,
                                        packedTileAvx512<1>,
                                        packedTileAvx512<2>,
                                        packedTileAvx512<3>,
                                        packedTileAvx512<4>,
                                        packedTileAvx512<5>,
                                        packedTileAvx512<6>,
                                        packedTileAvx512<7>,
                                        packedTileAvx512<8>};
  float *rows = tlsScratch, *panel = tlsScratch + kNr * kKc;
  for (int64_t nb = n0; nb < n1; nb += kNr) {
    const int64_t nValid = std::min(kNr, n1 - nb);
    for (int64_t k0 = 0; k0 < p.k; k0 += kKc) {
      const int64_t kc = std::min(kKc, p.k - k0);
      const int64_t kcPad = (kc + 15) / 16 * 16;
      for (int64_t j = 0; j < nValid; ++j) {
        float *r = rows + j * kKc;
        dequantRowAvx512(p, nb + j, k0, k0 + kc, r);
        std::fill(r + kc, r + kcPad, 0.0f);
      }
      // Rows past nValid hold earlier rows' values: their columns are
      // computed but never stored.
      for (int64_t h = 0; h < nValid; h += 16)
        for (int64_t pb = 0; pb < kcPad; pb += 16)
          transpose16x16(rows + h * kKc + pb, kKc, panel + pb * kNr + h, kNr);
      for (int64_t i = 0; i < p.m; i += 8) {
        const int64_t mr = std::min<int64_t>(8, p.m - i);
        tiles[mr](kc, p.a + i * p.lda + k0, p.lda, panel, p.c + i * p.ldc + nb,
                  p.ldc, nValid, k0 > 0);
      }
    }
  }
}

const QuantKernels kAvx512Kernels = {32, fusedAvx512<4>, fusedAvx512<8>,
                                     panelAvx512, 32};

//===----------------------------------------------------------------------===//
// AVX2 + FMA
//===----------------------------------------------------------------------===//

/// offsetsAvx512 for up to 8 groups.
KILN_TARGET_AVX2 KILN_INLINE void offsetsAvx2(const QuantProblem &p,
                                              int64_t row, int64_t g0,
                                              int count, float *lo, float *hi) {
  for (int i = 0; i < count; ++i) {
    float z = static_cast<float>(zeroPoint(p, row, g0 + i));
    lo[i] = kMagic + z;
    hi[i] = kMagic + (p.bits == 4 ? 16.0f * z : z);
  }
}

/// unpackAvx512 for 16 weights.
template <int Bits>
KILN_TARGET_AVX2 KILN_INLINE void unpackAvx2(const uint8_t *w, int64_t kk,
                                             const __m256 &o0, const __m256 &o1,
                                             __m256 &w0, __m256 &w1) {
  const __m256i magic = _mm256_set1_epi32(kMagicBits);
  __m256i b0, b1;
  if constexpr (Bits == 4) {
    __m256i d = _mm256_cvtepu8_epi32(
        _mm_loadl_epi64(reinterpret_cast<const __m128i *>(w + kk / 2)));
    b0 = _mm256_or_si256(_mm256_and_si256(d, _mm256_set1_epi32(0x0F)), magic);
    b1 = _mm256_or_si256(_mm256_and_si256(d, _mm256_set1_epi32(0xF0)), magic);
  } else {
    b0 = _mm256_or_si256(_mm256_cvtepu8_epi32(_mm_loadl_epi64(
                             reinterpret_cast<const __m128i *>(w + kk))),
                         magic);
    b1 = _mm256_or_si256(_mm256_cvtepu8_epi32(_mm_loadl_epi64(
                             reinterpret_cast<const __m128i *>(w + kk + 8))),
                         magic);
  }
  w0 = _mm256_sub_ps(_mm256_castsi256_ps(b0), o0);
  w1 = _mm256_sub_ps(_mm256_castsi256_ps(b1), o1);
}

/// fusedTileAvx512 with 16 k per step.
template <int M, int NJ, int Bits, Scaling S>
KILN_TARGET_AVX2 void fusedTileAvx2(const QuantProblem &p, const float *a,
                                    int64_t lda, int64_t kBegin, int64_t kEnd,
                                    int64_t n0) {
  static_assert(S != Scaling::Steps || M == 1, "Steps is for one row of A");
  // Rows as base + j * stride: a pointer per row would not fit the
  // general registers with everything else (spills, 1.5x slower measured).
  const int64_t rowBytes = p.rowBytes, gpr = p.groupsPerRow;
  const uint8_t *wBase = p.w + n0 * rowBytes;
  const float *sBase = p.scales + n0 * gpr;
  __m256 acc[M][NJ];
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < NJ; ++j)
      acc[i][j] = _mm256_setzero_ps();
  const int64_t group = p.group, gEnd = kEnd / group;
  float offLo[NJ][8], offHi[NJ][8];
  for (int64_t gb = kBegin / group; gb < gEnd; gb += 8) {
    const int count = static_cast<int>(std::min<int64_t>(8, gEnd - gb));
    for (int j = 0; j < NJ; ++j) {
      offsetsAvx2(p, n0 + j, gb, count, offLo[j], offHi[j]);
      _mm_prefetch(reinterpret_cast<const char *>(sBase + j * gpr + gb + 64),
                   _MM_HINT_T0);
    }
    for (int gi = 0; gi < count; ++gi) {
      const int64_t k0 = (gb + gi) * group;
      if constexpr (S == Scaling::Steps) {
        const float *ak = a + (k0 - kBegin);
        const __m256 a0 = _mm256_loadu_ps(ak), a1 = _mm256_loadu_ps(ak + 8);
        prefetchRows<NJ, Bits>(wBase, rowBytes, k0);
        for (int j = 0; j < NJ; ++j) {
          __m256 w0, w1;
          unpackAvx2<Bits>(wBase + j * rowBytes, k0,
                           _mm256_set1_ps(offLo[j][gi]),
                           _mm256_set1_ps(offHi[j][gi]), w0, w1);
          __m256 t = _mm256_fmadd_ps(a1, w1, _mm256_mul_ps(a0, w0));
          acc[0][j] = _mm256_fmadd_ps(_mm256_set1_ps(sBase[j * gpr + gb + gi]),
                                      t, acc[0][j]);
        }
        continue;
      }
      __m256 s[NJ], o0[NJ], o1[NJ];
      for (int j = 0; j < NJ; ++j) {
        s[j] = _mm256_set1_ps(sBase[j * gpr + gb + gi]);
        o0[j] = _mm256_set1_ps(offLo[j][gi]);
        o1[j] = _mm256_set1_ps(offHi[j][gi]);
      }
      __m256 t[M][NJ];
      if constexpr (S == Scaling::GroupSums)
        for (int i = 0; i < M; ++i)
          for (int j = 0; j < NJ; ++j)
            t[i][j] = _mm256_setzero_ps();
      for (int64_t kk = k0; kk < k0 + group; kk += 16) {
        const float *ak = a + (kk - kBegin);
        prefetchRows<NJ, Bits>(wBase, rowBytes, kk);
        for (int j = 0; j < NJ; ++j) {
          __m256 w0, w1;
          unpackAvx2<Bits>(wBase + j * rowBytes, kk, o0[j], o1[j], w0, w1);
          if constexpr (S == Scaling::Weights) {
            w0 = _mm256_mul_ps(w0, s[j]);
            w1 = _mm256_mul_ps(w1, s[j]);
          }
          for (int i = 0; i < M; ++i) {
            __m256 &x = S == Scaling::GroupSums ? t[i][j] : acc[i][j];
            x = _mm256_fmadd_ps(_mm256_loadu_ps(ak + i * lda), w0, x);
            x = _mm256_fmadd_ps(_mm256_loadu_ps(ak + i * lda + 8), w1, x);
          }
        }
      }
      if constexpr (S == Scaling::GroupSums)
        for (int i = 0; i < M; ++i)
          for (int j = 0; j < NJ; ++j)
            acc[i][j] = _mm256_fmadd_ps(s[j], t[i][j], acc[i][j]);
    }
  }
  const bool accumulate = kBegin > 0;
  for (int i = 0; i < M; ++i) {
    float sums[NJ];
    sumLanes<NJ>(acc[i], sums);
    float *ci = p.c + i * p.ldc + n0;
    for (int j = 0; j < NJ; ++j)
      ci[j] = accumulate ? ci[j] + sums[j] : sums[j];
  }
}

template <int M, int NJ, int Bits, Scaling S>
KILN_TARGET_AVX2 void fusedTilesAvx2(const QuantProblem &p, const float *a,
                                     int64_t lda, int64_t kBegin, int64_t kEnd,
                                     int64_t n0, int64_t n1) {
  int64_t n = n0;
  for (; n + NJ <= n1; n += NJ)
    fusedTileAvx2<M, NJ, Bits, S>(p, a, lda, kBegin, kEnd, n);
  for (; n < n1; ++n)
    fusedTileAvx2<M, 1, Bits, S>(p, a, lda, kBegin, kEnd, n);
}

template <int Bits>
KILN_TARGET_AVX2 void fusedAvx2(const QuantProblem &p, const float *a,
                                int64_t lda, int64_t kBegin, int64_t kEnd,
                                int64_t n0, int64_t n1) {
  // 16 registers: M x NJ accumulators (twice that with GroupSums) and the
  // per-row scales and offsets.
  constexpr Scaling kW = Scaling::Weights, kG = Scaling::GroupSums;
  const bool sums = 16 * p.m < p.group;
  switch (p.m) {
  case 1:
    if (p.group == 16)
      return fusedTilesAvx2<1, 4, Bits, Scaling::Steps>(p, a, lda, kBegin, kEnd,
                                                        n0, n1);
    return fusedTilesAvx2<1, 2, Bits, kG>(p, a, lda, kBegin, kEnd, n0, n1);
  case 2:
    if (sums)
      return fusedTilesAvx2<2, 1, Bits, kG>(p, a, lda, kBegin, kEnd, n0, n1);
    return fusedTilesAvx2<2, 2, Bits, kW>(p, a, lda, kBegin, kEnd, n0, n1);
  case 3:
    return fusedTilesAvx2<3, 1, Bits, kW>(p, a, lda, kBegin, kEnd, n0, n1);
  case 4:
    return fusedTilesAvx2<4, 1, Bits, kW>(p, a, lda, kBegin, kEnd, n0, n1);
  case 5:
    return fusedTilesAvx2<5, 1, Bits, kW>(p, a, lda, kBegin, kEnd, n0, n1);
  case 6:
    return fusedTilesAvx2<6, 1, Bits, kW>(p, a, lda, kBegin, kEnd, n0, n1);
  case 7:
    return fusedTilesAvx2<7, 1, Bits, kW>(p, a, lda, kBegin, kEnd, n0, n1);
  default:
    return fusedTilesAvx2<8, 1, Bits, kW>(p, a, lda, kBegin, kEnd, n0, n1);
  }
}

/// dequantRowScalar with 16 (4-bit) or 8 (8-bit) weights per step.
KILN_TARGET_AVX2 void dequantRowAvx2(const QuantProblem &p, int64_t row,
                                     int64_t k0, int64_t k1, float *out) {
  const uint8_t *w = p.w + row * p.rowBytes;
  const __m256i low4 = _mm256_set1_epi32(15);
  for (int64_t kk = k0; kk < k1;) {
    const int64_t g = kk / p.group;
    const int64_t end = std::min(k1, (g + 1) * p.group);
    const float sc = p.scales[row * p.groupsPerRow + g];
    const int z = zeroPoint(p, row, g);
    const __m256 s = _mm256_set1_ps(sc);
    const __m256 zf = _mm256_set1_ps(static_cast<float>(z));
    auto dequant = [&](__m256i q) KILN_TARGET_AVX2 {
      return _mm256_mul_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(q), zf), s);
    };
    if (p.bits == 4) {
      for (; kk + 16 <= end; kk += 16) {
        __m256i d = _mm256_cvtepu8_epi32(
            _mm_loadl_epi64(reinterpret_cast<const __m128i *>(w + kk / 2)));
        __m256 lo = dequant(_mm256_and_si256(d, low4));
        __m256 hi = dequant(_mm256_srli_epi32(d, 4));
        // [l0 h0 l1 h1 | l4 h4 l5 h5] and [l2 h2 l3 h3 | l6 h6 l7 h7].
        __m256 u0 = _mm256_unpacklo_ps(lo, hi), u1 = _mm256_unpackhi_ps(lo, hi);
        _mm256_storeu_ps(out + (kk - k0), _mm256_permute2f128_ps(u0, u1, 0x20));
        _mm256_storeu_ps(out + (kk - k0) + 8,
                         _mm256_permute2f128_ps(u0, u1, 0x31));
      }
    } else {
      for (; kk + 8 <= end; kk += 8)
        _mm256_storeu_ps(out + (kk - k0),
                         dequant(_mm256_cvtepu8_epi32(_mm_loadl_epi64(
                             reinterpret_cast<const __m128i *>(w + kk)))));
    }
    for (; kk < end; ++kk)
      out[kk - k0] = static_cast<float>(weightQ(p, row, kk) - z) * sc;
  }
}

KILN_TARGET_AVX2 void panelAvx2(const QuantProblem &p, int64_t n0, int64_t n1) {
  panelRange<V8, 2, 4, dequantRowAvx2>(p, n0, n1);
}

const QuantKernels kAvx2Kernels = {16, fusedAvx2<4>, fusedAvx2<8>, panelAvx2,
                                   kRowUnit};
#endif // KILN_KERNELS_X86

//===----------------------------------------------------------------------===//
// Driver
//===----------------------------------------------------------------------===//

void matmulQuant(const QuantKernels &q, ThreadPool *pool,
                 const QuantProblem &p) {
  if (p.m <= 0 || p.n <= 0)
    return;
  if (p.k <= 0) {
    for (int64_t i = 0; i < p.m; ++i)
      std::fill(p.c + i * p.ldc, p.c + i * p.ldc + p.n, 0.0f);
    return;
  }
  int64_t threads = pool ? pool->numThreads() : 1;
  threads = std::max<int64_t>(
      1, std::min(threads, 2 * p.m * p.n * p.k / kMinFlopsPerThread));
  // A few ranges of whole units of `unit` rows per thread, claimed
  // dynamically.
  auto forRows = [&](int64_t unit, auto &&rows) {
    const int64_t units = (p.n + unit - 1) / unit;
    auto range = [&](int64_t u0, int64_t u1) {
      rows(u0 * unit, std::min(p.n, u1 * unit));
    };
    if (threads == 1)
      range(0, units);
    else
      pool->parallelFor(units, range,
                        std::max<int64_t>(1, units / (4 * threads)));
  };

  // The fused path wants whole unpack steps per group and, for 4-bit
  // weights, at least one group of the even/odd copy of A per pass.
  const int64_t fusedK =
      p.bits == 4 ? kScratchFloats / p.m / p.group * p.group : p.k;
  // The fused path's sums depend on M (its K chunks and scaling), so a
  // batch-invariant caller gets the panel path at every M.
  const bool invariant = pool && pool->batchInvariant();
  if (!invariant && q.fusedStep > 0 && p.m <= kMaxFusedM &&
      p.group % q.fusedStep == 0 && fusedK > 0) {
    if (p.bits == 8) {
      forRows(kRowUnit, [&](int64_t n0, int64_t n1) {
        q.fused8(p, p.a, p.lda, 0, p.k, n0, n1);
      });
      return;
    }
    // Each pass copies a chunk of A (on this thread, into its scratch) and
    // sweeps all of N over it; passes after the first add into C.
    float *aPerm = tlsScratch;
    for (int64_t k0 = 0; k0 < p.k; k0 += fusedK) {
      const int64_t k1 = std::min(p.k, k0 + fusedK);
      permuteA(p, k0, k1, q.fusedStep, aPerm);
      forRows(kRowUnit, [&](int64_t n0, int64_t n1) {
        q.fused4(p, aPerm, k1 - k0, k0, k1, n0, n1);
      });
    }
    return;
  }
  forRows(q.panelRows, [&](int64_t n0, int64_t n1) { q.panel(p, n0, n1); });
}

} // namespace

void matmulQuantF32(Isa isa, ThreadPool *pool, const float *a, int64_t lda,
                    const uint8_t *b, const float *scales,
                    const uint8_t *zeroPoints, float *c, int64_t ldc, int64_t m,
                    int64_t n, int64_t k, int64_t group,
                    int64_t bits) noexcept {
  const QuantKernels *q = &kPortableKernels;
#ifdef KILN_KERNELS_X86
  // Groups of 16 (or 48, ...) are not whole AVX-512 steps: the AVX2 kernels,
  // which every AVX-512 CPU runs, take them fused.
  if (isa == Isa::Avx512 && group % kAvx512Kernels.fusedStep == 0)
    q = &kAvx512Kernels;
  else if (isa == Isa::Avx512 || isa == Isa::Avx2)
    q = &kAvx2Kernels;
#else
  (void)isa;
#endif
  QuantProblem p(a, lda, b, scales, zeroPoints, c, ldc, m, n, k, group, bits);
  matmulQuant(*q, pool, p);
}

} // namespace kiln::kernels

extern "C" void kiln_matmul_quant_f32(void *pool, const float *a, int64_t lda,
                                      const uint8_t *b, const float *scales,
                                      const uint8_t *zero_points, float *c,
                                      int64_t ldc, int64_t m, int64_t n,
                                      int64_t k, int64_t group, int64_t bits) {
  kiln::kernels::matmulQuantF32(
      kiln::kernels::activeIsa(), static_cast<kiln::ThreadPool *>(pool), a, lda,
      b, scales, zero_points, c, ldc, m, n, k, group, bits);
}
