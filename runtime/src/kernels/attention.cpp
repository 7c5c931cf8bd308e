//===- attention.cpp - causal attention over the paged KV cache -----------===//
//
// First the step's new keys and values go into their cache rows. Then one
// work item is a token and a pass of up to kHeadsPerPass query heads that
// share a KV head: the query attends to its own sequence's positions
// 0 .. positions[t] (the last window + 1 of them with a sliding window),
// read through the block table, and each chunk of keys
// and values is loaded once for all heads of the pass (GQA reads a third
// of the bytes for SmolLM2's 3 query heads per KV head). Decode batches
// with fewer items than threads split the heads into more passes.
//
// The softmax is the streaming ("online") one: keys are taken in chunks of
// kChunk positions; for each chunk the scores are computed (four keys at a
// time, so that the horizontal sums share shuffles), the running maximum
// is raised if needed (rescaling the accumulated output and sum once per
// chunk), exp runs as a vectorized polynomial, and the chunk's
// exp-weighted values are added. Nothing of context length is stored.
//
// The code is written once over GCC vector types of 16 floats and
// instantiated three times: plain (the baseline target lowers a 16-float
// vector to SSE registers) and inside functions with target("avx2,fma") and
// target("avx512f"), into which every helper is force-inlined, so each
// copy is compiled for its own instruction set. head_dim 64 and 128 get
// their own copies, which keep the output accumulator in registers.
//
// Work items are claimed in chunks in (token, KV head) order from the
// thread pool.
//
// With a rotary embedding (kilnc passes kiln.rotary of q and k to the
// kernel instead of running it as loops of its own), the keys are rotated
// on their way into the cache and each work item rotates its queries into
// a buffer on the stack before the first chunk: no pass over q and k of
// their own, and no rotated copies in the arena.
//
//===----------------------------------------------------------------------===//

#include "runtime/src/kernels/kernels.h"
#include "runtime/src/threadpool.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#if defined(__x86_64__) || defined(__i386__)
#define KILN_KERNELS_X86 1
#endif

#define KILN_INLINE inline __attribute__((always_inline))

namespace kiln::kernels {
namespace {

typedef float V16 __attribute__((vector_size(64)));
typedef float V8 __attribute__((vector_size(32)));
typedef float V4 __attribute__((vector_size(16)));

/// Positions per chunk of the streaming softmax.
constexpr int64_t kChunk = 64;
/// Most query heads that one pass over a KV head's keys serves.
constexpr int64_t kHeadsPerPass = 8;
/// Output floats accumulated per pass when head_dim is not specialized;
/// larger head dims take several passes.
constexpr int64_t kSliceFloats = 256;

// Vectors are passed by reference: by value they would change the calling
// convention between the plain and the AVX copies (-Wpsabi).

KILN_INLINE void load16(V16 &v, const float *p) {
  std::memcpy(&v, p, sizeof(V16));
}

KILN_INLINE void store16(float *p, const V16 &v) {
  std::memcpy(p, &v, sizeof(V16));
}

KILN_INLINE float sum16(const V16 &v) {
  V8 s8 = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
          __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  V4 s4 = __builtin_shufflevector(s8, s8, 0, 1, 2, 3) +
          __builtin_shufflevector(s8, s8, 4, 5, 6, 7);
  return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

KILN_INLINE float dot(const float *a, const float *b, int64_t n) {
  V16 s0 = {}, s1 = {}, x, y;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    load16(x, a + i);
    load16(y, b + i);
    s0 += x * y;
    load16(x, a + i + 16);
    load16(y, b + i + 16);
    s1 += x * y;
  }
  if (i + 16 <= n) {
    load16(x, a + i);
    load16(y, b + i);
    s0 += x * y;
    i += 16;
  }
  s0 += s1;
  float r = sum16(s0);
  for (; i < n; ++i)
    r += a[i] * b[i];
  return r;
}

/// out[r] = a . b[r] for r in 0..3: the four partial vectors are reduced
/// together, which takes a third of the shuffles of four separate sums.
KILN_INLINE void dot4(const float *a, const float *const *b, int64_t n,
                      float *out) {
  V16 s0 = {}, s1 = {}, s2 = {}, s3 = {}, x, y;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    load16(x, a + i);
    load16(y, b[0] + i);
    s0 += x * y;
    load16(y, b[1] + i);
    s1 += x * y;
    load16(y, b[2] + i);
    s2 += x * y;
    load16(y, b[3] + i);
    s3 += x * y;
  }
  // Halve the lanes per sum until one is left: [s0 | s1] with 8 lanes
  // each, then [s0 | s1 | s2 | s3] with 4, 2, 1.
  V16 h01 = __builtin_shufflevector(s0, s1, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18,
                                    19, 20, 21, 22, 23) +
            __builtin_shufflevector(s0, s1, 8, 9, 10, 11, 12, 13, 14, 15, 24,
                                    25, 26, 27, 28, 29, 30, 31);
  V16 h23 = __builtin_shufflevector(s2, s3, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18,
                                    19, 20, 21, 22, 23) +
            __builtin_shufflevector(s2, s3, 8, 9, 10, 11, 12, 13, 14, 15, 24,
                                    25, 26, 27, 28, 29, 30, 31);
  V16 q4 = __builtin_shufflevector(h01, h23, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17,
                                   18, 19, 24, 25, 26, 27) +
           __builtin_shufflevector(h01, h23, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21,
                                   22, 23, 28, 29, 30, 31);
  V8 q2 = __builtin_shufflevector(q4, q4, 0, 1, 4, 5, 8, 9, 12, 13) +
          __builtin_shufflevector(q4, q4, 2, 3, 6, 7, 10, 11, 14, 15);
  V4 q1 = __builtin_shufflevector(q2, q2, 0, 2, 4, 6) +
          __builtin_shufflevector(q2, q2, 1, 3, 5, 7);
  for (; i < n; ++i)
    for (int r = 0; r < 4; ++r)
      q1[r] += a[i] * b[r][i];
  std::memcpy(out, &q1, sizeof(q1));
}

/// exp(x) for x <= 0 (larger x is not expected: scores minus their
/// maximum), within a few ulp; branch-free so that loops over it
/// vectorize. Cephes' expf: x = n ln2 + r, |r| <= ln2 / 2, a degree-6
/// polynomial for e^r, and 2^n put into the exponent bits.
KILN_INLINE float expNonPositive(float x) {
  x = x < -87.0f ? -87.0f : x;
  // Adding 1.5 * 2^23 rounds to an integer, which lands in the low
  // mantissa bits; subtracting it again gives that integer as a float.
  const float magic = 12582912.0f;
  float shifted = x * 1.44269504088896341f + magic;
  float n = shifted - magic;
  int32_t ni;
  std::memcpy(&ni, &shifted, sizeof(ni));
  ni -= 0x4B400000; // the bits of `magic`
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.0f;
  // Unsigned: a NaN x (padding lanes) gives a meaningless ni whose shift
  // must still be defined.
  uint32_t bits = (static_cast<uint32_t>(ni) + 127u) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return y * scale;
}

/// What every work item needs, derived once per call.
struct Problem {
  AttentionArgs args;
  int64_t group;        ///< query heads per KV head
  int64_t headsPerPass; ///< query heads one work item handles, <= group
  int64_t blockFloats;  ///< floats of one block's keys (or values) per layer
};

/// Key row of position `row` in `block` for KV head g; the value row is
/// blockFloats further.
KILN_INLINE float *keyRow(const Problem &p, int64_t block, int64_t g,
                          int64_t row) {
  const AttentionArgs &a = p.args;
  return a.step->kv_cache + (block * a.layers + a.layer) * 2 * p.blockFloats +
         (g * a.blockSize + row) * a.headDim;
}

/// Token t's rows of the rotary cos and sin tables.
KILN_INLINE void rotaryRows(const AttentionArgs &a, int64_t t,
                            const float *&cosRow, const float *&sinRow) {
  const int64_t r =
      a.rotFlags & KILN_ROTARY_BY_POSITION ? a.step->positions[t] : t;
  cosRow = a.rotCos + r * a.rotStride;
  sinRow = a.rotSin + r * a.rotStride;
}

/// out = x (one head_dim row) rotated by the angles c, s (model_abi.h);
/// out does not alias x.
KILN_INLINE void rotate(const AttentionArgs &a, const float *x, const float *c,
                        const float *s, float *out) {
  const int64_t half = a.rotaryDim / 2;
  if (a.rotFlags & KILN_ROTARY_INTERLEAVED) {
    for (int64_t i = 0; i < half; ++i) {
      float x0 = x[2 * i], x1 = x[2 * i + 1];
      out[2 * i] = x0 * c[i] - x1 * s[i];
      out[2 * i + 1] = x1 * c[i] + x0 * s[i];
    }
  } else {
    for (int64_t i = 0; i < half; ++i) {
      float x0 = x[i], x1 = x[i + half];
      out[i] = x0 * c[i] - x1 * s[i];
      out[i + half] = x1 * c[i] + x0 * s[i];
    }
  }
  std::memcpy(out + a.rotaryDim, x + a.rotaryDim,
              (a.headDim - a.rotaryDim) * sizeof(float));
}

/// Running softmax state of one query head over one slice of head_dim.
template <int64_t kSliceVecs> struct HeadState {
  V16 acc[kSliceVecs]; ///< sum of exp(s_j - max) V_j, first vecs * 16 dims
  float accTail[16];   ///< the same for the last dLen % 16 dims
  float max, sum;      ///< running maximum score, sum of exp(s_j - max)
};

/// One chunk of up to kChunk keys for one head: scores, softmax update and
/// the weighted values, into `st`.
template <int64_t kSliceVecs>
KILN_INLINE void
attendChunk(const AttentionArgs &a, int64_t blockFloats, const float *q,
            int64_t headDim, const float *const *keys, int64_t n, bool first,
            int64_t d0, int64_t vecs, int64_t tail, HeadState<kSliceVecs> &st) {
  alignas(64) float s[kChunk];
  int64_t j = 0;
  for (; j + 4 <= n; j += 4)
    dot4(q, keys + j, headDim, s + j);
  for (; j < n; ++j)
    s[j] = dot(q, keys[j], headDim);
  for (j = 0; j < n; ++j)
    s[j] *= a.scale;
  if (a.softcap > 0.0f)
    for (j = 0; j < n; ++j)
      s[j] = a.softcap * std::tanh(s[j] / a.softcap);

  float chunkMax = s[0];
  for (j = 1; j < n; ++j)
    chunkMax = std::max(chunkMax, s[j]);
  const float newMax = first ? chunkMax : std::max(st.max, chunkMax);
  // Nothing accumulated before the first chunk: no exp(-inf) to take.
  const float alpha = first ? 0.0f : std::exp(st.max - newMax);
  // Over the whole chunk, with zeros past n, so that it vectorizes.
  for (j = 0; j < kChunk; ++j) {
    float e = expNonPositive(s[j] - newMax);
    s[j] = j < n ? e : 0.0f;
  }
  V16 sum = {}, x;
  for (j = 0; j < kChunk; j += 16) {
    load16(x, s + j);
    sum += x;
  }
  st.sum = st.sum * alpha + sum16(sum);
  st.max = newMax;

  // A local copy of the accumulator, which the compiler keeps in registers
  // when head_dim is a constant.
  V16 acc[kSliceVecs];
  for (int64_t i = 0; i < vecs; ++i)
    acc[i] = st.acc[i] * alpha;
  for (int64_t i = 0; i < tail; ++i)
    st.accTail[i] *= alpha;
  for (j = 0; j < n; ++j) {
    const float *v = keys[j] + blockFloats + d0;
    V16 w = {};
    w += s[j];
    for (int64_t i = 0; i < vecs; ++i) {
      load16(x, v + 16 * i);
      acc[i] += w * x;
    }
    for (int64_t i = 0; i < tail; ++i)
      st.accTail[i] += s[j] * v[16 * vecs + i];
  }
  for (int64_t i = 0; i < vecs; ++i)
    st.acc[i] = acc[i];
}

/// out[h][t] for query heads h0 .. h0 + heads - 1 of token t, which share
/// one KV head: each chunk of keys and values is read from memory once and
/// then used by every head from L1. kD is head_dim when specialized, 0
/// otherwise.
template <int64_t kD>
KILN_INLINE void attendHeads(const Problem &p, int64_t t, int64_t h0,
                             int64_t heads) {
  constexpr int64_t kSliceVecs = kD ? (kD + 15) / 16 : kSliceFloats / 16;
  const AttentionArgs &a = p.args;
  const int64_t headDim = kD ? kD : a.headDim;
  const int64_t g = h0 / p.group;
  const int32_t *table =
      a.step->block_tables + a.step->token_seq[t] * a.step->max_blocks_per_seq;
  const int64_t context = a.step->positions[t] + 1;
  // A sliding window starts the keys later; the chunks then begin there.
  const int64_t start =
      a.window >= 0 ? std::max<int64_t>(0, context - 1 - a.window) : 0;

  // The queries, rotated first when the kernel applies the rotary
  // embedding.
  const float *queries[kHeadsPerPass];
  alignas(64) float rotated[kHeadsPerPass][KILN_ROTARY_MAX_HEAD_DIM];
  const float *cosRow = nullptr, *sinRow = nullptr;
  if (a.rotCos)
    rotaryRows(a, t, cosRow, sinRow);
  for (int64_t hh = 0; hh < heads; ++hh) {
    queries[hh] = a.q + (h0 + hh) * a.qStrideHead + t * a.qStrideToken;
    if (a.rotCos) {
      rotate(a, queries[hh], cosRow, sinRow, rotated[hh]);
      queries[hh] = rotated[hh];
    }
  }

  for (int64_t d0 = 0; d0 < headDim; d0 += kSliceVecs * 16) {
    const int64_t dLen = std::min(headDim - d0, kSliceVecs * 16);
    const int64_t vecs = dLen / 16, tail = dLen % 16;
    HeadState<kSliceVecs> states[kHeadsPerPass];
    for (int64_t hh = 0; hh < heads; ++hh) {
      for (int64_t i = 0; i < kSliceVecs; ++i)
        states[hh].acc[i] = V16{};
      for (int64_t i = 0; i < 16; ++i)
        states[hh].accTail[i] = 0.0f;
      states[hh].max = states[hh].sum = 0.0f;
    }

    for (int64_t j0 = start; j0 < context; j0 += kChunk) {
      const int64_t n = std::min(kChunk, context - j0);
      // Rows of one block are contiguous: walk the chunk block by block.
      const float *keys[kChunk];
      for (int64_t j = 0, pos = j0; j < n;) {
        int64_t row = pos % a.blockSize;
        int64_t take = std::min(a.blockSize - row, n - j);
        const float *first = keyRow(p, table[pos / a.blockSize], g, row);
        for (int64_t r = 0; r < take; ++r)
          keys[j + r] = first + r * headDim;
        j += take;
        pos += take;
      }
      for (int64_t hh = 0; hh < heads; ++hh)
        attendChunk(a, p.blockFloats, queries[hh], headDim, keys, n,
                    j0 == start, d0, vecs, tail, states[hh]);
    }

    for (int64_t hh = 0; hh < heads; ++hh) {
      const HeadState<kSliceVecs> &st = states[hh];
      float *out =
          a.out + (h0 + hh) * a.outStrideHead + t * a.outStrideToken + d0;
      const float inv = 1.0f / st.sum;
      for (int64_t i = 0; i < vecs; ++i) {
        V16 o = st.acc[i] * inv;
        store16(out + 16 * i, o);
      }
      for (int64_t i = 0; i < tail; ++i)
        out[16 * vecs + i] = st.accTail[i] * inv;
    }
  }
}

/// Work items [begin, end), ordered by token, then KV head, then pass of up
/// to p.headsPerPass query heads.
template <int64_t kD>
KILN_INLINE void attendItems(const Problem &p, int64_t begin, int64_t end) {
  const int64_t passes = (p.group + p.headsPerPass - 1) / p.headsPerPass;
  const int64_t perToken = p.args.kvHeads * passes;
  for (int64_t i = begin; i < end; ++i) {
    int64_t t = i / perToken, g = i % perToken / passes, pass = i % passes;
    int64_t first = pass * p.headsPerPass;
    attendHeads<kD>(p, t, g * p.group + first,
                    std::min(p.headsPerPass, p.group - first));
  }
}

KILN_INLINE void attendRange(const Problem &p, int64_t begin, int64_t end) {
  switch (p.args.headDim) {
  case 64:
    attendItems<64>(p, begin, end);
    break;
  case 128:
    attendItems<128>(p, begin, end);
    break;
  default:
    attendItems<0>(p, begin, end);
    break;
  }
}

using AttendFn = void (*)(const Problem &, int64_t, int64_t);

void attendPortable(const Problem &p, int64_t begin, int64_t end) {
  attendRange(p, begin, end);
}

#ifdef KILN_KERNELS_X86
__attribute__((target("avx2,fma"))) void
attendAvx2(const Problem &p, int64_t begin, int64_t end) {
  attendRange(p, begin, end);
}

__attribute__((target("avx512f,avx2,fma"))) void
attendAvx512(const Problem &p, int64_t begin, int64_t end) {
  attendRange(p, begin, end);
}
#endif

/// Copies the step's keys (rotated, with a rotary embedding) and values
/// for tokens [begin, end) into their cache rows.
void writeCache(const Problem &p, int64_t begin, int64_t end) {
  const AttentionArgs &a = p.args;
  const kiln_step_args *step = a.step;
  const size_t rowBytes = a.headDim * sizeof(float);
  for (int64_t t = begin; t < end; ++t) {
    int64_t pos = step->positions[t];
    const int32_t *table =
        step->block_tables + step->token_seq[t] * step->max_blocks_per_seq;
    int64_t block = table[pos / a.blockSize];
    const float *cosRow = nullptr, *sinRow = nullptr;
    if (a.rotCos)
      rotaryRows(a, t, cosRow, sinRow);
    for (int64_t g = 0; g < a.kvHeads; ++g) {
      float *key = keyRow(p, block, g, pos % a.blockSize);
      const float *k = a.k + g * a.kStrideHead + t * a.kStrideToken;
      if (a.rotCos)
        rotate(a, k, cosRow, sinRow, key);
      else
        std::memcpy(key, k, rowBytes);
      std::memcpy(key + p.blockFloats,
                  a.v + g * a.vStrideHead + t * a.vStrideToken, rowBytes);
    }
  }
}

} // namespace

void attentionPagedF32(Isa isa, const AttentionArgs &args) noexcept {
  const int64_t tokens = args.step->num_tokens;
  if (tokens <= 0 || args.qHeads <= 0 || args.headDim <= 0)
    return;
  ThreadPool *pool = static_cast<ThreadPool *>(args.step->pool);
  const int64_t threads = pool ? pool->numThreads() : 1;
  // Query heads that share a KV head go in one pass over its keys, unless
  // that leaves too few work items to keep the threads busy.
  const int64_t group = args.qHeads / args.kvHeads;
  int64_t headsPerPass = std::min(group, kHeadsPerPass);
  int64_t wantPasses =
      (2 * threads + tokens * args.kvHeads - 1) / (tokens * args.kvHeads);
  if (threads > 1 && wantPasses > 1)
    headsPerPass = std::max<int64_t>(1, (group + wantPasses - 1) / wantPasses);
  Problem p{args, group, headsPerPass,
            args.kvHeads * args.blockSize * args.headDim};

  auto write = [&](int64_t b, int64_t e) { writeCache(p, b, e); };
  // A thread's share should be worth at least a few microseconds.
  if (threads > 1 && tokens * args.kvHeads * args.headDim >= 16384)
    pool->parallelFor(tokens, write);
  else
    write(0, tokens);

  AttendFn attend = attendPortable;
#ifdef KILN_KERNELS_X86
  if (isa == Isa::Avx512)
    attend = attendAvx512;
  else if (isa == Isa::Avx2)
    attend = attendAvx2;
#else
  (void)isa;
#endif
  const int64_t items =
      tokens * args.kvHeads * ((group + headsPerPass - 1) / headsPerPass);
  auto body = [&](int64_t b, int64_t e) { attend(p, b, e); };
  if (threads > 1 && items > 1)
    pool->parallelFor(items, body, std::max<int64_t>(1, items / (8 * threads)));
  else
    body(0, items);
}

} // namespace kiln::kernels

extern "C" void kiln_attention_paged_f32(
    const kiln_step_args *step, int64_t layer, int64_t layers, int64_t q_heads,
    int64_t kv_heads, int64_t head_dim, int64_t block_size, float scale,
    float softcap, int64_t window, const float *q, int64_t q_stride_head,
    int64_t q_stride_token, const float *k, int64_t k_stride_head,
    int64_t k_stride_token, const float *v, int64_t v_stride_head,
    int64_t v_stride_token, float *out, int64_t out_stride_head,
    int64_t out_stride_token, const float *rot_cos, const float *rot_sin,
    int64_t rot_stride, int64_t rotary_dim, int64_t rot_flags) {
  kiln::kernels::attentionPagedF32(kiln::kernels::activeIsa(),
                                   {step,
                                    layer,
                                    layers,
                                    q_heads,
                                    kv_heads,
                                    head_dim,
                                    block_size,
                                    scale,
                                    softcap,
                                    window,
                                    q,
                                    q_stride_head,
                                    q_stride_token,
                                    k,
                                    k_stride_head,
                                    k_stride_token,
                                    v,
                                    v_stride_head,
                                    v_stride_token,
                                    out,
                                    out_stride_head,
                                    out_stride_token,
                                    rot_cos,
                                    rot_sin,
                                    rot_stride,
                                    rotary_dim,
                                    rot_flags});
}
