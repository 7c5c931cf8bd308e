//===- attention.cpp - causal attention over the paged KV cache -----------===//
//
// First the step's new keys and values go into their cache rows; then each
// (token, query head) pair is one work item: the query attends to its own
// sequence's positions 0 .. positions[t], read through the block table.
//
// The softmax is the streaming ("online") one: keys are taken in chunks of
// kChunk positions; for each chunk the scores are computed, the running
// maximum is raised if needed (rescaling the accumulated output and sum
// once per chunk) and the chunk's exp-weighted values are added. Nothing
// of size context length is ever stored.
//
// The code is written once over GCC vector types of 16 floats and
// instantiated three times: plain (the baseline target lowers a 16-float
// vector to SSE registers) and inside functions with target("avx2,fma") and
// target("avx512f"), into which every helper is force-inlined, so each
// copy is compiled for its own instruction set. head_dim 64 and 128 get
// their own copies, which keep the output accumulator in registers.
//
// Work items are claimed in chunks, in (token, head) order, so the query
// heads that share a KV head run at about the same time and find its keys
// in cache.
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
  int32_t bits = (ni + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return y * scale;
}

/// What every work item needs, derived once per call.
struct Problem {
  AttentionArgs args;
  int64_t group;       ///< query heads per KV head
  int64_t blockFloats; ///< floats of one block's keys (or values) per layer
};

/// Key row of position `row` in `block` for KV head g; the value row is
/// blockFloats further.
KILN_INLINE float *keyRow(const Problem &p, int64_t block, int64_t g,
                          int64_t row) {
  const AttentionArgs &a = p.args;
  return a.step->kv_cache + (block * a.layers + a.layer) * 2 * p.blockFloats +
         (g * a.blockSize + row) * a.headDim;
}

/// out[h][t] for one (token, head) pair. kD is head_dim when specialized,
/// 0 otherwise.
template <int64_t kD>
KILN_INLINE void attendOne(const Problem &p, int64_t t, int64_t h) {
  constexpr int64_t kSliceVecs = kD ? (kD + 15) / 16 : kSliceFloats / 16;
  const AttentionArgs &a = p.args;
  const int64_t headDim = kD ? kD : a.headDim;
  const float *q = a.q + h * a.qStrideHead + t * a.qStrideToken;
  float *out = a.out + h * a.outStrideHead + t * a.outStrideToken;
  const int64_t g = h / p.group;
  const int64_t seq = a.step->token_seq[t];
  const int32_t *table =
      a.step->block_tables + seq * a.step->max_blocks_per_seq;
  const int64_t context = a.step->positions[t] + 1;

  for (int64_t d0 = 0; d0 < headDim; d0 += kSliceVecs * 16) {
    const int64_t dLen = std::min(headDim - d0, kSliceVecs * 16);
    const int64_t vecs = dLen / 16, tail = dLen % 16;
    V16 acc[kSliceVecs];
    for (int64_t i = 0; i < kSliceVecs; ++i)
      acc[i] = V16{};
    float accTail[16] = {};
    float runMax = -std::numeric_limits<float>::infinity();
    float runSum = 0.0f;

    for (int64_t j0 = 0; j0 < context; j0 += kChunk) {
      const int64_t n = std::min(kChunk, context - j0);
      const float *keys[kChunk];
      float s[kChunk];
      int64_t blockIndex = j0 / a.blockSize, row = j0 % a.blockSize;
      for (int64_t j = 0; j < n; ++j) {
        keys[j] = keyRow(p, table[blockIndex], g, row);
        if (++row == a.blockSize) {
          row = 0;
          ++blockIndex;
        }
      }
      for (int64_t j = 0; j < n; ++j)
        s[j] = a.scale * dot(q, keys[j], headDim);
      if (a.softcap > 0.0f)
        for (int64_t j = 0; j < n; ++j)
          s[j] = a.softcap * std::tanh(s[j] / a.softcap);

      float chunkMax = s[0];
      for (int64_t j = 1; j < n; ++j)
        chunkMax = std::max(chunkMax, s[j]);
      const float newMax = std::max(runMax, chunkMax);
      // exp(-inf) on the first chunk: nothing accumulated yet to rescale.
      const float alpha = j0 == 0 ? 0.0f : std::exp(runMax - newMax);
      float chunkSum = 0.0f;
      for (int64_t j = 0; j < n; ++j) {
        s[j] = expNonPositive(s[j] - newMax);
        chunkSum += s[j];
      }
      runSum = runSum * alpha + chunkSum;
      runMax = newMax;

      for (int64_t i = 0; i < vecs; ++i)
        acc[i] *= alpha;
      for (int64_t i = 0; i < tail; ++i)
        accTail[i] *= alpha;
      for (int64_t j = 0; j < n; ++j) {
        const float *v = keys[j] + p.blockFloats + d0;
        V16 w = {}, x;
        w += s[j];
        for (int64_t i = 0; i < vecs; ++i) {
          load16(x, v + 16 * i);
          acc[i] += w * x;
        }
        for (int64_t i = 0; i < tail; ++i)
          accTail[i] += s[j] * v[16 * vecs + i];
      }
    }

    const float inv = 1.0f / runSum;
    for (int64_t i = 0; i < vecs; ++i) {
      V16 o = acc[i] * inv;
      store16(out + d0 + 16 * i, o);
    }
    for (int64_t i = 0; i < tail; ++i)
      out[d0 + 16 * vecs + i] = accTail[i] * inv;
  }
}

KILN_INLINE void attendRange(const Problem &p, int64_t begin, int64_t end) {
  const int64_t heads = p.args.qHeads;
  switch (p.args.headDim) {
  case 64:
    for (int64_t i = begin; i < end; ++i)
      attendOne<64>(p, i / heads, i % heads);
    break;
  case 128:
    for (int64_t i = begin; i < end; ++i)
      attendOne<128>(p, i / heads, i % heads);
    break;
  default:
    for (int64_t i = begin; i < end; ++i)
      attendOne<0>(p, i / heads, i % heads);
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

/// Copies the step's keys and values for tokens [begin, end) into their
/// cache rows.
void writeCache(const Problem &p, int64_t begin, int64_t end) {
  const AttentionArgs &a = p.args;
  const kiln_step_args *step = a.step;
  const size_t rowBytes = a.headDim * sizeof(float);
  for (int64_t t = begin; t < end; ++t) {
    int64_t pos = step->positions[t];
    const int32_t *table =
        step->block_tables + step->token_seq[t] * step->max_blocks_per_seq;
    int64_t block = table[pos / a.blockSize];
    for (int64_t g = 0; g < a.kvHeads; ++g) {
      float *key = keyRow(p, block, g, pos % a.blockSize);
      std::memcpy(key, a.k + g * a.kStrideHead + t * a.kStrideToken, rowBytes);
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
  Problem p{args, args.qHeads / args.kvHeads,
            args.kvHeads * args.blockSize * args.headDim};
  ThreadPool *pool = static_cast<ThreadPool *>(args.step->pool);
  const int64_t threads = pool ? pool->numThreads() : 1;

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
  const int64_t items = tokens * args.qHeads;
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
    float softcap, const float *q, int64_t q_stride_head,
    int64_t q_stride_token, const float *k, int64_t k_stride_head,
    int64_t k_stride_token, const float *v, int64_t v_stride_head,
    int64_t v_stride_token, float *out, int64_t out_stride_head,
    int64_t out_stride_token) {
  kiln::kernels::attentionPagedF32(
      kiln::kernels::activeIsa(),
      {step,       layer,           layers,
       q_heads,    kv_heads,        head_dim,
       block_size, scale,           softcap,
       q,          q_stride_head,   q_stride_token,
       k,          k_stride_head,   k_stride_token,
       v,          v_stride_head,   v_stride_token,
       out,        out_stride_head, out_stride_token});
}
