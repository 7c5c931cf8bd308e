/*===- kiln/model_abi.h - model.so <-> runtime contract ----------*- C -*-===*
 *
 * kilnc compiles a model into `model.so`, which exports one function,
 * kiln_model_step, with the C signature below. The runtime fills a
 * kiln_step_args for every step and passes a table of its micro-kernels;
 * the generated code never allocates and never calls anything but the
 * table. Services do not call this directly: they use kiln.h's engine.
 *
 * Token batch. A step packs the new tokens of every sequence in the batch
 * into one row of `num_tokens` tokens (prefill chunks and decode tokens
 * mixed). Token i belongs to sequence token_seq[i] and sits at position
 * positions[i] of it; a sequence's tokens are contiguous and in position
 * order. seq_lens[s] is sequence s's context length after the step, so
 * the keys a token attends to are its own sequence's positions 0..pos.
 *
 * Paged KV cache. The runtime owns `kv_cache`, a pool of blocks of
 * `block_size` tokens. Block b of layer l holds keys then values:
 *
 *   keys(b, l)   = kv_cache + ((b * layers + l) * 2 + 0) * S
 *   values(b, l) = kv_cache + ((b * layers + l) * 2 + 1) * S
 *   with S = kv_heads * block_size * head_dim
 *
 * each laid out [kv_heads][block_size][head_dim]. Position p of sequence
 * s lives in block block_tables[s * max_blocks_per_seq + p / block_size]
 * at row p % block_size.
 *
 *===----------------------------------------------------------------------===*/

#ifndef KILN_MODEL_ABI_H
#define KILN_MODEL_ABI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Bumped whenever kiln_step_args or kiln_kernels change layout. */
#define KILN_MODEL_ABI_VERSION 6

/** Everything one step reads and writes. All pointers are owned by the
 *  runtime and valid for the duration of the call. */
typedef struct kiln_step_args {
  int64_t num_tokens;          /**< T, at most the compiled max batch tokens */
  const int64_t *token_ids;    /**< [T] */
  const int64_t *positions;    /**< [T] */
  const int32_t *token_seq;    /**< [T] sequence index of each token */
  int64_t num_seqs;            /**< S */
  const int32_t *seq_lens;     /**< [S] context length after this step */
  const int32_t *block_tables; /**< [S][max_blocks_per_seq] */
  int64_t max_blocks_per_seq;
  float *kv_cache;           /**< the block pool */
  int64_t num_logit_rows;    /**< R <= T */
  const int64_t *logit_rows; /**< [R] token indices whose logits are wanted */
  float *logits;             /**< [R][vocab] output */
  void *arena;               /**< arena_bytes of scratch, 64-byte aligned */
  const void *weights;       /**< the mapped weights file */
  void *pool;                /**< the runtime's thread pool, for kernels */
} kiln_step_args;

/** C[m][n] = sum_k A[m][k] * B[k][n]; A is [M][K] with row stride lda,
 *  B is [K][N] row-major (a weight), C is [M][N] with row stride ldc.
 *  `pool` is the step's pool. Also the type of matmul_bt: there B is
 *  stored [N][K] (a tied embedding table read as the output projection)
 *  and C[m][n] = sum_k A[m][k] * B[n][k]. */
typedef void kiln_matmul_fn(void *pool, const float *a, int64_t lda,
                            const float *b, float *c, int64_t ldc, int64_t m,
                            int64_t n, int64_t k);

/** Columns per panel of a packed weight (matmul_packed_f32). */
#define KILN_PANEL_COLUMNS 32

/** matmul_packed_f32 is a kiln_matmul_fn whose B, a [K][N] weight, is
 *  stored in panels of KILN_PANEL_COLUMNS columns: panel p holds columns
 *  [32p, 32p + 32) as K rows of 32 floats, zero beyond N, so
 *
 *    B[k][n] = b[(n / 32) * K * 32 + k * 32 + n % 32]
 *
 *  and the whole weight takes ceil(N / 32) * K * 32 floats. Every panel is
 *  one contiguous stream: no copying before a multiply, and a matrix-vector
 *  product reads memory in order. */

/** C[m][n] = sum_k A[m][k] * W[n][k] with W a quantized weight stored
 *  [N][K] as unsigned integers of `bits` (4 or 8) bits: 8-bit one per
 *  byte, 4-bit two per byte, low nibble first (W[n][2j] in the low nibble
 *  of byte n * K/2 + j). Every `group` consecutive k of a row share a
 *  scale and a zero point:
 *
 *    W[n][k] = (q[n][k] - zp[n][k / group]) * scales[n * (K/group) + k/group]
 *
 *  zero_points is NULL for the implied 2^(bits-1) (8 or 128), else
 *  unsigned `bits`-bit values laid out [N][K/group] and packed like the
 *  weight. A is [M][K] with row stride lda, C is [M][N] with row stride
 *  ldc. K is a multiple of `group`, which is even. */
typedef void kiln_matmul_quant_fn(void *pool, const float *a, int64_t lda,
                                  const uint8_t *b, const float *scales,
                                  const uint8_t *zero_points, float *c,
                                  int64_t ldc, int64_t m, int64_t n, int64_t k,
                                  int64_t group, int64_t bits);

/** matmul_quant_a8_f32 is a kiln_matmul_quant_fn computing the product as
 *  onnxruntime's MatMulNBits does at accuracy_level 4 (MLAS CompInt8).
 *  Every row of A is first rounded to int8 per block of `group` k, with
 *  amax the block's max |A[m][k]| and all of it in fp32:
 *
 *    sa[m][b] = amax / 127
 *    qa[m][k] = round_half_even(A[m][k] * (127 / amax))   (0 if amax is 0)
 *
 *  and then, with the inner sum exact in integers and the outer in fp32,
 *
 *    C[m][n] = sum_b (sa[m][b] * scales[n][b]) *
 *              sum_{k in block b} qa[m][k] * (q[n][k] - zp[n][b])
 *
 *  Each row of C is computed the same way whatever M is (batch
 *  invariance). */

/** Attention of layer `layer` over the paged cache. First the keys and
 *  values of the step's T tokens are written into the cache at their
 *  positions. Then, for every token t and query head h, with
 *  g = h / (q_heads / kv_heads):
 *
 *    out[h][t] = sum_j softmax_j(s_j) V[g][j]
 *    s_j = scale * dot(q[h][t], K[g][j])
 *
 *  with j over the token's own sequence, positions 0 .. positions[t], or
 *  only positions[t] - window .. positions[t] when window >= 0 (sliding-
 *  window attention; -1: no window). softcap > 0 first replaces s_j by
 *  softcap * tanh(s_j / softcap).
 *  q (q_heads heads), k and v (kv_heads heads) and out (q_heads heads)
 *  are addressed base + head * stride_head + token * stride_token + d,
 *  d in [0, head_dim) contiguous.
 *
 *  Rotary embedding (rot_cos non-NULL): q and k are first rotated, k
 *  before it is written into the cache, by the angles of token t's row
 *
 *    c = rot_cos + r * rot_stride,  s = rot_sin + r * rot_stride,
 *    r = positions[t] with KILN_ROTARY_BY_POSITION, else t
 *
 *  (rotary_dim / 2 entries each): for i < rotary_dim / 2, the pair
 *  (x[i], x[i + rotary_dim/2]), or (x[2i], x[2i + 1]) with
 *  KILN_ROTARY_INTERLEAVED, becomes (a c[i] - b s[i], b c[i] + a s[i]);
 *  elements from rotary_dim on pass through. rotary_dim is even and at
 *  most min(head_dim, KILN_ROTARY_MAX_HEAD_DIM). This is kiln.rotary, done
 *  where q and k are read anyway. */
typedef void kiln_attention_paged_fn(
    const kiln_step_args *step, int64_t layer, int64_t layers, int64_t q_heads,
    int64_t kv_heads, int64_t head_dim, int64_t block_size, float scale,
    float softcap, int64_t window, const float *q, int64_t q_stride_head,
    int64_t q_stride_token, const float *k, int64_t k_stride_head,
    int64_t k_stride_token, const float *v, int64_t v_stride_head,
    int64_t v_stride_token, float *out, int64_t out_stride_head,
    int64_t out_stride_token, const float *rot_cos, const float *rot_sin,
    int64_t rot_stride, int64_t rotary_dim, int64_t rot_flags);

/** rot_flags of kiln_attention_paged_fn. */
#define KILN_ROTARY_INTERLEAVED 1
#define KILN_ROTARY_BY_POSITION 2
/** The largest head_dim whose rotation attention_paged_f32 fuses (q is
 *  rotated into a buffer on the stack). */
#define KILN_ROTARY_MAX_HEAD_DIM 512

/** The runtime's micro-kernels, passed to every step. Generated code
 *  calls them with scalar arguments only, so no struct layout is shared
 *  with it beyond kiln_step_args. */
typedef struct kiln_kernels {
  uint32_t abi_version; /**< KILN_MODEL_ABI_VERSION */
  uint32_t size;        /**< sizeof(kiln_kernels) */
  kiln_matmul_fn *matmul_f32;
  kiln_attention_paged_fn *attention_paged_f32;
  kiln_matmul_fn *matmul_bt_f32;          /**< B stored [N][K] */
  kiln_matmul_quant_fn *matmul_quant_f32; /**< 4/8-bit weights, fp32 math */
  kiln_matmul_fn *matmul_packed_f32;      /**< B in KILN_PANEL_COLUMNS panels */
  kiln_matmul_quant_fn *matmul_quant_a8_f32; /**< A rounded to int8 blocks */
} kiln_kernels;

/** The entry point model.so exports. Returns 0 on success. */
typedef int (*kiln_model_step_fn)(const kiln_step_args *step,
                                  const kiln_kernels *kernels);

#ifdef __cplusplus
}
#endif

#endif /* KILN_MODEL_ABI_H */
