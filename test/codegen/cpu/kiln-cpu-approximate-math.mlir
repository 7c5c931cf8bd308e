// RUN: kiln-opt %s --kiln-cpu-approximate-math | FileCheck %s

// f32 exp, log, tanh and erf become arithmetic; other types and other math
// ops are left to libm / LLVM.
// CHECK-LABEL: func.func @f32
// CHECK-NOT: math.exp
// CHECK-NOT: math.log
// CHECK-NOT: math.tanh
// CHECK-NOT: math.erf
// CHECK: math.sqrt
// CHECK-NOT: math.exp
// CHECK: return
func.func @f32(%x: f32) -> (f32, f32, f32, f32, f32) {
  %e = math.exp %x : f32
  %l = math.log %x : f32
  %t = math.tanh %x : f32
  %r = math.erf %x : f32
  %s = math.sqrt %x : f32
  return %e, %l, %t, %r, %s : f32, f32, f32, f32, f32
}

// CHECK-LABEL: func.func @f64
// CHECK: math.exp %{{.+}} : f64
// CHECK: math.tanh %{{.+}} : f64
func.func @f64(%x: f64) -> (f64, f64) {
  %e = math.exp %x : f64
  %t = math.tanh %x : f64
  return %e, %t : f64, f64
}
