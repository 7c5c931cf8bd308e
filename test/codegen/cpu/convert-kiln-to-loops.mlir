// RUN: kiln-opt %s --split-input-file --convert-kiln-to-loops --verify-diagnostics | FileCheck %s
// RUN: kiln-opt %s --split-input-file --kiln-cpu-pipeline --verify-diagnostics | FileCheck %s --check-prefix=LLVM

// The step function of a one-layer model (what --kiln-insert-kv-cache
// makes of test/passes/kiln-insert-kv-cache.mlir's first case).
// CHECK-LABEL: func.func @kiln_model_step(%{{.+}}: !llvm.ptr, %{{.+}}: !llvm.ptr) -> i32
// Weights are views of the weights file at their assigned offsets.
// CHECK-DAG: %[[W:.+]] = memref.view %{{.+}}[%c0{{.*}}][] : memref<?xi8> to memref<16x8xf32>
// The attention kernel reads the gather's [1, tokens, 2, 4] result in
// place through the transpose (a strided view: head stride 4, token
// stride 8), and writes its output as the transpose after it wants it
// ([1, tokens, 2, 4]: head stride 4, token stride 8), so neither
// transpose copies. No rotary embedding: null cos/sin, rotary_dim 0.
// CHECK: call @[[GATHER:__kiln_gather_[0-9]+]](%[[W]]
// CHECK-NOT: call @__kiln_transpose
// The output: the transpose's buffer, after the gather's 8 KiB.
// CHECK: %[[OOFS:.+]] = llvm.mlir.constant(8192 : i64) : i64
// CHECK-NEXT: %[[O:.+]] = llvm.getelementptr %{{.+}}[%[[OOFS]]]
// CHECK: %[[NULL:.+]] = llvm.mlir.zero : !llvm.ptr
// Paged attention: the kernel table's entry 3, with the step arguments.
// CHECK: llvm.getelementptr %{{.+}}[0, 3]
// CHECK: llvm.call %{{.+}}(%arg0, {{.*}}, %[[O]], %{{[0-9]+}}, %{{[0-9]+}}, %[[NULL]], %[[NULL]], {{.*}}) : !llvm.ptr, (!llvm.ptr, i64, i64, i64, i64, i64, i64, f32, f32, i64, !llvm.ptr, i64, i64, !llvm.ptr, i64, i64, !llvm.ptr, i64, i64, !llvm.ptr, i64, i64, !llvm.ptr, !llvm.ptr, i64, i64, i64) -> ()
// CHECK-NOT: call @__kiln_transpose
// The logits matmul: entry 2 (matmul_f32), writing into the caller's logits.
// CHECK: llvm.getelementptr %{{.+}}[0, 2]
// CHECK: llvm.call %{{.+}} : !llvm.ptr, (!llvm.ptr, !llvm.ptr, i64, !llvm.ptr, !llvm.ptr, i64, i64, i64, i64) -> ()
// CHECK: func.func private @[[GATHER]](%{{.+}}: memref<16x8xf32>, %{{.+}}: memref<1x?xi64>, %{{.+}}: memref<1x?x8xf32>) attributes {no_inline}
// CHECK: linalg.generic
// CHECK: llvm.mlir.global external constant @kiln_model_abi_version(6 : i64)
// Two [256 tokens x 8] f32 buffers live at once: 2 x 8 KiB.
// CHECK: llvm.mlir.global external constant @kiln_model_arena_bytes(16384 : i64)
// CHECK: llvm.mlir.global external constant @kiln_model_max_tokens(256 : i64)
// CHECK-NOT: = kiln.
// LLVM-LABEL: llvm.func @kiln_model_step
// LLVM-NOT: builtin.unrealized_conversion_cast
module {
  kiln.global @emb : tensor<16x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>]
  kiln.global @head : tensor<8x16xf32> [#kiln.blob<"w.bin", offset = 512, size = 512>]
  func.func @main(%arg0: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.name = "input_ids", kiln.step_input = "token_ids"}, %arg1: !kiln.kv_cache<layers = 1, heads = 2, head_dim = 4, block = 16, f32> {kiln.name = "kv_cache", kiln.step_input = "kv_cache"}, %arg2: tensor<?xi64, #kiln.dims<[logit_rows]>> {kiln.name = "logit_rows", kiln.step_input = "logit_rows"}) -> tensor<1x?x16xf32, #kiln.dims<[logit_rows]>> {
    %0 = kiln.weight @emb : tensor<16x8xf32>
    %1 = kiln.gather %0, %arg0 {axis = 0 : i64} : (tensor<16x8xf32>, tensor<1x?xi64, #kiln.dims<[tokens]>>) -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %2 = kiln.reshape %1 : tensor<1x?x8xf32, #kiln.dims<[tokens]>> -> tensor<1x?x2x4xf32, #kiln.dims<[tokens]>>
    %3 = kiln.transpose %2 {perm = array<i64: 0, 2, 1, 3>} : tensor<1x?x2x4xf32, #kiln.dims<[tokens]>> -> tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>
    %4 = kiln.paged_attention %arg1, %3, %3, %3 {layer = 0 : i64, scale = 5.000000e-01 : f32} : !kiln.kv_cache<layers = 1, heads = 2, head_dim = 4, block = 16, f32>, tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>, tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>, tensor<1x2x?x4xf32, #kiln.dims<[tokens]>> -> tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>
    %5 = kiln.transpose %4 {perm = array<i64: 0, 2, 1, 3>} : tensor<1x2x?x4xf32, #kiln.dims<[tokens]>> -> tensor<1x?x2x4xf32, #kiln.dims<[tokens]>>
    %6 = kiln.reshape %5 : tensor<1x?x2x4xf32, #kiln.dims<[tokens]>> -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %7 = kiln.weight @head : tensor<8x16xf32>
    %8 = kiln.gather %6, %arg2 {axis = 1 : i64} : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<?xi64, #kiln.dims<[logit_rows]>>) -> tensor<1x?x8xf32, #kiln.dims<[logit_rows]>>
    %9 = kiln.matmul %8, %7 : (tensor<1x?x8xf32, #kiln.dims<[logit_rows]>>, tensor<8x16xf32>) -> tensor<1x?x16xf32, #kiln.dims<[logit_rows]>>
    return %9 : tensor<1x?x16xf32, #kiln.dims<[logit_rows]>>
  }
}

// -----

// Weights kiln-cpu-pack-weights laid out in panels: their matmuls call
// matmul_packed_f32 (kernel table entry 6), and each takes whole 32-column
// panels in the weights file (8 x 32 floats = 1024 bytes, not 512).
// CHECK-LABEL: func.func @kiln_model_step
// CHECK: %[[WF:.+]] = llvm.getelementptr %arg0[0, 13]
// CHECK-NEXT: %[[WEIGHTS:.+]] = llvm.load %[[WF]]
// CHECK: %[[W1:.+]] = llvm.getelementptr %[[WEIGHTS]][
// CHECK: llvm.getelementptr %{{.+}}[0, 6]
// CHECK: llvm.call %{{.+}}(%{{.+}}, %{{.+}}, %{{.+}}, %[[W1]],
// CHECK: llvm.mlir.constant(1024 : i64) : i64
// CHECK-NEXT: %[[W2:.+]] = llvm.getelementptr %[[WEIGHTS]][
// CHECK: llvm.getelementptr %{{.+}}[0, 6]
// CHECK: llvm.call %{{.+}}(%{{.+}}, %{{.+}}, %{{.+}}, %[[W2]],
// CHECK-NOT: llvm.getelementptr %{{.+}}[0, 2]
// CHECK: func.func private
module {
  kiln.global @head : tensor<8x16xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>] {kiln.layout = "panels"}
  kiln.global @after : tensor<8x16xf32> [#kiln.blob<"w.bin", offset = 512, size = 512>] {kiln.layout = "panels"}
  func.func @main(%ids: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.step_input = "token_ids"}, %rows: tensor<?xi64, #kiln.dims<[logit_rows]>> {kiln.step_input = "logit_rows"}) -> tensor<1x?x16xf32, #kiln.dims<[logit_rows]>> {
    %f = kiln.cast %ids : tensor<1x?xi64, #kiln.dims<[tokens]>> -> tensor<1x?xf32, #kiln.dims<[tokens]>>
    %r = kiln.reshape %f : tensor<1x?xf32, #kiln.dims<[tokens]>> -> tensor<1x?x1xf32, #kiln.dims<[tokens]>>
    %x = kiln.expand %r : (tensor<1x?x1xf32, #kiln.dims<[tokens]>>) -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %g = kiln.gather %x, %rows {axis = 1 : i64} : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<?xi64, #kiln.dims<[logit_rows]>>) -> tensor<1x?x8xf32, #kiln.dims<[logit_rows]>>
    %0 = kiln.weight @head : tensor<8x16xf32>
    %1 = kiln.matmul %g, %0 : (tensor<1x?x8xf32, #kiln.dims<[logit_rows]>>, tensor<8x16xf32>) -> tensor<1x?x16xf32, #kiln.dims<[logit_rows]>>
    %2 = kiln.weight @after : tensor<8x16xf32>
    %3 = kiln.matmul %g, %2 : (tensor<1x?x8xf32, #kiln.dims<[logit_rows]>>, tensor<8x16xf32>) -> tensor<1x?x16xf32, #kiln.dims<[logit_rows]>>
    %4 = kiln.add %1, %3 : (tensor<1x?x16xf32, #kiln.dims<[logit_rows]>>, tensor<1x?x16xf32, #kiln.dims<[logit_rows]>>) -> tensor<1x?x16xf32, #kiln.dims<[logit_rows]>>
    return %4 : tensor<1x?x16xf32, #kiln.dims<[logit_rows]>>
  }
}

// -----

// Ops that differ only in their buffers share one outlined function.
// CHECK-LABEL: func.func @kiln_model_step
// CHECK: call @[[ADD:__kiln_add_[0-9]+]](
// CHECK: call @[[ADD]](
// CHECK-COUNT-1: func.func private @__kiln_add_
module {
  func.func @main(%ids: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.step_input = "token_ids"}, %rows: tensor<?xi64, #kiln.dims<[logit_rows]>> {kiln.step_input = "logit_rows"}) -> tensor<1x?x8xf32, #kiln.dims<[logit_rows]>> {
    %f = kiln.cast %ids : tensor<1x?xi64, #kiln.dims<[tokens]>> -> tensor<1x?xf32, #kiln.dims<[tokens]>>
    %a = kiln.add %f, %f : (tensor<1x?xf32, #kiln.dims<[tokens]>>, tensor<1x?xf32, #kiln.dims<[tokens]>>) -> tensor<1x?xf32, #kiln.dims<[tokens]>>
    %b = kiln.add %a, %a : (tensor<1x?xf32, #kiln.dims<[tokens]>>, tensor<1x?xf32, #kiln.dims<[tokens]>>) -> tensor<1x?xf32, #kiln.dims<[tokens]>>
    %r = kiln.reshape %b : tensor<1x?xf32, #kiln.dims<[tokens]>> -> tensor<1x?x1xf32, #kiln.dims<[tokens]>>
    %x = kiln.expand %r : (tensor<1x?x1xf32, #kiln.dims<[tokens]>>) -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %g = kiln.gather %x, %rows {axis = 1 : i64} : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<?xi64, #kiln.dims<[logit_rows]>>) -> tensor<1x?x8xf32, #kiln.dims<[logit_rows]>>
    return %g : tensor<1x?x8xf32, #kiln.dims<[logit_rows]>>
  }
}

// -----

// An elementwise chain is one loop: a producer with one use, by an
// elementwise op of its shape, is computed inside that op's loop (neg and
// exp inside the mul's, which reads %f once), and needs no buffer (one
// [256] buffer for the cast, one for the product: 2 KiB).
// CHECK-LABEL: func.func @kiln_model_step
// CHECK: call @__kiln_cast_
// CHECK-NOT: call @__kiln_neg_
// CHECK-NOT: call @__kiln_exp_
// CHECK: call @[[MUL:__kiln_mul_[0-9]+]](%{{[^,]+}}, %{{[^,]+}}) : (memref<1x?xf32>, memref<1x?xf32>) -> ()
// CHECK: func.func private @[[MUL]](%{{.+}}: memref<1x?xf32>, %{{.+}}: memref<1x?xf32>)
// CHECK: linalg.generic
// CHECK: arith.negf
// CHECK: math.exp
// CHECK: arith.mulf
// CHECK: linalg.yield
// CHECK: @kiln_model_arena_bytes(2048 : i64)
module {
  func.func @main(%ids: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.step_input = "token_ids"}, %rows: tensor<?xi64, #kiln.dims<[logit_rows]>> {kiln.step_input = "logit_rows"}) -> tensor<1x?xf32, #kiln.dims<[logit_rows]>> {
    %f = kiln.cast %ids : tensor<1x?xi64, #kiln.dims<[tokens]>> -> tensor<1x?xf32, #kiln.dims<[tokens]>>
    %n = kiln.neg %f : tensor<1x?xf32, #kiln.dims<[tokens]>>
    %e = kiln.exp %n : tensor<1x?xf32, #kiln.dims<[tokens]>>
    %m = kiln.mul %e, %f : (tensor<1x?xf32, #kiln.dims<[tokens]>>, tensor<1x?xf32, #kiln.dims<[tokens]>>) -> tensor<1x?xf32, #kiln.dims<[tokens]>>
    %g = kiln.gather %m, %rows {axis = 1 : i64} : (tensor<1x?xf32, #kiln.dims<[tokens]>>, tensor<?xi64, #kiln.dims<[logit_rows]>>) -> tensor<1x?xf32, #kiln.dims<[logit_rows]>>
    return %g : tensor<1x?xf32, #kiln.dims<[logit_rows]>>
  }
}

// -----

module {
  func.func @main(%ids: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.step_input = "token_ids"}, %rows: tensor<?xi64, #kiln.dims<[logit_rows]>> {kiln.step_input = "logit_rows"}) -> tensor<1x?xf32, #kiln.dims<[logit_rows]>> {
    %f = kiln.cast %ids : tensor<1x?xi64, #kiln.dims<[tokens]>> -> tensor<1x?xf32, #kiln.dims<[tokens]>>
    %reps = kiln.constant dense<[1, 1]> : tensor<2xi64>
    // expected-error @+1 {{'kiln.tile' is not supported by the CPU backend yet}}
    %s = kiln.tile %f, %reps : (tensor<1x?xf32, #kiln.dims<[tokens]>>, tensor<2xi64>) -> tensor<1x?xf32, #kiln.dims<[tokens]>>
    %g = kiln.gather %s, %rows {axis = 1 : i64} : (tensor<1x?xf32, #kiln.dims<[tokens]>>, tensor<?xi64, #kiln.dims<[logit_rows]>>) -> tensor<1x?xf32, #kiln.dims<[logit_rows]>>
    return %g : tensor<1x?xf32, #kiln.dims<[logit_rows]>>
  }
}

// -----

// kiln.attention runs on static shapes only; in a step function every
// attention must have become kiln.paged_attention.
module {
  func.func @main(%ids: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.step_input = "token_ids"}, %rows: tensor<?xi64, #kiln.dims<[logit_rows]>> {kiln.step_input = "logit_rows"}) -> tensor<1x?xf32, #kiln.dims<[logit_rows]>> {
    %f = kiln.cast %ids : tensor<1x?xi64, #kiln.dims<[tokens]>> -> tensor<1x?xf32, #kiln.dims<[tokens]>>
    %r = kiln.reshape %f : tensor<1x?xf32, #kiln.dims<[tokens]>> -> tensor<1x1x?x1xf32, #kiln.dims<[tokens]>>
    // expected-error @+1 {{the CPU backend runs 'kiln.attention' on static shapes only (graph mode), got 'tensor<1x1x?x1xf32, #kiln.dims<[tokens]>>'; a model's attention must become kiln.paged_attention (--kiln-insert-kv-cache)}}
    %a = kiln.attention %r, %r, %r {causal, scale = 1.0 : f32} : (tensor<1x1x?x1xf32, #kiln.dims<[tokens]>>, tensor<1x1x?x1xf32, #kiln.dims<[tokens]>>, tensor<1x1x?x1xf32, #kiln.dims<[tokens]>>) -> tensor<1x1x?x1xf32, #kiln.dims<[tokens]>>
    %b = kiln.reshape %a : tensor<1x1x?x1xf32, #kiln.dims<[tokens]>> -> tensor<1x?xf32, #kiln.dims<[tokens]>>
    %g = kiln.gather %b, %rows {axis = 1 : i64} : (tensor<1x?xf32, #kiln.dims<[tokens]>>, tensor<?xi64, #kiln.dims<[logit_rows]>>) -> tensor<1x?xf32, #kiln.dims<[logit_rows]>>
    return %g : tensor<1x?xf32, #kiln.dims<[logit_rows]>>
  }
}

// -----

module {
  // expected-error @+1 {{argument #0 is not a step input; run --kiln-insert-kv-cache first}}
  func.func @main(%x: tensor<1x?xf32, #kiln.dims<[tokens]>>) -> tensor<1x?xf32, #kiln.dims<[tokens]>> {
    %y = kiln.neg %x : tensor<1x?xf32, #kiln.dims<[tokens]>>
    return %y : tensor<1x?xf32, #kiln.dims<[tokens]>>
  }
}

// -----

// A 4-bit weight read as matmul(x, transpose(dequantize(w))): entry 5
// (matmul_quant_f32) reads the packed data at the weight's offset and the
// scales right after it (16x8 nibbles = 64 bytes); implied zero points are
// a null pointer. Neither the dequantize nor the transpose gets a buffer.
// CHECK-LABEL: func.func @kiln_model_step
// CHECK-NOT: __kiln_dequantize
// CHECK-NOT: __kiln_transpose
// CHECK: %[[NULL:.+]] = llvm.mlir.zero : !llvm.ptr
// CHECK: llvm.getelementptr %{{.+}}[0, 5]
// CHECK: %[[C64:.+]] = llvm.mlir.constant(64 : i64) : i64
// CHECK: %[[SCALES:.+]] = llvm.getelementptr %{{.+}}[%[[C64]]] : (!llvm.ptr, i64) -> !llvm.ptr, i8
// CHECK: llvm.call %{{.+}}(%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %[[SCALES]], %[[NULL]], {{.*}}) : !llvm.ptr, (!llvm.ptr, !llvm.ptr, i64, !llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, i64, i64, i64, i64, i64, i64) -> ()
// Only the two gathers' [256 x 8] f32 buffers are planned: 16 KiB.
// CHECK: @kiln_model_arena_bytes(16384 : i64)
module {
  kiln.global @emb : tensor<16x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>]
  kiln.global @head : !kiln.qtensor<16x8, #kiln.quant<u4, group = 4, axis = 1, scale = f32, zero_point = mid>> [#kiln.blob<"w.bin", offset = 512, size = 64>, #kiln.blob<"w.bin", offset = 576, size = 128>]
  func.func @main(%ids: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.step_input = "token_ids"}, %rows: tensor<?xi64, #kiln.dims<[logit_rows]>> {kiln.step_input = "logit_rows"}) -> tensor<1x?x16xf32, #kiln.dims<[logit_rows]>> {
    %0 = kiln.weight @emb : tensor<16x8xf32>
    %1 = kiln.gather %0, %ids {axis = 0 : i64} : (tensor<16x8xf32>, tensor<1x?xi64, #kiln.dims<[tokens]>>) -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %2 = kiln.gather %1, %rows {axis = 1 : i64} : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<?xi64, #kiln.dims<[logit_rows]>>) -> tensor<1x?x8xf32, #kiln.dims<[logit_rows]>>
    %w = kiln.weight @head : !kiln.qtensor<16x8, #kiln.quant<u4, group = 4, axis = 1, scale = f32, zero_point = mid>>
    %d = kiln.dequantize %w : !kiln.qtensor<16x8, #kiln.quant<u4, group = 4, axis = 1, scale = f32, zero_point = mid>> -> tensor<16x8xf32>
    %t = kiln.transpose %d {perm = array<i64: 1, 0>} : tensor<16x8xf32> -> tensor<8x16xf32>
    %y = kiln.matmul %2, %t : (tensor<1x?x8xf32, #kiln.dims<[logit_rows]>>, tensor<8x16xf32>) -> tensor<1x?x16xf32, #kiln.dims<[logit_rows]>>
    return %y : tensor<1x?x16xf32, #kiln.dims<[logit_rows]>>
  }
}

// -----

// 8-bit weights with stored zero points: data (16x8 bytes = 128), then
// scales (16 x 2 groups x 4 bytes = 128), then zero points at 256; the
// kernel gets group 4 and bits 8.
// CHECK-LABEL: func.func @kiln_model_step
// CHECK-DAG: %[[C128:.+]] = llvm.mlir.constant(128 : i64) : i64
// CHECK-DAG: %[[SCALES:.+]] = llvm.getelementptr %{{.+}}[%[[C128]]] : (!llvm.ptr, i64) -> !llvm.ptr, i8
// CHECK-DAG: %[[C256:.+]] = llvm.mlir.constant(256 : i64) : i64
// CHECK-DAG: %[[ZP:.+]] = llvm.getelementptr %{{.+}}[%[[C256]]] : (!llvm.ptr, i64) -> !llvm.ptr, i8
// CHECK-DAG: llvm.getelementptr %{{.+}}[0, 5]
// CHECK: %[[G:.+]] = llvm.mlir.constant(4 : i64) : i64
// CHECK: %[[B:.+]] = llvm.mlir.constant(8 : i64) : i64
// CHECK: llvm.call %{{.+}}(%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %[[SCALES]], %[[ZP]], %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %[[G]], %[[B]])
module {
  kiln.global @emb : tensor<16x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>]
  kiln.global @head : !kiln.qtensor<16x8, #kiln.quant<u8, group = 4, axis = 1, scale = f32, zero_point = int>> [#kiln.blob<"w.bin", offset = 512, size = 128>, #kiln.blob<"w.bin", offset = 640, size = 128>, #kiln.blob<"w.bin", offset = 768, size = 32>]
  func.func @main(%ids: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.step_input = "token_ids"}, %rows: tensor<?xi64, #kiln.dims<[logit_rows]>> {kiln.step_input = "logit_rows"}) -> tensor<1x?x16xf32, #kiln.dims<[logit_rows]>> {
    %0 = kiln.weight @emb : tensor<16x8xf32>
    %1 = kiln.gather %0, %ids {axis = 0 : i64} : (tensor<16x8xf32>, tensor<1x?xi64, #kiln.dims<[tokens]>>) -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %2 = kiln.gather %1, %rows {axis = 1 : i64} : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<?xi64, #kiln.dims<[logit_rows]>>) -> tensor<1x?x8xf32, #kiln.dims<[logit_rows]>>
    %w = kiln.weight @head : !kiln.qtensor<16x8, #kiln.quant<u8, group = 4, axis = 1, scale = f32, zero_point = int>>
    %d = kiln.dequantize %w : !kiln.qtensor<16x8, #kiln.quant<u8, group = 4, axis = 1, scale = f32, zero_point = int>> -> tensor<16x8xf32>
    %t = kiln.transpose %d {perm = array<i64: 1, 0>} : tensor<16x8xf32> -> tensor<8x16xf32>
    %y = kiln.matmul %2, %t : (tensor<1x?x8xf32, #kiln.dims<[logit_rows]>>, tensor<8x16xf32>) -> tensor<1x?x16xf32, #kiln.dims<[logit_rows]>>
    return %y : tensor<1x?x16xf32, #kiln.dims<[logit_rows]>>
  }
}

// -----

// A quantized table gathered by rows (an int4 embedding) is unpacked in
// the gather's loop straight from the weights file: bytes, nibble shift,
// implied zero point 8, scale; no dequantized copy.
// CHECK-LABEL: func.func @kiln_model_step
// CHECK-NOT: __kiln_dequantize
// CHECK: linalg.generic
// CHECK: memref.load %{{.+}}[%{{.+}}] : memref<?xi8>
// CHECK: arith.shrui
// CHECK: arith.constant 8 : i32
// CHECK: memref.load %{{.+}} : memref<16x2xf32>
module {
  kiln.global @emb : !kiln.qtensor<16x8, #kiln.quant<u4, group = 4, axis = 1, scale = f32, zero_point = mid>> [#kiln.blob<"w.bin", offset = 0, size = 64>, #kiln.blob<"w.bin", offset = 64, size = 128>]
  func.func @main(%ids: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.step_input = "token_ids"}, %rows: tensor<?xi64, #kiln.dims<[logit_rows]>> {kiln.step_input = "logit_rows"}) -> tensor<1x?x8xf32, #kiln.dims<[logit_rows]>> {
    %w = kiln.weight @emb : !kiln.qtensor<16x8, #kiln.quant<u4, group = 4, axis = 1, scale = f32, zero_point = mid>>
    %d = kiln.dequantize %w : !kiln.qtensor<16x8, #kiln.quant<u4, group = 4, axis = 1, scale = f32, zero_point = mid>> -> tensor<16x8xf32>
    %1 = kiln.gather %d, %ids {axis = 0 : i64} : (tensor<16x8xf32>, tensor<1x?xi64, #kiln.dims<[tokens]>>) -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %2 = kiln.gather %1, %rows {axis = 1 : i64} : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<?xi64, #kiln.dims<[logit_rows]>>) -> tensor<1x?x8xf32, #kiln.dims<[logit_rows]>>
    return %2 : tensor<1x?x8xf32, #kiln.dims<[logit_rows]>>
  }
}

// -----

// A quantized weight read any other way has no lowering yet.
module {
  kiln.global @emb : !kiln.qtensor<16x8, #kiln.quant<u4, group = 4, axis = 1, scale = f32, zero_point = mid>> [#kiln.blob<"w.bin", offset = 0, size = 64>, #kiln.blob<"w.bin", offset = 64, size = 128>]
  func.func @main(%ids: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.step_input = "token_ids"}, %rows: tensor<?xi64, #kiln.dims<[logit_rows]>> {kiln.step_input = "logit_rows"}) -> tensor<16x8xf32> {
    %w = kiln.weight @emb : !kiln.qtensor<16x8, #kiln.quant<u4, group = 4, axis = 1, scale = f32, zero_point = mid>>
    // expected-error @+1 {{the CPU backend reads quantized weights only as the right-hand side of a matmul}}
    %d = kiln.dequantize %w : !kiln.qtensor<16x8, #kiln.quant<u4, group = 4, axis = 1, scale = f32, zero_point = mid>> -> tensor<16x8xf32>
    %n = kiln.neg %d : tensor<16x8xf32>
    return %n : tensor<16x8xf32>
  }
}

// -----

// Rotary embedding: one loop nest over [batch, heads, tokens, head_dim]
// reading the positions; each element loads itself, its partner and the
// cos/sin entry of its position.
// CHECK-LABEL: func.func @kiln_model_step
// The transpose before it is read in place (a strided view).
// CHECK-NOT: call @__kiln_transpose
// CHECK: call @[[ROT:__kiln_rotary_[0-9]+]](
// CHECK: func.func private @[[ROT]](%{{.+}}: memref<1x2x?x4xf32, strided<[?, 4, 8, 1]>>, %{{.+}}: memref<8x2xf32>, %{{.+}}: memref<8x2xf32>, %{{.+}}: memref<1x?xi64>, %{{.+}}: memref<1x2x?x4xf32>)
// CHECK: linalg.generic
// CHECK-COUNT-4: memref.load
// CHECK: arith.select
module {
  kiln.global @emb : tensor<16x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>]
  kiln.global @cos : tensor<8x2xf32> [#kiln.blob<"w.bin", offset = 512, size = 64>]
  kiln.global @sin : tensor<8x2xf32> [#kiln.blob<"w.bin", offset = 576, size = 64>]
  func.func @main(%ids: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.step_input = "token_ids"}, %pos: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.step_input = "positions"}, %rows: tensor<?xi64, #kiln.dims<[logit_rows]>> {kiln.step_input = "logit_rows"}) -> tensor<1x?x8xf32, #kiln.dims<[logit_rows]>> {
    %0 = kiln.weight @emb : tensor<16x8xf32>
    %c = kiln.weight @cos : tensor<8x2xf32>
    %s = kiln.weight @sin : tensor<8x2xf32>
    %1 = kiln.gather %0, %ids {axis = 0 : i64} : (tensor<16x8xf32>, tensor<1x?xi64, #kiln.dims<[tokens]>>) -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %2 = kiln.reshape %1 : tensor<1x?x8xf32, #kiln.dims<[tokens]>> -> tensor<1x?x2x4xf32, #kiln.dims<[tokens]>>
    %3 = kiln.transpose %2 {perm = array<i64: 0, 2, 1, 3>} : tensor<1x?x2x4xf32, #kiln.dims<[tokens]>> -> tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>
    %4 = kiln.rotary %3, %c, %s, %pos {rotary_dim = 4 : i64} : (tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>, tensor<8x2xf32>, tensor<8x2xf32>, tensor<1x?xi64, #kiln.dims<[tokens]>>) -> tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>
    %5 = kiln.transpose %4 {perm = array<i64: 0, 2, 1, 3>} : tensor<1x2x?x4xf32, #kiln.dims<[tokens]>> -> tensor<1x?x2x4xf32, #kiln.dims<[tokens]>>
    %6 = kiln.reshape %5 : tensor<1x?x2x4xf32, #kiln.dims<[tokens]>> -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %7 = kiln.gather %6, %rows {axis = 1 : i64} : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<?xi64, #kiln.dims<[logit_rows]>>) -> tensor<1x?x8xf32, #kiln.dims<[logit_rows]>>
    return %7 : tensor<1x?x8xf32, #kiln.dims<[logit_rows]>>
  }
}

// -----

// Rotary embedding with per-token angles (no positions, what
// --kiln-raise-rotary makes): cos/sin are [1, tokens, 2] and each element
// reads row (0, its token); no position is loaded or cast.
// CHECK-LABEL: func.func @kiln_model_step
// CHECK: call @[[ROT:__kiln_rotary_[0-9]+]](
// CHECK: func.func private @[[ROT]](%[[IN:[^:]+]]: memref<1x2x?x4xf32, strided<[?, 4, 8, 1]>>, %[[COS:[^:]+]]: memref<1x?x2xf32>, %[[SIN:[^:]+]]: memref<1x?x2xf32>, %[[OUT:[^:]+]]: memref<1x2x?x4xf32>)
// CHECK: linalg.generic
// CHECK-SAME: outs(%[[OUT]] : memref<1x2x?x4xf32>)
// CHECK: %[[T:.+]] = linalg.index 2 : index
// CHECK-NOT: arith.index_cast
// CHECK: memref.load %[[IN]]
// CHECK: memref.load %[[IN]]
// CHECK-NEXT: memref.load %[[COS]][%c0{{[_0-9]*}}, %[[T]], %[[J:[a-z0-9_]+]]] : memref<1x?x2xf32>
// CHECK-NEXT: memref.load %[[SIN]][%c0{{[_0-9]*}}, %[[T]], %[[J]]] : memref<1x?x2xf32>
// CHECK: arith.select
module {
  kiln.global @emb : tensor<16x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>]
  kiln.global @cos : tensor<8x2xf32> [#kiln.blob<"w.bin", offset = 512, size = 64>]
  kiln.global @sin : tensor<8x2xf32> [#kiln.blob<"w.bin", offset = 576, size = 64>]
  func.func @main(%ids: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.step_input = "token_ids"}, %pos: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.step_input = "positions"}, %rows: tensor<?xi64, #kiln.dims<[logit_rows]>> {kiln.step_input = "logit_rows"}) -> tensor<1x?x8xf32, #kiln.dims<[logit_rows]>> {
    %0 = kiln.weight @emb : tensor<16x8xf32>
    %c = kiln.weight @cos : tensor<8x2xf32>
    %s = kiln.weight @sin : tensor<8x2xf32>
    %ct = kiln.gather %c, %pos {axis = 0 : i64} : (tensor<8x2xf32>, tensor<1x?xi64, #kiln.dims<[tokens]>>) -> tensor<1x?x2xf32, #kiln.dims<[tokens]>>
    %st = kiln.gather %s, %pos {axis = 0 : i64} : (tensor<8x2xf32>, tensor<1x?xi64, #kiln.dims<[tokens]>>) -> tensor<1x?x2xf32, #kiln.dims<[tokens]>>
    %1 = kiln.gather %0, %ids {axis = 0 : i64} : (tensor<16x8xf32>, tensor<1x?xi64, #kiln.dims<[tokens]>>) -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %2 = kiln.reshape %1 : tensor<1x?x8xf32, #kiln.dims<[tokens]>> -> tensor<1x?x2x4xf32, #kiln.dims<[tokens]>>
    %3 = kiln.transpose %2 {perm = array<i64: 0, 2, 1, 3>} : tensor<1x?x2x4xf32, #kiln.dims<[tokens]>> -> tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>
    %4 = kiln.rotary %3, %ct, %st {rotary_dim = 4 : i64} : (tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>, tensor<1x?x2xf32, #kiln.dims<[tokens]>>, tensor<1x?x2xf32, #kiln.dims<[tokens]>>) -> tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>
    %5 = kiln.transpose %4 {perm = array<i64: 0, 2, 1, 3>} : tensor<1x2x?x4xf32, #kiln.dims<[tokens]>> -> tensor<1x?x2x4xf32, #kiln.dims<[tokens]>>
    %6 = kiln.reshape %5 : tensor<1x?x2x4xf32, #kiln.dims<[tokens]>> -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %7 = kiln.gather %6, %rows {axis = 1 : i64} : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<?xi64, #kiln.dims<[logit_rows]>>) -> tensor<1x?x8xf32, #kiln.dims<[logit_rows]>>
    return %7 : tensor<1x?x8xf32, #kiln.dims<[logit_rows]>>
  }
}

// -----

// The rotary embedding of q and k goes into the attention kernel: no loop
// of its own; the kernel reads q and k before rotation (in place through
// the transposes), the per-token cos/sin rows (row stride 2, rotary_dim
// 4, flags 0) and rotates them itself.
// CHECK-LABEL: func.func @kiln_model_step
// CHECK-NOT: call @__kiln_rotary
// CHECK-NOT: call @__kiln_transpose
// CHECK-NOT: llvm.mlir.zero
// CHECK: llvm.call %{{.+}}(%arg0, {{.*}}, %[[COS:[0-9]+]], %[[SIN:[0-9]+]], %{{[0-9]+}}, %{{[0-9]+}}, %{{[0-9]+}}) : !llvm.ptr, (!llvm.ptr, i64, i64, i64, i64, i64, i64, f32, f32, i64, !llvm.ptr, i64, i64, !llvm.ptr, i64, i64, !llvm.ptr, i64, i64, !llvm.ptr, i64, i64, !llvm.ptr, !llvm.ptr, i64, i64, i64) -> ()
// CHECK-NOT: call @__kiln_rotary
// CHECK-NOT: call @__kiln_transpose
// CHECK: func.func private
module {
  kiln.global @emb : tensor<16x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>]
  kiln.global @cos : tensor<8x2xf32> [#kiln.blob<"w.bin", offset = 512, size = 64>]
  kiln.global @sin : tensor<8x2xf32> [#kiln.blob<"w.bin", offset = 576, size = 64>]
  func.func @main(%ids: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.step_input = "token_ids"}, %pos: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.step_input = "positions"}, %cache: !kiln.kv_cache<layers = 1, heads = 2, head_dim = 4, block = 16, f32> {kiln.step_input = "kv_cache"}, %rows: tensor<?xi64, #kiln.dims<[logit_rows]>> {kiln.step_input = "logit_rows"}) -> tensor<1x?x8xf32, #kiln.dims<[logit_rows]>> {
    %0 = kiln.weight @emb : tensor<16x8xf32>
    %c = kiln.weight @cos : tensor<8x2xf32>
    %s = kiln.weight @sin : tensor<8x2xf32>
    %ct = kiln.gather %c, %pos {axis = 0 : i64} : (tensor<8x2xf32>, tensor<1x?xi64, #kiln.dims<[tokens]>>) -> tensor<1x?x2xf32, #kiln.dims<[tokens]>>
    %st = kiln.gather %s, %pos {axis = 0 : i64} : (tensor<8x2xf32>, tensor<1x?xi64, #kiln.dims<[tokens]>>) -> tensor<1x?x2xf32, #kiln.dims<[tokens]>>
    %1 = kiln.gather %0, %ids {axis = 0 : i64} : (tensor<16x8xf32>, tensor<1x?xi64, #kiln.dims<[tokens]>>) -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %2 = kiln.reshape %1 : tensor<1x?x8xf32, #kiln.dims<[tokens]>> -> tensor<1x?x2x4xf32, #kiln.dims<[tokens]>>
    %3 = kiln.transpose %2 {perm = array<i64: 0, 2, 1, 3>} : tensor<1x?x2x4xf32, #kiln.dims<[tokens]>> -> tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>
    %q = kiln.rotary %3, %ct, %st {rotary_dim = 4 : i64} : (tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>, tensor<1x?x2xf32, #kiln.dims<[tokens]>>, tensor<1x?x2xf32, #kiln.dims<[tokens]>>) -> tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>
    %k = kiln.rotary %3, %ct, %st {rotary_dim = 4 : i64} : (tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>, tensor<1x?x2xf32, #kiln.dims<[tokens]>>, tensor<1x?x2xf32, #kiln.dims<[tokens]>>) -> tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>
    %4 = kiln.paged_attention %cache, %q, %k, %3 {layer = 0 : i64, scale = 5.000000e-01 : f32} : !kiln.kv_cache<layers = 1, heads = 2, head_dim = 4, block = 16, f32>, tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>, tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>, tensor<1x2x?x4xf32, #kiln.dims<[tokens]>> -> tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>
    %5 = kiln.transpose %4 {perm = array<i64: 0, 2, 1, 3>} : tensor<1x2x?x4xf32, #kiln.dims<[tokens]>> -> tensor<1x?x2x4xf32, #kiln.dims<[tokens]>>
    %6 = kiln.reshape %5 : tensor<1x?x2x4xf32, #kiln.dims<[tokens]>> -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %7 = kiln.gather %6, %rows {axis = 1 : i64} : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<?xi64, #kiln.dims<[logit_rows]>>) -> tensor<1x?x8xf32, #kiln.dims<[logit_rows]>>
    return %7 : tensor<1x?x8xf32, #kiln.dims<[logit_rows]>>
  }
}

// -----

// Angles indexed by the step's positions (interleaved, partial: rotary_dim
// 2 of head_dim 4): the kernel reads the tables from the weights file at
// their offsets and indexes them by position (flags 1 | 2 = 3).
// CHECK-LABEL: func.func @kiln_model_step
// CHECK-NOT: call @__kiln_rotary
// CHECK: %[[COFS:.+]] = llvm.mlir.constant(512 : i64) : i64
// CHECK-NEXT: %[[COS:.+]] = llvm.getelementptr %{{.+}}[%[[COFS]]]
// CHECK-NEXT: %[[SOFS:.+]] = llvm.mlir.constant(576 : i64) : i64
// CHECK-NEXT: %[[SIN:.+]] = llvm.getelementptr %{{.+}}[%[[SOFS]]]
// CHECK-NEXT: %[[ROW:.+]] = llvm.mlir.constant(1 : i64) : i64
// CHECK: llvm.mlir.constant(-1 : i64) : i64
// CHECK-NEXT: %[[RD:.+]] = llvm.mlir.constant(2 : i64) : i64
// CHECK-NEXT: %[[FLAGS:.+]] = llvm.mlir.constant(3 : i64) : i64
// CHECK-NEXT: llvm.call %{{.+}}(%arg0, {{.*}}, %[[COS]], %[[SIN]], %[[ROW]], %[[RD]], %[[FLAGS]])
// CHECK-NOT: call @__kiln_rotary
module {
  kiln.global @emb : tensor<16x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>]
  kiln.global @cos : tensor<8x1xf32> [#kiln.blob<"w.bin", offset = 512, size = 32>]
  kiln.global @sin : tensor<8x1xf32> [#kiln.blob<"w.bin", offset = 576, size = 32>]
  func.func @main(%ids: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.step_input = "token_ids"}, %pos: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.step_input = "positions"}, %cache: !kiln.kv_cache<layers = 1, heads = 2, head_dim = 4, block = 16, f32> {kiln.step_input = "kv_cache"}, %rows: tensor<?xi64, #kiln.dims<[logit_rows]>> {kiln.step_input = "logit_rows"}) -> tensor<1x?x8xf32, #kiln.dims<[logit_rows]>> {
    %0 = kiln.weight @emb : tensor<16x8xf32>
    %c = kiln.weight @cos : tensor<8x1xf32>
    %s = kiln.weight @sin : tensor<8x1xf32>
    %1 = kiln.gather %0, %ids {axis = 0 : i64} : (tensor<16x8xf32>, tensor<1x?xi64, #kiln.dims<[tokens]>>) -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %2 = kiln.reshape %1 : tensor<1x?x8xf32, #kiln.dims<[tokens]>> -> tensor<1x?x2x4xf32, #kiln.dims<[tokens]>>
    %3 = kiln.transpose %2 {perm = array<i64: 0, 2, 1, 3>} : tensor<1x?x2x4xf32, #kiln.dims<[tokens]>> -> tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>
    %q = kiln.rotary %3, %c, %s, %pos {rotary_dim = 2 : i64, interleaved} : (tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>, tensor<8x1xf32>, tensor<8x1xf32>, tensor<1x?xi64, #kiln.dims<[tokens]>>) -> tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>
    %k = kiln.rotary %3, %c, %s, %pos {rotary_dim = 2 : i64, interleaved} : (tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>, tensor<8x1xf32>, tensor<8x1xf32>, tensor<1x?xi64, #kiln.dims<[tokens]>>) -> tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>
    %4 = kiln.paged_attention %cache, %q, %k, %3 {layer = 0 : i64, scale = 5.000000e-01 : f32} : !kiln.kv_cache<layers = 1, heads = 2, head_dim = 4, block = 16, f32>, tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>, tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>, tensor<1x2x?x4xf32, #kiln.dims<[tokens]>> -> tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>
    %5 = kiln.transpose %4 {perm = array<i64: 0, 2, 1, 3>} : tensor<1x2x?x4xf32, #kiln.dims<[tokens]>> -> tensor<1x?x2x4xf32, #kiln.dims<[tokens]>>
    %6 = kiln.reshape %5 : tensor<1x?x2x4xf32, #kiln.dims<[tokens]>> -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %7 = kiln.gather %6, %rows {axis = 1 : i64} : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<?xi64, #kiln.dims<[logit_rows]>>) -> tensor<1x?x8xf32, #kiln.dims<[logit_rows]>>
    return %7 : tensor<1x?x8xf32, #kiln.dims<[logit_rows]>>
  }
}

// -----

// What the kernel cannot take stays loops: q rotated but k not; positions
// that are not the step's (a computed tensor); a rotated k read also by
// another op; an attention output read by something other than the
// transpose (it then has a buffer of its own and the transpose copies).
// CHECK-LABEL: func.func @kiln_model_step
// CHECK: call @__kiln_rotary
// CHECK: llvm.mlir.zero : !llvm.ptr
// CHECK: call @__kiln_rotary
// CHECK: call @__kiln_rotary
// CHECK: llvm.mlir.zero : !llvm.ptr
// CHECK: call @__kiln_rotary
// CHECK: call @__kiln_rotary
// CHECK: llvm.mlir.zero : !llvm.ptr
// CHECK: call @__kiln_transpose
module {
  kiln.global @emb : tensor<16x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>]
  kiln.global @cos : tensor<8x2xf32> [#kiln.blob<"w.bin", offset = 512, size = 64>]
  kiln.global @sin : tensor<8x2xf32> [#kiln.blob<"w.bin", offset = 576, size = 64>]
  func.func @main(%ids: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.step_input = "token_ids"}, %pos: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.step_input = "positions"}, %cache: !kiln.kv_cache<layers = 3, heads = 2, head_dim = 4, block = 16, f32> {kiln.step_input = "kv_cache"}, %rows: tensor<?xi64, #kiln.dims<[logit_rows]>> {kiln.step_input = "logit_rows"}) -> tensor<1x?x8xf32, #kiln.dims<[logit_rows]>> {
    %0 = kiln.weight @emb : tensor<16x8xf32>
    %c = kiln.weight @cos : tensor<8x2xf32>
    %s = kiln.weight @sin : tensor<8x2xf32>
    %1 = kiln.gather %0, %ids {axis = 0 : i64} : (tensor<16x8xf32>, tensor<1x?xi64, #kiln.dims<[tokens]>>) -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %2 = kiln.reshape %1 : tensor<1x?x8xf32, #kiln.dims<[tokens]>> -> tensor<1x?x2x4xf32, #kiln.dims<[tokens]>>
    %3 = kiln.transpose %2 {perm = array<i64: 0, 2, 1, 3>} : tensor<1x?x2x4xf32, #kiln.dims<[tokens]>> -> tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>
    %qa = kiln.rotary %3, %c, %s, %pos {rotary_dim = 4 : i64} : (tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>, tensor<8x2xf32>, tensor<8x2xf32>, tensor<1x?xi64, #kiln.dims<[tokens]>>) -> tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>
    %a = kiln.paged_attention %cache, %qa, %3, %3 {layer = 0 : i64, scale = 5.000000e-01 : f32} : !kiln.kv_cache<layers = 3, heads = 2, head_dim = 4, block = 16, f32>, tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>, tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>, tensor<1x2x?x4xf32, #kiln.dims<[tokens]>> -> tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>
    %p2 = kiln.add %pos, %pos : (tensor<1x?xi64, #kiln.dims<[tokens]>>, tensor<1x?xi64, #kiln.dims<[tokens]>>) -> tensor<1x?xi64, #kiln.dims<[tokens]>>
    %qb = kiln.rotary %a, %c, %s, %p2 {rotary_dim = 4 : i64} : (tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>, tensor<8x2xf32>, tensor<8x2xf32>, tensor<1x?xi64, #kiln.dims<[tokens]>>) -> tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>
    %kb = kiln.rotary %a, %c, %s, %p2 {rotary_dim = 4 : i64} : (tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>, tensor<8x2xf32>, tensor<8x2xf32>, tensor<1x?xi64, #kiln.dims<[tokens]>>) -> tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>
    %b = kiln.paged_attention %cache, %qb, %kb, %a {layer = 1 : i64, scale = 5.000000e-01 : f32} : !kiln.kv_cache<layers = 3, heads = 2, head_dim = 4, block = 16, f32>, tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>, tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>, tensor<1x2x?x4xf32, #kiln.dims<[tokens]>> -> tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>
    %qc = kiln.rotary %b, %c, %s, %pos {rotary_dim = 4 : i64} : (tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>, tensor<8x2xf32>, tensor<8x2xf32>, tensor<1x?xi64, #kiln.dims<[tokens]>>) -> tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>
    %kc = kiln.rotary %b, %c, %s, %pos {rotary_dim = 4 : i64} : (tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>, tensor<8x2xf32>, tensor<8x2xf32>, tensor<1x?xi64, #kiln.dims<[tokens]>>) -> tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>
    %d = kiln.paged_attention %cache, %qc, %kc, %kc {layer = 2 : i64, scale = 5.000000e-01 : f32} : !kiln.kv_cache<layers = 3, heads = 2, head_dim = 4, block = 16, f32>, tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>, tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>, tensor<1x2x?x4xf32, #kiln.dims<[tokens]>> -> tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>
    %e = kiln.add %d, %d : (tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>, tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>) -> tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>
    %5 = kiln.transpose %d {perm = array<i64: 0, 2, 1, 3>} : tensor<1x2x?x4xf32, #kiln.dims<[tokens]>> -> tensor<1x?x2x4xf32, #kiln.dims<[tokens]>>
    %6 = kiln.reshape %5 : tensor<1x?x2x4xf32, #kiln.dims<[tokens]>> -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %7 = kiln.gather %6, %rows {axis = 1 : i64} : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<?xi64, #kiln.dims<[logit_rows]>>) -> tensor<1x?x8xf32, #kiln.dims<[logit_rows]>>
    return %7 : tensor<1x?x8xf32, #kiln.dims<[logit_rows]>>
  }
}

// -----

// A split's pieces are views of its input, read in place: the matmul
// kernel reads the second piece with the whole row as its lda (24), the add
// reads the first as a strided memref; nothing copies the pieces.
// CHECK-LABEL: func.func @kiln_model_step
// CHECK-NOT: call @__kiln_split
// CHECK: %[[LDA:.+]] = llvm.mlir.constant(24 : i64) : i64
// CHECK: llvm.call %{{.+}}(%{{[^,]+}}, %{{[^,]+}}, %[[LDA]], {{.*}}) : !llvm.ptr, (!llvm.ptr, !llvm.ptr, i64, !llvm.ptr, !llvm.ptr, i64, i64, i64, i64) -> ()
// CHECK: call @[[ADD:__kiln_add_[0-9]+]](%{{.+}}) : (memref<1x?x8xf32, strided<[?, 24, 1]>>, memref<1x?x8xf32>, memref<1x?x8xf32>) -> ()
module {
  kiln.global @emb : tensor<16x24xf32> [#kiln.blob<"w.bin", offset = 0, size = 1536>]
  kiln.global @w : tensor<16x8xf32> [#kiln.blob<"w.bin", offset = 1536, size = 512>]
  func.func @main(%ids: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.step_input = "token_ids"}, %rows: tensor<?xi64, #kiln.dims<[logit_rows]>> {kiln.step_input = "logit_rows"}) -> tensor<1x?x8xf32, #kiln.dims<[logit_rows]>> {
    %e = kiln.weight @emb : tensor<16x24xf32>
    %w = kiln.weight @w : tensor<16x8xf32>
    %x = kiln.gather %e, %ids {axis = 0 : i64} : (tensor<16x24xf32>, tensor<1x?xi64, #kiln.dims<[tokens]>>) -> tensor<1x?x24xf32, #kiln.dims<[tokens]>>
    %a, %b = kiln.split %x {axis = 2 : i64} : tensor<1x?x24xf32, #kiln.dims<[tokens]>> -> (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<1x?x16xf32, #kiln.dims<[tokens]>>)
    %m = kiln.matmul %b, %w : (tensor<1x?x16xf32, #kiln.dims<[tokens]>>, tensor<16x8xf32>) -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %s = kiln.add %a, %m : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<1x?x8xf32, #kiln.dims<[tokens]>>) -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
    %g = kiln.gather %s, %rows {axis = 1 : i64} : (tensor<1x?x8xf32, #kiln.dims<[tokens]>>, tensor<?xi64, #kiln.dims<[logit_rows]>>) -> tensor<1x?x8xf32, #kiln.dims<[logit_rows]>>
    return %g : tensor<1x?x8xf32, #kiln.dims<[logit_rows]>>
  }
}
