// RUN: kiln-opt %s --split-input-file --kiln-insert-kv-cache --verify-diagnostics | FileCheck %s

// Past/present concatenation (Optimum, torch.onnx): the past arguments and
// present results go, attention reads and writes the paged cache, the batch
// becomes 1 and the tokens the symbol `tokens`, the logits matmul reads the
// requested rows only.
// CHECK-LABEL: func.func @main
// CHECK-SAME: %[[IDS:[a-z0-9]+]]: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.name = "input_ids", kiln.step_input = "token_ids"}
// CHECK-SAME: %[[CACHE:[a-z0-9]+]]: !kiln.kv_cache<layers = 1, heads = 2, head_dim = 4, block = 16, f32> {kiln.name = "kv_cache", kiln.step_input = "kv_cache"}
// CHECK-SAME: %[[ROWS:[a-z0-9]+]]: tensor<?xi64, #kiln.dims<[logit_rows]>> {kiln.name = "logit_rows", kiln.step_input = "logit_rows"}
// CHECK-SAME: -> tensor<1x?x16xf32, #kiln.dims<[logit_rows]>>
// CHECK-NOT: kiln.concat
// CHECK: %[[Q:.+]] = kiln.transpose
// CHECK: kiln.paged_attention %[[CACHE]], %[[Q]], %[[Q]], %[[Q]] {layer = 0 : i64, scale = 5.000000e-01 : f32}
// CHECK: %[[SEL:.+]] = kiln.gather %{{.+}}, %[[ROWS]] {axis = 1 : i64}
// CHECK: %[[LOGITS:.+]] = kiln.matmul %[[SEL]]
// CHECK: return %[[LOGITS]] : tensor<1x?x16xf32, #kiln.dims<[logit_rows]>>
module {
  kiln.global @emb : tensor<16x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>]
  kiln.global @head : tensor<8x16xf32> [#kiln.blob<"w.bin", offset = 512, size = 512>]
  func.func @main(%ids: tensor<?x?xi64, #kiln.dims<[b, s]>> {kiln.name = "input_ids"}, %pk: tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> {kiln.name = "past.key"}, %pv: tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> {kiln.name = "past.value"}) -> (tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>) {
    %e = kiln.weight @emb : tensor<16x8xf32>
    %x = kiln.gather %e, %ids {axis = 0 : i64} : (tensor<16x8xf32>, tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %r = kiln.reshape %x : tensor<?x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %q = kiln.transpose %r {perm = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %k = kiln.concat %pk, %q {axis = 2 : i64} : (tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
    %v = kiln.concat %pv, %q {axis = 2 : i64} : (tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
    %a = kiln.attention %q, %k, %v {causal, scale = 5.000000e-01 : f32} : (tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %t = kiln.transpose %a {perm = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %f = kiln.reshape %t : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %h = kiln.weight @head : tensor<8x16xf32>
    %l = kiln.matmul %f, %h : (tensor<?x?x8xf32, #kiln.dims<[b, s]>>, tensor<8x16xf32>) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>>
    return %l, %k, %v : tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
  }
}

// -----

// A sliding window is not mapped yet: an error, not a silently wider window.
module {
  kiln.global @emb : tensor<16x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>]
  kiln.global @head : tensor<8x16xf32> [#kiln.blob<"w.bin", offset = 512, size = 512>]
  func.func @main(%ids: tensor<?x?xi64, #kiln.dims<[b, s]>> {kiln.name = "input_ids"}, %pk: tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> {kiln.name = "past.key"}, %pv: tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> {kiln.name = "past.value"}) -> (tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>) {
    %e = kiln.weight @emb : tensor<16x8xf32>
    %x = kiln.gather %e, %ids {axis = 0 : i64} : (tensor<16x8xf32>, tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %r = kiln.reshape %x : tensor<?x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %q = kiln.transpose %r {perm = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %k = kiln.concat %pk, %q {axis = 2 : i64} : (tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
    %v = kiln.concat %pv, %q {axis = 2 : i64} : (tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
    // expected-error @+1 {{cannot map to the paged cache: sliding-window attention is not supported yet}}
    %a = kiln.attention %q, %k, %v {causal, scale = 5.000000e-01 : f32, window_left = 4 : i64} : (tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %t = kiln.transpose %a {perm = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %f = kiln.reshape %t : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %h = kiln.weight @head : tensor<8x16xf32>
    %l = kiln.matmul %f, %h : (tensor<?x?x8xf32, #kiln.dims<[b, s]>>, tensor<8x16xf32>) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>>
    return %l, %k, %v : tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
  }
}

// -----

// Without a cache and without a causal flag or mask, attention is
// bidirectional: not a decoder.
module {
  kiln.global @emb : tensor<16x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>]
  kiln.global @head : tensor<8x16xf32> [#kiln.blob<"w.bin", offset = 512, size = 512>]
  func.func @main(%ids: tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>> {
    %e = kiln.weight @emb : tensor<16x8xf32>
    %x = kiln.gather %e, %ids {axis = 0 : i64} : (tensor<16x8xf32>, tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %r = kiln.reshape %x : tensor<?x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %q = kiln.transpose %r {perm = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    // expected-error @+1 {{cannot map to the paged cache: attention is neither causal nor masked (bidirectional)}}
    %a = kiln.attention %q, %q, %q {scale = 5.000000e-01 : f32} : (tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %t = kiln.transpose %a {perm = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %f = kiln.reshape %t : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %h = kiln.weight @head : tensor<8x16xf32>
    %l = kiln.matmul %f, %h : (tensor<?x?x8xf32, #kiln.dims<[b, s]>>, tensor<8x16xf32>) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>>
    return %l : tensor<?x?x16xf32, #kiln.dims<[b, s]>>
  }
}

// -----

// A mask computed from a weight is not a causal/padding mask.
module {
  kiln.global @emb : tensor<16x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>]
  kiln.global @bias : tensor<1x1x16x16xf32> [#kiln.blob<"w.bin", offset = 1024, size = 1024>]
  kiln.global @head : tensor<8x16xf32> [#kiln.blob<"w.bin", offset = 512, size = 512>]
  func.func @main(%ids: tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>> {
    %e = kiln.weight @emb : tensor<16x8xf32>
    %x = kiln.gather %e, %ids {axis = 0 : i64} : (tensor<16x8xf32>, tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %r = kiln.reshape %x : tensor<?x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %q = kiln.transpose %r {perm = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %m = kiln.weight @bias : tensor<1x1x16x16xf32>
    // expected-error @+1 {{cannot map the attention mask to the paged cache: it reads a weight, so it is not a causal/padding mask}}
    %a = kiln.attention %q, %q, %q mask(%m) {scale = 5.000000e-01 : f32} : (tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>, tensor<1x1x16x16xf32>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %t = kiln.transpose %a {perm = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %f = kiln.reshape %t : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %h = kiln.weight @head : tensor<8x16xf32>
    %l = kiln.matmul %f, %h : (tensor<?x?x8xf32, #kiln.dims<[b, s]>>, tensor<8x16xf32>) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>>
    return %l : tensor<?x?x16xf32, #kiln.dims<[b, s]>>
  }
}

// -----

// Nothing to do without attention.
// CHECK-LABEL: func.func @main
// CHECK-SAME: (%[[X:.+]]: tensor<?x8xf32, #kiln.dims<[s]>>)
// CHECK-NEXT: kiln.neg %[[X]]
module {
  func.func @main(%x: tensor<?x8xf32, #kiln.dims<[s]>>) -> tensor<?x8xf32, #kiln.dims<[s]>> {
    %y = kiln.neg %x : tensor<?x8xf32, #kiln.dims<[s]>>
    return %y : tensor<?x8xf32, #kiln.dims<[s]>>
  }
}
