// RUN: kiln-opt %s --split-input-file --kiln-insert-kv-cache=context-length=64 --verify-diagnostics | FileCheck %s

// Masks computed from sizes are evaluated before the paged cache replaces
// them (passes/MaskWindow.cpp): with the padding masks all ones, for a few
// small sizes and for the last tokens of a 64-token context.

// A causal mask spelled as ranges: plain paged attention, no window.
// CHECK-LABEL: func.func @main
// CHECK: kiln.paged_attention %{{.+}} {layer = 0 : i64, scale = 5.000000e-01 : f32} :
module {
  kiln.global @emb : tensor<16x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>]
  kiln.global @head : tensor<8x16xf32> [#kiln.blob<"w.bin", offset = 512, size = 512>]
  func.func @main(%ids: tensor<?x?xi64, #kiln.dims<[b, s]>> {kiln.name = "input_ids"}, %pk: tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> {kiln.name = "past.key"}, %pv: tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> {kiln.name = "past.value"}) -> (tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>) {
    %c0 = kiln.constant dense<0> : tensor<i64>
    %c1 = kiln.constant dense<1> : tensor<i64>
    %zero = kiln.constant dense<0.0> : tensor<f32>
    %ninf = kiln.constant dense<0xFF800000> : tensor<f32>
    %pl = kiln.dim %pk[2] : tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> -> tensor<i64>
    %sl = kiln.dim %ids[1] : tensor<?x?xi64, #kiln.dims<[b, s]>> -> tensor<i64>
    %tl = kiln.add %pl, %sl : (tensor<i64>, tensor<i64>) -> tensor<i64>
    %qpos = kiln.range %pl, %tl, %c1 : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64, #kiln.dims<[s]>>
    %kpos = kiln.range %c0, %tl, %c1 : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64, #kiln.dims<[p + s]>>
    %qcol = kiln.reshape %qpos : tensor<?xi64, #kiln.dims<[s]>> -> tensor<?x1xi64, #kiln.dims<[s]>>
    %causal = kiln.less_equal %kpos, %qcol : (tensor<?xi64, #kiln.dims<[p + s]>>, tensor<?x1xi64, #kiln.dims<[s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
    %add = kiln.where %causal, %zero, %ninf : (tensor<?x?xi1, #kiln.dims<[s, p + s]>>, tensor<f32>, tensor<f32>) -> tensor<?x?xf32, #kiln.dims<[s, p + s]>>
    %mask = kiln.reshape %add : tensor<?x?xf32, #kiln.dims<[s, p + s]>> -> tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>
    %e = kiln.weight @emb : tensor<16x8xf32>
    %x = kiln.gather %e, %ids {axis = 0 : i64} : (tensor<16x8xf32>, tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %r = kiln.reshape %x : tensor<?x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %q = kiln.transpose %r {perm = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %k = kiln.concat %pk, %q {axis = 2 : i64} : (tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
    %v = kiln.concat %pv, %q {axis = 2 : i64} : (tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
    %a = kiln.attention %q, %k, %v mask(%mask) {scale = 5.000000e-01 : f32} : (tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %t = kiln.transpose %a {perm = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %f = kiln.reshape %t : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %h = kiln.weight @head : tensor<8x16xf32>
    %l = kiln.matmul %f, %h : (tensor<?x?x8xf32, #kiln.dims<[b, s]>>, tensor<8x16xf32>) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>>
    return %l, %k, %v : tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
  }
}

// -----

// A sliding window (Mistral's `kv > q - 3`): the query at position p sees
// keys p - 2 .. p.
// CHECK-LABEL: func.func @main
// CHECK: kiln.paged_attention %{{.+}} {layer = 0 : i64, scale = 5.000000e-01 : f32, window = 2 : i64} :
module {
  kiln.global @emb : tensor<16x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>]
  kiln.global @head : tensor<8x16xf32> [#kiln.blob<"w.bin", offset = 512, size = 512>]
  func.func @main(%ids: tensor<?x?xi64, #kiln.dims<[b, s]>> {kiln.name = "input_ids"}, %pk: tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> {kiln.name = "past.key"}, %pv: tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> {kiln.name = "past.value"}) -> (tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>) {
    %c0 = kiln.constant dense<0> : tensor<i64>
    %c1 = kiln.constant dense<1> : tensor<i64>
    %zero = kiln.constant dense<0.0> : tensor<f32>
    %ninf = kiln.constant dense<0xFF800000> : tensor<f32>
    %pl = kiln.dim %pk[2] : tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> -> tensor<i64>
    %sl = kiln.dim %ids[1] : tensor<?x?xi64, #kiln.dims<[b, s]>> -> tensor<i64>
    %tl = kiln.add %pl, %sl : (tensor<i64>, tensor<i64>) -> tensor<i64>
    %qpos = kiln.range %pl, %tl, %c1 : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64, #kiln.dims<[s]>>
    %kpos = kiln.range %c0, %tl, %c1 : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64, #kiln.dims<[p + s]>>
    %qcol = kiln.reshape %qpos : tensor<?xi64, #kiln.dims<[s]>> -> tensor<?x1xi64, #kiln.dims<[s]>>
    %causal = kiln.less_equal %kpos, %qcol : (tensor<?xi64, #kiln.dims<[p + s]>>, tensor<?x1xi64, #kiln.dims<[s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
    %w = kiln.constant dense<3> : tensor<i64>
    %lo = kiln.sub %qcol, %w : (tensor<?x1xi64, #kiln.dims<[s]>>, tensor<i64>) -> tensor<?x1xi64, #kiln.dims<[s]>>
    %inwin = kiln.greater %kpos, %lo : (tensor<?xi64, #kiln.dims<[p + s]>>, tensor<?x1xi64, #kiln.dims<[s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
    %both = kiln.and %causal, %inwin : (tensor<?x?xi1, #kiln.dims<[s, p + s]>>, tensor<?x?xi1, #kiln.dims<[s, p + s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
    %add = kiln.where %both, %zero, %ninf : (tensor<?x?xi1, #kiln.dims<[s, p + s]>>, tensor<f32>, tensor<f32>) -> tensor<?x?xf32, #kiln.dims<[s, p + s]>>
    %mask = kiln.reshape %add : tensor<?x?xf32, #kiln.dims<[s, p + s]>> -> tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>
    %e = kiln.weight @emb : tensor<16x8xf32>
    %x = kiln.gather %e, %ids {axis = 0 : i64} : (tensor<16x8xf32>, tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %r = kiln.reshape %x : tensor<?x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %q = kiln.transpose %r {perm = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %k = kiln.concat %pk, %q {axis = 2 : i64} : (tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
    %v = kiln.concat %pv, %q {axis = 2 : i64} : (tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
    %a = kiln.attention %q, %k, %v mask(%mask) {scale = 5.000000e-01 : f32} : (tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %t = kiln.transpose %a {perm = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %f = kiln.reshape %t : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %h = kiln.weight @head : tensor<8x16xf32>
    %l = kiln.matmul %f, %h : (tensor<?x?x8xf32, #kiln.dims<[b, s]>>, tensor<8x16xf32>) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>>
    return %l, %k, %v : tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
  }
}

// -----

// A window that only the last tokens of the 64-token context show (the
// small probes see every key): `kv > q - 60`, keys p - 59 .. p.
// CHECK-LABEL: func.func @main
// CHECK: kiln.paged_attention %{{.+}} {layer = 0 : i64, scale = 5.000000e-01 : f32, window = 59 : i64} :
module {
  kiln.global @emb : tensor<16x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>]
  kiln.global @head : tensor<8x16xf32> [#kiln.blob<"w.bin", offset = 512, size = 512>]
  func.func @main(%ids: tensor<?x?xi64, #kiln.dims<[b, s]>> {kiln.name = "input_ids"}, %pk: tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> {kiln.name = "past.key"}, %pv: tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> {kiln.name = "past.value"}) -> (tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>) {
    %c0 = kiln.constant dense<0> : tensor<i64>
    %c1 = kiln.constant dense<1> : tensor<i64>
    %zero = kiln.constant dense<0.0> : tensor<f32>
    %ninf = kiln.constant dense<0xFF800000> : tensor<f32>
    %pl = kiln.dim %pk[2] : tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> -> tensor<i64>
    %sl = kiln.dim %ids[1] : tensor<?x?xi64, #kiln.dims<[b, s]>> -> tensor<i64>
    %tl = kiln.add %pl, %sl : (tensor<i64>, tensor<i64>) -> tensor<i64>
    %qpos = kiln.range %pl, %tl, %c1 : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64, #kiln.dims<[s]>>
    %kpos = kiln.range %c0, %tl, %c1 : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64, #kiln.dims<[p + s]>>
    %qcol = kiln.reshape %qpos : tensor<?xi64, #kiln.dims<[s]>> -> tensor<?x1xi64, #kiln.dims<[s]>>
    %causal = kiln.less_equal %kpos, %qcol : (tensor<?xi64, #kiln.dims<[p + s]>>, tensor<?x1xi64, #kiln.dims<[s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
    %w = kiln.constant dense<60> : tensor<i64>
    %lo = kiln.sub %qcol, %w : (tensor<?x1xi64, #kiln.dims<[s]>>, tensor<i64>) -> tensor<?x1xi64, #kiln.dims<[s]>>
    %inwin = kiln.greater %kpos, %lo : (tensor<?xi64, #kiln.dims<[p + s]>>, tensor<?x1xi64, #kiln.dims<[s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
    %both = kiln.and %causal, %inwin : (tensor<?x?xi1, #kiln.dims<[s, p + s]>>, tensor<?x?xi1, #kiln.dims<[s, p + s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
    %add = kiln.where %both, %zero, %ninf : (tensor<?x?xi1, #kiln.dims<[s, p + s]>>, tensor<f32>, tensor<f32>) -> tensor<?x?xf32, #kiln.dims<[s, p + s]>>
    %mask = kiln.reshape %add : tensor<?x?xf32, #kiln.dims<[s, p + s]>> -> tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>
    %e = kiln.weight @emb : tensor<16x8xf32>
    %x = kiln.gather %e, %ids {axis = 0 : i64} : (tensor<16x8xf32>, tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %r = kiln.reshape %x : tensor<?x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %q = kiln.transpose %r {perm = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %k = kiln.concat %pk, %q {axis = 2 : i64} : (tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
    %v = kiln.concat %pv, %q {axis = 2 : i64} : (tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
    %a = kiln.attention %q, %k, %v mask(%mask) {scale = 5.000000e-01 : f32} : (tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %t = kiln.transpose %a {perm = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %f = kiln.reshape %t : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %h = kiln.weight @head : tensor<8x16xf32>
    %l = kiln.matmul %f, %h : (tensor<?x?x8xf32, #kiln.dims<[b, s]>>, tensor<8x16xf32>) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>>
    return %l, %k, %v : tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
  }
}

// -----

// A window wider than the context never excludes a key: plain causal.
// CHECK-LABEL: func.func @main
// CHECK: kiln.paged_attention %{{.+}} {layer = 0 : i64, scale = 5.000000e-01 : f32} :
module {
  kiln.global @emb : tensor<16x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>]
  kiln.global @head : tensor<8x16xf32> [#kiln.blob<"w.bin", offset = 512, size = 512>]
  func.func @main(%ids: tensor<?x?xi64, #kiln.dims<[b, s]>> {kiln.name = "input_ids"}, %pk: tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> {kiln.name = "past.key"}, %pv: tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> {kiln.name = "past.value"}) -> (tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>) {
    %c0 = kiln.constant dense<0> : tensor<i64>
    %c1 = kiln.constant dense<1> : tensor<i64>
    %zero = kiln.constant dense<0.0> : tensor<f32>
    %ninf = kiln.constant dense<0xFF800000> : tensor<f32>
    %pl = kiln.dim %pk[2] : tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> -> tensor<i64>
    %sl = kiln.dim %ids[1] : tensor<?x?xi64, #kiln.dims<[b, s]>> -> tensor<i64>
    %tl = kiln.add %pl, %sl : (tensor<i64>, tensor<i64>) -> tensor<i64>
    %qpos = kiln.range %pl, %tl, %c1 : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64, #kiln.dims<[s]>>
    %kpos = kiln.range %c0, %tl, %c1 : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64, #kiln.dims<[p + s]>>
    %qcol = kiln.reshape %qpos : tensor<?xi64, #kiln.dims<[s]>> -> tensor<?x1xi64, #kiln.dims<[s]>>
    %causal = kiln.less_equal %kpos, %qcol : (tensor<?xi64, #kiln.dims<[p + s]>>, tensor<?x1xi64, #kiln.dims<[s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
    %w = kiln.constant dense<100> : tensor<i64>
    %lo = kiln.sub %qcol, %w : (tensor<?x1xi64, #kiln.dims<[s]>>, tensor<i64>) -> tensor<?x1xi64, #kiln.dims<[s]>>
    %inwin = kiln.greater %kpos, %lo : (tensor<?xi64, #kiln.dims<[p + s]>>, tensor<?x1xi64, #kiln.dims<[s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
    %both = kiln.and %causal, %inwin : (tensor<?x?xi1, #kiln.dims<[s, p + s]>>, tensor<?x?xi1, #kiln.dims<[s, p + s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
    %add = kiln.where %both, %zero, %ninf : (tensor<?x?xi1, #kiln.dims<[s, p + s]>>, tensor<f32>, tensor<f32>) -> tensor<?x?xf32, #kiln.dims<[s, p + s]>>
    %mask = kiln.reshape %add : tensor<?x?xf32, #kiln.dims<[s, p + s]>> -> tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>
    %e = kiln.weight @emb : tensor<16x8xf32>
    %x = kiln.gather %e, %ids {axis = 0 : i64} : (tensor<16x8xf32>, tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %r = kiln.reshape %x : tensor<?x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %q = kiln.transpose %r {perm = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %k = kiln.concat %pk, %q {axis = 2 : i64} : (tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
    %v = kiln.concat %pv, %q {axis = 2 : i64} : (tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
    %a = kiln.attention %q, %k, %v mask(%mask) {scale = 5.000000e-01 : f32} : (tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %t = kiln.transpose %a {perm = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %f = kiln.reshape %t : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %h = kiln.weight @head : tensor<8x16xf32>
    %l = kiln.matmul %f, %h : (tensor<?x?x8xf32, #kiln.dims<[b, s]>>, tensor<8x16xf32>) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>>
    return %l, %k, %v : tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
  }
}

// -----

// A window reaching past the query is not causal.
module {
  kiln.global @emb : tensor<16x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>]
  kiln.global @head : tensor<8x16xf32> [#kiln.blob<"w.bin", offset = 512, size = 512>]
  func.func @main(%ids: tensor<?x?xi64, #kiln.dims<[b, s]>> {kiln.name = "input_ids"}, %pk: tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> {kiln.name = "past.key"}, %pv: tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> {kiln.name = "past.value"}) -> (tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>) {
    %c0 = kiln.constant dense<0> : tensor<i64>
    %c1 = kiln.constant dense<1> : tensor<i64>
    %zero = kiln.constant dense<0.0> : tensor<f32>
    %ninf = kiln.constant dense<0xFF800000> : tensor<f32>
    %pl = kiln.dim %pk[2] : tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> -> tensor<i64>
    %sl = kiln.dim %ids[1] : tensor<?x?xi64, #kiln.dims<[b, s]>> -> tensor<i64>
    %tl = kiln.add %pl, %sl : (tensor<i64>, tensor<i64>) -> tensor<i64>
    %qpos = kiln.range %pl, %tl, %c1 : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64, #kiln.dims<[s]>>
    %kpos = kiln.range %c0, %tl, %c1 : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64, #kiln.dims<[p + s]>>
    %qcol = kiln.reshape %qpos : tensor<?xi64, #kiln.dims<[s]>> -> tensor<?x1xi64, #kiln.dims<[s]>>
    %causal = kiln.less_equal %kpos, %qcol : (tensor<?xi64, #kiln.dims<[p + s]>>, tensor<?x1xi64, #kiln.dims<[s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
    %w = kiln.constant dense<3> : tensor<i64>
    %lo = kiln.sub %qcol, %w : (tensor<?x1xi64, #kiln.dims<[s]>>, tensor<i64>) -> tensor<?x1xi64, #kiln.dims<[s]>>
    %inwin = kiln.greater %kpos, %lo : (tensor<?xi64, #kiln.dims<[p + s]>>, tensor<?x1xi64, #kiln.dims<[s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
    %both = kiln.and %causal, %inwin : (tensor<?x?xi1, #kiln.dims<[s, p + s]>>, tensor<?x?xi1, #kiln.dims<[s, p + s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
    %add = kiln.where %both, %zero, %ninf : (tensor<?x?xi1, #kiln.dims<[s, p + s]>>, tensor<f32>, tensor<f32>) -> tensor<?x?xf32, #kiln.dims<[s, p + s]>>
    %mask = kiln.reshape %add : tensor<?x?xf32, #kiln.dims<[s, p + s]>> -> tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>
    %e = kiln.weight @emb : tensor<16x8xf32>
    %x = kiln.gather %e, %ids {axis = 0 : i64} : (tensor<16x8xf32>, tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %r = kiln.reshape %x : tensor<?x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %q = kiln.transpose %r {perm = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %k = kiln.concat %pk, %q {axis = 2 : i64} : (tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
    %v = kiln.concat %pv, %q {axis = 2 : i64} : (tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
    // expected-error @+1 {{cannot map to the paged cache: window_right = 2 lets a query see later tokens}}
    %a = kiln.attention %q, %k, %v mask(%mask) {window_right = 2 : i64, scale = 5.000000e-01 : f32} : (tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %t = kiln.transpose %a {perm = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %f = kiln.reshape %t : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %h = kiln.weight @head : tensor<8x16xf32>
    %l = kiln.matmul %f, %h : (tensor<?x?x8xf32, #kiln.dims<[b, s]>>, tensor<8x16xf32>) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>>
    return %l, %k, %v : tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
  }
}

// -----

// A window attribute (an imported op's) carries over; with the mask's
// window the narrower one wins.
// CHECK-LABEL: func.func @main
// CHECK: kiln.paged_attention %{{.+}} {layer = 0 : i64, scale = 5.000000e-01 : f32, window = 1 : i64} :
module {
  kiln.global @emb : tensor<16x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>]
  kiln.global @head : tensor<8x16xf32> [#kiln.blob<"w.bin", offset = 512, size = 512>]
  func.func @main(%ids: tensor<?x?xi64, #kiln.dims<[b, s]>> {kiln.name = "input_ids"}, %pk: tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> {kiln.name = "past.key"}, %pv: tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> {kiln.name = "past.value"}) -> (tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>) {
    %c0 = kiln.constant dense<0> : tensor<i64>
    %c1 = kiln.constant dense<1> : tensor<i64>
    %zero = kiln.constant dense<0.0> : tensor<f32>
    %ninf = kiln.constant dense<0xFF800000> : tensor<f32>
    %pl = kiln.dim %pk[2] : tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> -> tensor<i64>
    %sl = kiln.dim %ids[1] : tensor<?x?xi64, #kiln.dims<[b, s]>> -> tensor<i64>
    %tl = kiln.add %pl, %sl : (tensor<i64>, tensor<i64>) -> tensor<i64>
    %qpos = kiln.range %pl, %tl, %c1 : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64, #kiln.dims<[s]>>
    %kpos = kiln.range %c0, %tl, %c1 : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64, #kiln.dims<[p + s]>>
    %qcol = kiln.reshape %qpos : tensor<?xi64, #kiln.dims<[s]>> -> tensor<?x1xi64, #kiln.dims<[s]>>
    %causal = kiln.less_equal %kpos, %qcol : (tensor<?xi64, #kiln.dims<[p + s]>>, tensor<?x1xi64, #kiln.dims<[s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
    %w = kiln.constant dense<3> : tensor<i64>
    %lo = kiln.sub %qcol, %w : (tensor<?x1xi64, #kiln.dims<[s]>>, tensor<i64>) -> tensor<?x1xi64, #kiln.dims<[s]>>
    %inwin = kiln.greater %kpos, %lo : (tensor<?xi64, #kiln.dims<[p + s]>>, tensor<?x1xi64, #kiln.dims<[s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
    %both = kiln.and %causal, %inwin : (tensor<?x?xi1, #kiln.dims<[s, p + s]>>, tensor<?x?xi1, #kiln.dims<[s, p + s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
    %add = kiln.where %both, %zero, %ninf : (tensor<?x?xi1, #kiln.dims<[s, p + s]>>, tensor<f32>, tensor<f32>) -> tensor<?x?xf32, #kiln.dims<[s, p + s]>>
    %mask = kiln.reshape %add : tensor<?x?xf32, #kiln.dims<[s, p + s]>> -> tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>
    %e = kiln.weight @emb : tensor<16x8xf32>
    %x = kiln.gather %e, %ids {axis = 0 : i64} : (tensor<16x8xf32>, tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %r = kiln.reshape %x : tensor<?x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %q = kiln.transpose %r {perm = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %k = kiln.concat %pk, %q {axis = 2 : i64} : (tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
    %v = kiln.concat %pv, %q {axis = 2 : i64} : (tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
    %a = kiln.attention %q, %k, %v mask(%mask) {window_left = 1 : i64, scale = 5.000000e-01 : f32} : (tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %t = kiln.transpose %a {perm = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %f = kiln.reshape %t : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %h = kiln.weight @head : tensor<8x16xf32>
    %l = kiln.matmul %f, %h : (tensor<?x?x8xf32, #kiln.dims<[b, s]>>, tensor<8x16xf32>) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>>
    return %l, %k, %v : tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
  }
}

// -----

// Every query sees every key: bidirectional, which the paged cache cannot
// give. The error says what the first query row sees.
module {
  kiln.global @emb : tensor<16x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>]
  kiln.global @head : tensor<8x16xf32> [#kiln.blob<"w.bin", offset = 512, size = 512>]
  func.func @main(%ids: tensor<?x?xi64, #kiln.dims<[b, s]>> {kiln.name = "input_ids"}, %pk: tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> {kiln.name = "past.key"}, %pv: tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> {kiln.name = "past.value"}) -> (tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>) {
    %c0 = kiln.constant dense<0> : tensor<i64>
    %c1 = kiln.constant dense<1> : tensor<i64>
    %zero = kiln.constant dense<0.0> : tensor<f32>
    %ninf = kiln.constant dense<0xFF800000> : tensor<f32>
    %pl = kiln.dim %pk[2] : tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> -> tensor<i64>
    %sl = kiln.dim %ids[1] : tensor<?x?xi64, #kiln.dims<[b, s]>> -> tensor<i64>
    %tl = kiln.add %pl, %sl : (tensor<i64>, tensor<i64>) -> tensor<i64>
    %qpos = kiln.range %pl, %tl, %c1 : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64, #kiln.dims<[s]>>
    %kpos = kiln.range %c0, %tl, %c1 : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64, #kiln.dims<[p + s]>>
    %qcol = kiln.reshape %qpos : tensor<?xi64, #kiln.dims<[s]>> -> tensor<?x1xi64, #kiln.dims<[s]>>
    %causal = kiln.less_equal %kpos, %qcol : (tensor<?xi64, #kiln.dims<[p + s]>>, tensor<?x1xi64, #kiln.dims<[s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
    %none = kiln.sub %qcol, %qcol : (tensor<?x1xi64, #kiln.dims<[s]>>, tensor<?x1xi64, #kiln.dims<[s]>>) -> tensor<?x1xi64, #kiln.dims<[s]>>
    %all = kiln.greater_equal %kpos, %none : (tensor<?xi64, #kiln.dims<[p + s]>>, tensor<?x1xi64, #kiln.dims<[s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
    %add = kiln.where %all, %zero, %ninf : (tensor<?x?xi1, #kiln.dims<[s, p + s]>>, tensor<f32>, tensor<f32>) -> tensor<?x?xf32, #kiln.dims<[s, p + s]>>
    %mask = kiln.reshape %add : tensor<?x?xf32, #kiln.dims<[s, p + s]>> -> tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>
    %e = kiln.weight @emb : tensor<16x8xf32>
    %x = kiln.gather %e, %ids {axis = 0 : i64} : (tensor<16x8xf32>, tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %r = kiln.reshape %x : tensor<?x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %q = kiln.transpose %r {perm = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %k = kiln.concat %pk, %q {axis = 2 : i64} : (tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
    %v = kiln.concat %pv, %q {axis = 2 : i64} : (tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
    // expected-error @+1 {{cannot map the attention mask to the paged cache: it is neither causal nor a sliding window: with 0 cached and 7 new tokens, the query at position 0 (head 0) sees 7 keys between positions 0 and 6 instead of the keys up to its own position}}
    %a = kiln.attention %q, %k, %v mask(%mask) {scale = 5.000000e-01 : f32} : (tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %t = kiln.transpose %a {perm = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %f = kiln.reshape %t : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %h = kiln.weight @head : tensor<8x16xf32>
    %l = kiln.matmul %f, %h : (tensor<?x?x8xf32, #kiln.dims<[b, s]>>, tensor<8x16xf32>) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>>
    return %l, %k, %v : tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
  }
}

// -----

// A distance bias (ALiBi-like) is not a mask: an error, not a silently
// unbiased attention. Later keys do not count on a causal op.
module {
  kiln.global @emb : tensor<16x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>]
  kiln.global @head : tensor<8x16xf32> [#kiln.blob<"w.bin", offset = 512, size = 512>]
  func.func @main(%ids: tensor<?x?xi64, #kiln.dims<[b, s]>> {kiln.name = "input_ids"}, %pk: tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> {kiln.name = "past.key"}, %pv: tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> {kiln.name = "past.value"}) -> (tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>) {
    %c0 = kiln.constant dense<0> : tensor<i64>
    %c1 = kiln.constant dense<1> : tensor<i64>
    %zero = kiln.constant dense<0.0> : tensor<f32>
    %ninf = kiln.constant dense<0xFF800000> : tensor<f32>
    %pl = kiln.dim %pk[2] : tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> -> tensor<i64>
    %sl = kiln.dim %ids[1] : tensor<?x?xi64, #kiln.dims<[b, s]>> -> tensor<i64>
    %tl = kiln.add %pl, %sl : (tensor<i64>, tensor<i64>) -> tensor<i64>
    %qpos = kiln.range %pl, %tl, %c1 : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64, #kiln.dims<[s]>>
    %kpos = kiln.range %c0, %tl, %c1 : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64, #kiln.dims<[p + s]>>
    %qcol = kiln.reshape %qpos : tensor<?xi64, #kiln.dims<[s]>> -> tensor<?x1xi64, #kiln.dims<[s]>>
    %causal = kiln.less_equal %kpos, %qcol : (tensor<?xi64, #kiln.dims<[p + s]>>, tensor<?x1xi64, #kiln.dims<[s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
    %dist = kiln.sub %kpos, %qcol : (tensor<?xi64, #kiln.dims<[p + s]>>, tensor<?x1xi64, #kiln.dims<[s]>>) -> tensor<?x?xi64, #kiln.dims<[s, p + s]>>
    %distf = kiln.cast %dist : tensor<?x?xi64, #kiln.dims<[s, p + s]>> -> tensor<?x?xf32, #kiln.dims<[s, p + s]>>
    %half = kiln.constant dense<0.5> : tensor<f32>
    %add = kiln.mul %distf, %half : (tensor<?x?xf32, #kiln.dims<[s, p + s]>>, tensor<f32>) -> tensor<?x?xf32, #kiln.dims<[s, p + s]>>
    %mask = kiln.reshape %add : tensor<?x?xf32, #kiln.dims<[s, p + s]>> -> tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>
    %e = kiln.weight @emb : tensor<16x8xf32>
    %x = kiln.gather %e, %ids {axis = 0 : i64} : (tensor<16x8xf32>, tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %r = kiln.reshape %x : tensor<?x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %q = kiln.transpose %r {perm = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %k = kiln.concat %pk, %q {axis = 2 : i64} : (tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
    %v = kiln.concat %pv, %q {axis = 2 : i64} : (tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
    // expected-error @+1 {{cannot map the attention mask to the paged cache: it adds -5.000000e-01 to the score of key 0 for the query at position 1 (a bias such as ALiBi)}}
    %a = kiln.attention %q, %k, %v mask(%mask) {causal, scale = 5.000000e-01 : f32} : (tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %t = kiln.transpose %a {perm = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %f = kiln.reshape %t : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %h = kiln.weight @head : tensor<8x16xf32>
    %l = kiln.matmul %f, %h : (tensor<?x?x8xf32, #kiln.dims<[b, s]>>, tensor<8x16xf32>) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>>
    return %l, %k, %v : tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
  }
}

// -----

// A window that is no window: keys from half the position on.
module {
  kiln.global @emb : tensor<16x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>]
  kiln.global @head : tensor<8x16xf32> [#kiln.blob<"w.bin", offset = 512, size = 512>]
  func.func @main(%ids: tensor<?x?xi64, #kiln.dims<[b, s]>> {kiln.name = "input_ids"}, %pk: tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> {kiln.name = "past.key"}, %pv: tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> {kiln.name = "past.value"}) -> (tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>) {
    %c0 = kiln.constant dense<0> : tensor<i64>
    %c1 = kiln.constant dense<1> : tensor<i64>
    %zero = kiln.constant dense<0.0> : tensor<f32>
    %ninf = kiln.constant dense<0xFF800000> : tensor<f32>
    %pl = kiln.dim %pk[2] : tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> -> tensor<i64>
    %sl = kiln.dim %ids[1] : tensor<?x?xi64, #kiln.dims<[b, s]>> -> tensor<i64>
    %tl = kiln.add %pl, %sl : (tensor<i64>, tensor<i64>) -> tensor<i64>
    %qpos = kiln.range %pl, %tl, %c1 : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64, #kiln.dims<[s]>>
    %kpos = kiln.range %c0, %tl, %c1 : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64, #kiln.dims<[p + s]>>
    %qcol = kiln.reshape %qpos : tensor<?xi64, #kiln.dims<[s]>> -> tensor<?x1xi64, #kiln.dims<[s]>>
    %causal = kiln.less_equal %kpos, %qcol : (tensor<?xi64, #kiln.dims<[p + s]>>, tensor<?x1xi64, #kiln.dims<[s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
    %two = kiln.constant dense<2> : tensor<i64>
    %lo = kiln.div %qcol, %two : (tensor<?x1xi64, #kiln.dims<[s]>>, tensor<i64>) -> tensor<?x1xi64, #kiln.dims<[s]>>
    %inwin = kiln.greater_equal %kpos, %lo : (tensor<?xi64, #kiln.dims<[p + s]>>, tensor<?x1xi64, #kiln.dims<[s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
    %both = kiln.and %causal, %inwin : (tensor<?x?xi1, #kiln.dims<[s, p + s]>>, tensor<?x?xi1, #kiln.dims<[s, p + s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
    %add = kiln.where %both, %zero, %ninf : (tensor<?x?xi1, #kiln.dims<[s, p + s]>>, tensor<f32>, tensor<f32>) -> tensor<?x?xf32, #kiln.dims<[s, p + s]>>
    %mask = kiln.reshape %add : tensor<?x?xf32, #kiln.dims<[s, p + s]>> -> tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>
    %e = kiln.weight @emb : tensor<16x8xf32>
    %x = kiln.gather %e, %ids {axis = 0 : i64} : (tensor<16x8xf32>, tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %r = kiln.reshape %x : tensor<?x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %q = kiln.transpose %r {perm = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %k = kiln.concat %pk, %q {axis = 2 : i64} : (tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
    %v = kiln.concat %pv, %q {axis = 2 : i64} : (tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
    // expected-error @+1 {{cannot map the attention mask to the paged cache: its window changes}}
    %a = kiln.attention %q, %k, %v mask(%mask) {scale = 5.000000e-01 : f32} : (tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %t = kiln.transpose %a {perm = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %f = kiln.reshape %t : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %h = kiln.weight @head : tensor<8x16xf32>
    %l = kiln.matmul %f, %h : (tensor<?x?x8xf32, #kiln.dims<[b, s]>>, tensor<8x16xf32>) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>>
    return %l, %k, %v : tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
  }
}

// -----

// An op the check does not evaluate is named.
module {
  kiln.global @emb : tensor<16x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>]
  kiln.global @head : tensor<8x16xf32> [#kiln.blob<"w.bin", offset = 512, size = 512>]
  func.func @main(%ids: tensor<?x?xi64, #kiln.dims<[b, s]>> {kiln.name = "input_ids"}, %pk: tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> {kiln.name = "past.key"}, %pv: tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> {kiln.name = "past.value"}) -> (tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>) {
    %c0 = kiln.constant dense<0> : tensor<i64>
    %c1 = kiln.constant dense<1> : tensor<i64>
    %zero = kiln.constant dense<0.0> : tensor<f32>
    %ninf = kiln.constant dense<0xFF800000> : tensor<f32>
    %pl = kiln.dim %pk[2] : tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> -> tensor<i64>
    %sl = kiln.dim %ids[1] : tensor<?x?xi64, #kiln.dims<[b, s]>> -> tensor<i64>
    %tl = kiln.add %pl, %sl : (tensor<i64>, tensor<i64>) -> tensor<i64>
    %qpos = kiln.range %pl, %tl, %c1 : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64, #kiln.dims<[s]>>
    %kpos = kiln.range %c0, %tl, %c1 : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64, #kiln.dims<[p + s]>>
    %qcol = kiln.reshape %qpos : tensor<?xi64, #kiln.dims<[s]>> -> tensor<?x1xi64, #kiln.dims<[s]>>
    %causal = kiln.less_equal %kpos, %qcol : (tensor<?xi64, #kiln.dims<[p + s]>>, tensor<?x1xi64, #kiln.dims<[s]>>) -> tensor<?x?xi1, #kiln.dims<[s, p + s]>>
    // expected-note @+1 {{at this op}}
    %one = kiln.exp %zero : tensor<f32>
    %add = kiln.where %causal, %one, %ninf : (tensor<?x?xi1, #kiln.dims<[s, p + s]>>, tensor<f32>, tensor<f32>) -> tensor<?x?xf32, #kiln.dims<[s, p + s]>>
    %mask = kiln.reshape %add : tensor<?x?xf32, #kiln.dims<[s, p + s]>> -> tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>
    %e = kiln.weight @emb : tensor<16x8xf32>
    %x = kiln.gather %e, %ids {axis = 0 : i64} : (tensor<16x8xf32>, tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %r = kiln.reshape %x : tensor<?x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %q = kiln.transpose %r {perm = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %k = kiln.concat %pk, %q {axis = 2 : i64} : (tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
    %v = kiln.concat %pv, %q {axis = 2 : i64} : (tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
    // expected-error @+1 {{cannot check the attention mask before mapping it to the paged cache: 'kiln.exp' is not among the ops the mask check evaluates}}
    %a = kiln.attention %q, %k, %v mask(%mask) {scale = 5.000000e-01 : f32} : (tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<1x1x?x?xf32, #kiln.dims<[s, p + s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %t = kiln.transpose %a {perm = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %f = kiln.reshape %t : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %h = kiln.weight @head : tensor<8x16xf32>
    %l = kiln.matmul %f, %h : (tensor<?x?x8xf32, #kiln.dims<[b, s]>>, tensor<8x16xf32>) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>>
    return %l, %k, %v : tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
  }
}
