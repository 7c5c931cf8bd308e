// Which kernel a quantized matmul calls: kernel-table entry 5
// (matmul_quant_f32, fp32 activations) or 7 (matmul_quant_a8_f32,
// activations rounded to int8 per group as onnxruntime computes
// MatMulNBits at accuracy_level 4). quant-compute=auto (the default)
// follows the matmul's accuracy_level, f32 never rounds, int8 rounds
// wherever the int8 kernel applies: groups of 16, 32, 64, 128 or 256.
//
// RUN: kiln-opt %s --split-input-file --convert-kiln-to-loops | FileCheck %s --check-prefix=AUTO
// RUN: kiln-opt %s --split-input-file --convert-kiln-to-loops=quant-compute=auto | FileCheck %s --check-prefix=AUTO
// RUN: kiln-opt %s --split-input-file --convert-kiln-to-loops=quant-compute=f32 | FileCheck %s --check-prefix=F32
// RUN: kiln-opt %s --split-input-file --convert-kiln-to-loops=quant-compute=int8 | FileCheck %s --check-prefix=INT8
// RUN: not kiln-opt %s --split-input-file --convert-kiln-to-loops=quant-compute=int4 2>&1 | FileCheck %s --check-prefix=BAD
// BAD: Cannot find option named 'int4'

// accuracy_level 4, 4-bit weights in groups of 32 (the ORT-GenAI int4
// models): int8 unless quant-compute=f32. The other arguments are
// those of matmul_quant_f32.
// AUTO-LABEL: func.func @kiln_model_step
// AUTO: llvm.getelementptr %arg1[0, 7]
// F32-LABEL: func.func @kiln_model_step
// F32: llvm.getelementptr %arg1[0, 5]
// INT8-LABEL: func.func @kiln_model_step
// INT8: llvm.getelementptr %arg1[0, 7]
// AUTO: llvm.call %{{.+}}(%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}) : !llvm.ptr, (!llvm.ptr, !llvm.ptr, i64, !llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, i64, i64, i64, i64, i64, i64) -> ()
module {
  kiln.global @emb : tensor<16x64xf32> [#kiln.blob<"w.bin", offset = 0, size = 4096>]
  kiln.global @head : !kiln.qtensor<16x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = mid>> [#kiln.blob<"w.bin", offset = 4096, size = 512>, #kiln.blob<"w.bin", offset = 4608, size = 128>]
  func.func @main(%ids: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.step_input = "token_ids"}, %rows: tensor<?xi64, #kiln.dims<[logit_rows]>> {kiln.step_input = "logit_rows"}) -> tensor<1x?x16xf32, #kiln.dims<[logit_rows]>> {
    %0 = kiln.weight @emb : tensor<16x64xf32>
    %1 = kiln.gather %0, %ids {axis = 0 : i64} : (tensor<16x64xf32>, tensor<1x?xi64, #kiln.dims<[tokens]>>) -> tensor<1x?x64xf32, #kiln.dims<[tokens]>>
    %2 = kiln.gather %1, %rows {axis = 1 : i64} : (tensor<1x?x64xf32, #kiln.dims<[tokens]>>, tensor<?xi64, #kiln.dims<[logit_rows]>>) -> tensor<1x?x64xf32, #kiln.dims<[logit_rows]>>
    %w = kiln.weight @head : !kiln.qtensor<16x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = mid>>
    %d = kiln.dequantize %w : !kiln.qtensor<16x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = mid>> -> tensor<16x64xf32>
    %t = kiln.transpose %d {perm = array<i64: 1, 0>} : tensor<16x64xf32> -> tensor<64x16xf32>
    %y = kiln.matmul %2, %t {accuracy_level = 4 : i64} : (tensor<1x?x64xf32, #kiln.dims<[logit_rows]>>, tensor<64x16xf32>) -> tensor<1x?x16xf32, #kiln.dims<[logit_rows]>>
    return %y : tensor<1x?x16xf32, #kiln.dims<[logit_rows]>>
  }
}

// -----

// No accuracy_level (0): fp32 unless quant-compute=int8.
// AUTO-LABEL: func.func @kiln_model_step
// AUTO: llvm.getelementptr %arg1[0, 5]
// F32-LABEL: func.func @kiln_model_step
// F32: llvm.getelementptr %arg1[0, 5]
// INT8-LABEL: func.func @kiln_model_step
// INT8: llvm.getelementptr %arg1[0, 7]
module {
  kiln.global @emb : tensor<16x64xf32> [#kiln.blob<"w.bin", offset = 0, size = 4096>]
  kiln.global @head : !kiln.qtensor<16x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = mid>> [#kiln.blob<"w.bin", offset = 4096, size = 512>, #kiln.blob<"w.bin", offset = 4608, size = 128>]
  func.func @main(%ids: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.step_input = "token_ids"}, %rows: tensor<?xi64, #kiln.dims<[logit_rows]>> {kiln.step_input = "logit_rows"}) -> tensor<1x?x16xf32, #kiln.dims<[logit_rows]>> {
    %0 = kiln.weight @emb : tensor<16x64xf32>
    %1 = kiln.gather %0, %ids {axis = 0 : i64} : (tensor<16x64xf32>, tensor<1x?xi64, #kiln.dims<[tokens]>>) -> tensor<1x?x64xf32, #kiln.dims<[tokens]>>
    %2 = kiln.gather %1, %rows {axis = 1 : i64} : (tensor<1x?x64xf32, #kiln.dims<[tokens]>>, tensor<?xi64, #kiln.dims<[logit_rows]>>) -> tensor<1x?x64xf32, #kiln.dims<[logit_rows]>>
    %w = kiln.weight @head : !kiln.qtensor<16x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = mid>>
    %d = kiln.dequantize %w : !kiln.qtensor<16x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = mid>> -> tensor<16x64xf32>
    %t = kiln.transpose %d {perm = array<i64: 1, 0>} : tensor<16x64xf32> -> tensor<64x16xf32>
    %y = kiln.matmul %2, %t : (tensor<1x?x64xf32, #kiln.dims<[logit_rows]>>, tensor<64x16xf32>) -> tensor<1x?x16xf32, #kiln.dims<[logit_rows]>>
    return %y : tensor<1x?x16xf32, #kiln.dims<[logit_rows]>>
  }
}

// -----

// accuracy_level 1-3 (fp32, fp16, bf16) compute in fp32 too.
// AUTO-LABEL: func.func @kiln_model_step
// AUTO: llvm.getelementptr %arg1[0, 5]
// F32-LABEL: func.func @kiln_model_step
// F32: llvm.getelementptr %arg1[0, 5]
// INT8-LABEL: func.func @kiln_model_step
// INT8: llvm.getelementptr %arg1[0, 7]
module {
  kiln.global @emb : tensor<16x64xf32> [#kiln.blob<"w.bin", offset = 0, size = 4096>]
  kiln.global @head : !kiln.qtensor<16x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = mid>> [#kiln.blob<"w.bin", offset = 4096, size = 512>, #kiln.blob<"w.bin", offset = 4608, size = 128>]
  func.func @main(%ids: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.step_input = "token_ids"}, %rows: tensor<?xi64, #kiln.dims<[logit_rows]>> {kiln.step_input = "logit_rows"}) -> tensor<1x?x16xf32, #kiln.dims<[logit_rows]>> {
    %0 = kiln.weight @emb : tensor<16x64xf32>
    %1 = kiln.gather %0, %ids {axis = 0 : i64} : (tensor<16x64xf32>, tensor<1x?xi64, #kiln.dims<[tokens]>>) -> tensor<1x?x64xf32, #kiln.dims<[tokens]>>
    %2 = kiln.gather %1, %rows {axis = 1 : i64} : (tensor<1x?x64xf32, #kiln.dims<[tokens]>>, tensor<?xi64, #kiln.dims<[logit_rows]>>) -> tensor<1x?x64xf32, #kiln.dims<[logit_rows]>>
    %w = kiln.weight @head : !kiln.qtensor<16x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = mid>>
    %d = kiln.dequantize %w : !kiln.qtensor<16x64, #kiln.quant<u4, group = 32, axis = 1, scale = f32, zero_point = mid>> -> tensor<16x64xf32>
    %t = kiln.transpose %d {perm = array<i64: 1, 0>} : tensor<16x64xf32> -> tensor<64x16xf32>
    %y = kiln.matmul %2, %t {accuracy_level = 2 : i64} : (tensor<1x?x64xf32, #kiln.dims<[logit_rows]>>, tensor<64x16xf32>) -> tensor<1x?x16xf32, #kiln.dims<[logit_rows]>>
    return %y : tensor<1x?x16xf32, #kiln.dims<[logit_rows]>>
  }
}

// -----

// 8-bit weights with stored zero points, groups of 16: int8 as well
// (onnxruntime 1.31 rounds A for 8-bit MatMulNBits at level 4).
// AUTO-LABEL: func.func @kiln_model_step
// AUTO: llvm.getelementptr %arg1[0, 7]
// F32-LABEL: func.func @kiln_model_step
// F32: llvm.getelementptr %arg1[0, 5]
// INT8-LABEL: func.func @kiln_model_step
// INT8: llvm.getelementptr %arg1[0, 7]
module {
  kiln.global @emb : tensor<16x32xf32> [#kiln.blob<"w.bin", offset = 0, size = 2048>]
  kiln.global @head : !kiln.qtensor<16x32, #kiln.quant<u8, group = 16, axis = 1, scale = f32, zero_point = int>> [#kiln.blob<"w.bin", offset = 2048, size = 512>, #kiln.blob<"w.bin", offset = 2560, size = 128>, #kiln.blob<"w.bin", offset = 2688, size = 32>]
  func.func @main(%ids: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.step_input = "token_ids"}, %rows: tensor<?xi64, #kiln.dims<[logit_rows]>> {kiln.step_input = "logit_rows"}) -> tensor<1x?x16xf32, #kiln.dims<[logit_rows]>> {
    %0 = kiln.weight @emb : tensor<16x32xf32>
    %1 = kiln.gather %0, %ids {axis = 0 : i64} : (tensor<16x32xf32>, tensor<1x?xi64, #kiln.dims<[tokens]>>) -> tensor<1x?x32xf32, #kiln.dims<[tokens]>>
    %2 = kiln.gather %1, %rows {axis = 1 : i64} : (tensor<1x?x32xf32, #kiln.dims<[tokens]>>, tensor<?xi64, #kiln.dims<[logit_rows]>>) -> tensor<1x?x32xf32, #kiln.dims<[logit_rows]>>
    %w = kiln.weight @head : !kiln.qtensor<16x32, #kiln.quant<u8, group = 16, axis = 1, scale = f32, zero_point = int>>
    %d = kiln.dequantize %w : !kiln.qtensor<16x32, #kiln.quant<u8, group = 16, axis = 1, scale = f32, zero_point = int>> -> tensor<16x32xf32>
    %t = kiln.transpose %d {perm = array<i64: 1, 0>} : tensor<16x32xf32> -> tensor<32x16xf32>
    %y = kiln.matmul %2, %t {accuracy_level = 4 : i64} : (tensor<1x?x32xf32, #kiln.dims<[logit_rows]>>, tensor<32x16xf32>) -> tensor<1x?x16xf32, #kiln.dims<[logit_rows]>>
    return %y : tensor<1x?x16xf32, #kiln.dims<[logit_rows]>>
  }
}

// -----

// Groups the int8 kernel is not used for keep the fp32 kernel in every
// mode: 4 (below 16) ...
// AUTO-LABEL: func.func @kiln_model_step
// AUTO: llvm.getelementptr %arg1[0, 5]
// F32-LABEL: func.func @kiln_model_step
// F32: llvm.getelementptr %arg1[0, 5]
// INT8-LABEL: func.func @kiln_model_step
// INT8: llvm.getelementptr %arg1[0, 5]
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
    %y = kiln.matmul %2, %t {accuracy_level = 4 : i64} : (tensor<1x?x8xf32, #kiln.dims<[logit_rows]>>, tensor<8x16xf32>) -> tensor<1x?x16xf32, #kiln.dims<[logit_rows]>>
    return %y : tensor<1x?x16xf32, #kiln.dims<[logit_rows]>>
  }
}

// -----

// ... and 512 (above 256; onnxruntime has no such MatMulNBits).
// AUTO-LABEL: func.func @kiln_model_step
// AUTO: llvm.getelementptr %arg1[0, 5]
// F32-LABEL: func.func @kiln_model_step
// F32: llvm.getelementptr %arg1[0, 5]
// INT8-LABEL: func.func @kiln_model_step
// INT8: llvm.getelementptr %arg1[0, 5]
module {
  kiln.global @emb : tensor<16x1024xf32> [#kiln.blob<"w.bin", offset = 0, size = 65536>]
  kiln.global @head : !kiln.qtensor<16x1024, #kiln.quant<u4, group = 512, axis = 1, scale = f32, zero_point = mid>> [#kiln.blob<"w.bin", offset = 65536, size = 8192>, #kiln.blob<"w.bin", offset = 73728, size = 128>]
  func.func @main(%ids: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.step_input = "token_ids"}, %rows: tensor<?xi64, #kiln.dims<[logit_rows]>> {kiln.step_input = "logit_rows"}) -> tensor<1x?x16xf32, #kiln.dims<[logit_rows]>> {
    %0 = kiln.weight @emb : tensor<16x1024xf32>
    %1 = kiln.gather %0, %ids {axis = 0 : i64} : (tensor<16x1024xf32>, tensor<1x?xi64, #kiln.dims<[tokens]>>) -> tensor<1x?x1024xf32, #kiln.dims<[tokens]>>
    %2 = kiln.gather %1, %rows {axis = 1 : i64} : (tensor<1x?x1024xf32, #kiln.dims<[tokens]>>, tensor<?xi64, #kiln.dims<[logit_rows]>>) -> tensor<1x?x1024xf32, #kiln.dims<[logit_rows]>>
    %w = kiln.weight @head : !kiln.qtensor<16x1024, #kiln.quant<u4, group = 512, axis = 1, scale = f32, zero_point = mid>>
    %d = kiln.dequantize %w : !kiln.qtensor<16x1024, #kiln.quant<u4, group = 512, axis = 1, scale = f32, zero_point = mid>> -> tensor<16x1024xf32>
    %t = kiln.transpose %d {perm = array<i64: 1, 0>} : tensor<16x1024xf32> -> tensor<1024x16xf32>
    %y = kiln.matmul %2, %t {accuracy_level = 4 : i64} : (tensor<1x?x1024xf32, #kiln.dims<[logit_rows]>>, tensor<1024x16xf32>) -> tensor<1x?x16xf32, #kiln.dims<[logit_rows]>>
    return %y : tensor<1x?x16xf32, #kiln.dims<[logit_rows]>>
  }
}
