//===- kernels.h - the runtime's CPU micro-kernels --------------*- C++ -*-===//
//
// The kiln_kernels table that the runtime hands to model.so on every step
// (contract: runtime/include/kiln/model_abi.h), and the C++ entry points
// behind it. Each kernel exists for several instruction sets; the table's
// functions use the best one this CPU has, chosen once per process:
//
//   avx512    AVX-512F (needs OS support for the ZMM state)
//   avx2      AVX2 + FMA
//   portable  plain C++ the compiler vectorizes for the baseline target
//
// Setting KILN_KERNELS to one of these names before the first call forces
// it (when the CPU supports it; otherwise the best one is used). The x86
// paths are compiled with per-function target attributes, so the library
// runs on any x86-64.
//
// The kernels trust their arguments: model.so is generated code and the
// compiler checked shapes. They never throw, allocate or fail.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_KERNELS_KERNELS_H
#define KILN_RUNTIME_KERNELS_KERNELS_H

#include "kiln/model_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/// The CPU kernel table (abi_version KILN_MODEL_ABI_VERSION). Static: never
/// freed, valid for the process.
const kiln_kernels *kiln_cpu_kernels(void);

/// The instruction set the table's kernels use: "avx512", "avx2" or
/// "portable". Never NULL.
const char *kiln_cpu_kernels_isa(void);

/// kiln_kernels::matmul_f32. `pool` is a kiln::ThreadPool * or NULL (run on
/// the calling thread).
kiln_matmul_fn kiln_matmul_f32;

/// kiln_kernels::matmul_bt_f32 (B stored [N][K]). `pool` as above.
kiln_matmul_fn kiln_matmul_bt_f32;

/// kiln_kernels::matmul_packed_f32 (B in KILN_PANEL_COLUMNS-column panels,
/// model_abi.h). `pool` as above.
kiln_matmul_fn kiln_matmul_packed_f32;

/// kiln_kernels::matmul_quant_f32 (W stored [N][K] as 4- or 8-bit integers
/// with per-group scales and zero points). `pool` as above.
kiln_matmul_quant_fn kiln_matmul_quant_f32;

/// kiln_kernels::matmul_quant_a8_f32: the same product computed as
/// onnxruntime's MatMulNBits computes it at accuracy_level 4 (MLAS
/// SQNBIT_CompInt8): each row of A quantized to int8 per block of `group` k,
/// integer dot products, fp32 block sums (see matmul_quant_a8.cpp for the
/// formulas). `pool` as above.
kiln_matmul_quant_fn kiln_matmul_quant_a8_f32;

/// kiln_kernels::attention_paged_f32. step->pool is a kiln::ThreadPool * or
/// NULL. Needs q_heads to be a multiple of kv_heads and, for every token,
/// the blocks of positions 0 .. positions[t] in its sequence's block table.
kiln_attention_paged_fn kiln_attention_paged_f32;

#ifdef __cplusplus
} // extern "C"

namespace kiln {
class ThreadPool;

namespace kernels {

/// An implementation of the kernels, from the most portable up.
enum class Isa { Portable, Avx2, Avx512 };

/// "portable", "avx2", "avx512".
const char *isaName(Isa isa);
/// Whether this CPU (and OS) can run `isa`.
bool isaSupported(Isa isa);
/// The best supported Isa, or the one `override` names if it is supported
/// (`override` as KILN_KERNELS spells it; NULL or unknown is ignored).
Isa selectIsa(const char *override);
/// selectIsa(getenv("KILN_KERNELS")), computed on the first call.
Isa activeIsa();

/// kiln_matmul_f32 with a given Isa, which must be supported.
void matmulF32(Isa isa, ThreadPool *pool, const float *a, int64_t lda,
               const float *b, float *c, int64_t ldc, int64_t m, int64_t n,
               int64_t k) noexcept;

/// kiln_matmul_packed_f32 with a given Isa, which must be supported.
void matmulPackedF32(Isa isa, ThreadPool *pool, const float *a, int64_t lda,
                     const float *b, float *c, int64_t ldc, int64_t m,
                     int64_t n, int64_t k) noexcept;

/// kiln_matmul_bt_f32 with a given Isa, which must be supported.
void matmulBtF32(Isa isa, ThreadPool *pool, const float *a, int64_t lda,
                 const float *b, float *c, int64_t ldc, int64_t m, int64_t n,
                 int64_t k) noexcept;

/// kiln_matmul_quant_f32 with a given Isa, which must be supported.
void matmulQuantF32(Isa isa, ThreadPool *pool, const float *a, int64_t lda,
                    const uint8_t *b, const float *scales,
                    const uint8_t *zeroPoints, float *c, int64_t ldc, int64_t m,
                    int64_t n, int64_t k, int64_t group, int64_t bits) noexcept;

/// The instructions matmulQuantA8F32 takes its int8 dot products with, from
/// the most portable up. An Isa allows several on some CPUs (avx512 without
/// VNNI runs avx2 code); naming one lets tests reach every path.
enum class Int8Dot {
  Portable,  ///< plain C++
  Avx2,      ///< vpmaddubsw + vpmaddwd (8-bit weights: plain C++ for AVX2)
  AvxVnni,   ///< VEX vpdpbusd on ymm
  Avx512Vnni ///< vpdpbusd on zmm (AVX-512 F/BW/DQ/VL/VNNI)
};

/// "portable", "avx2", "avxvnni", "avx512vnni".
const char *int8DotName(Int8Dot dot);
/// Whether this CPU (and OS) can run `dot`.
bool int8DotSupported(Int8Dot dot);
/// The best Int8Dot that kernels for `isa` use on this CPU.
Int8Dot int8DotFor(Isa isa);

/// kiln_matmul_quant_a8_f32 with a given Isa, which must be supported.
void matmulQuantA8F32(Isa isa, ThreadPool *pool, const float *a, int64_t lda,
                      const uint8_t *b, const float *scales,
                      const uint8_t *zeroPoints, float *c, int64_t ldc,
                      int64_t m, int64_t n, int64_t k, int64_t group,
                      int64_t bits) noexcept;
/// The same with a given Int8Dot, which must be supported. Every Int8Dot
/// gives the same A quantization; sums differ only by fp32 rounding.
void matmulQuantA8F32(Int8Dot dot, ThreadPool *pool, const float *a,
                      int64_t lda, const uint8_t *b, const float *scales,
                      const uint8_t *zeroPoints, float *c, int64_t ldc,
                      int64_t m, int64_t n, int64_t k, int64_t group,
                      int64_t bits) noexcept;

/// The arguments of attention_paged_f32, as one struct.
struct AttentionArgs {
  const kiln_step_args *step;
  int64_t layer, layers, qHeads, kvHeads, headDim, blockSize;
  float scale, softcap;
  int64_t window; ///< keys positions[t] - window .. positions[t]; -1: all
  const float *q;
  int64_t qStrideHead, qStrideToken;
  const float *k;
  int64_t kStrideHead, kStrideToken;
  const float *v;
  int64_t vStrideHead, vStrideToken;
  float *out;
  int64_t outStrideHead, outStrideToken;
  /// Rotary embedding of q and k (model_abi.h); rotCos null: none.
  const float *rotCos = nullptr, *rotSin = nullptr;
  int64_t rotStride = 0, rotaryDim = 0, rotFlags = 0;
};

/// kiln_attention_paged_f32 with a given Isa, which must be supported.
void attentionPagedF32(Isa isa, const AttentionArgs &args) noexcept;

} // namespace kernels
} // namespace kiln
#endif // __cplusplus

#endif // KILN_RUNTIME_KERNELS_KERNELS_H
