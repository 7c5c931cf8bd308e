//===- kernels.cpp - choosing an Isa, and the kernel table ----------------===//

#include "runtime/src/kernels/kernels.h"

#include <cstdlib>
#include <cstring>

namespace kiln::kernels {

const char *isaName(Isa isa) {
  switch (isa) {
  case Isa::Avx512:
    return "avx512";
  case Isa::Avx2:
    return "avx2";
  case Isa::Portable:
    break;
  }
  return "portable";
}

bool isaSupported(Isa isa) {
  switch (isa) {
  case Isa::Portable:
    return true;
#if defined(__x86_64__) || defined(__i386__)
  // __builtin_cpu_supports also checks that the OS saves the wider
  // registers (XCR0), not only the CPUID bits.
  case Isa::Avx2:
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  case Isa::Avx512:
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  case Isa::Avx2:
  case Isa::Avx512:
    return false;
#endif
  }
  return false;
}

Isa selectIsa(const char *override) {
  const Isa all[] = {Isa::Portable, Isa::Avx2, Isa::Avx512};
  if (override)
    for (Isa isa : all)
      if (std::strcmp(override, isaName(isa)) == 0 && isaSupported(isa))
        return isa;
  Isa best = Isa::Portable;
  for (Isa isa : all)
    if (isaSupported(isa))
      best = isa;
  return best;
}

Isa activeIsa() {
  static const Isa chosen = selectIsa(std::getenv("KILN_KERNELS"));
  return chosen;
}

} // namespace kiln::kernels

using namespace kiln::kernels;

extern "C" const kiln_kernels *kiln_cpu_kernels(void) {
  static const kiln_kernels table = {
      KILN_MODEL_ABI_VERSION,   sizeof(kiln_kernels),     kiln_matmul_f32,
      kiln_attention_paged_f32, kiln_matmul_bt_f32,       kiln_matmul_quant_f32,
      kiln_matmul_packed_f32,   kiln_matmul_quant_a8_f32,
  };
  return &table;
}

extern "C" const char *kiln_cpu_kernels_isa(void) {
  return isaName(activeIsa());
}
