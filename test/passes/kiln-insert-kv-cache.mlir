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

// The rebuilt logits matmul keeps its accuracy_level (MatMulNBits': how
// precisely onnxruntime multiplies, which the backend follows).
// CHECK-LABEL: func.func @main
// CHECK: %[[SEL:.+]] = kiln.gather %{{.+}}, %{{.+}} {axis = 1 : i64}
// CHECK: kiln.matmul %[[SEL]], %{{.+}} {accuracy_level = 4 : i64} : (tensor<1x?x8xf32, #kiln.dims<[logit_rows]>>
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
    %l = kiln.matmul %f, %h {accuracy_level = 4 : i64} : (tensor<?x?x8xf32, #kiln.dims<[b, s]>>, tensor<8x16xf32>) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>>
    return %l, %k, %v : tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
  }
}

// -----

// An imported sliding window (window_left) becomes the paged attention's.
// CHECK-LABEL: func.func @main
// CHECK: kiln.paged_attention %{{.+}} {layer = 0 : i64, scale = 5.000000e-01 : f32, window = 4 : i64} :
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

// -----

// A shared-buffer cache (ORT GenAI GroupQueryAttention): the new keys and
// values are scattered into a buffer whose capacity is not the number of
// valid tokens; key_lengths (from the padding mask) says how many are. The
// paged cache holds exactly the valid tokens, so the scatter, key_lengths
// and the mask go; the rotary positions, computed from the mask as
// (valid - tokens) + range(tokens), become the step's positions; the
// buffer's symbolic head size (`d`) takes the new values' 4.
// CHECK-LABEL: func.func @main
// CHECK-SAME: %[[IDS:[a-z0-9]+]]: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.name = "input_ids", kiln.step_input = "token_ids"}
// CHECK-SAME: %[[CACHE:[a-z0-9]+]]: !kiln.kv_cache<layers = 1, heads = 2, head_dim = 4, block = 16, f32>
// CHECK-SAME: %[[POS:[a-z0-9]+]]: tensor<1x?xi64, #kiln.dims<[tokens]>> {kiln.name = "positions", kiln.step_input = "positions"}
// CHECK-SAME: %[[ROWS:[a-z0-9]+]]: tensor<?xi64, #kiln.dims<[logit_rows]>>
// CHECK-NOT: kiln.scatter_nd
// CHECK-NOT: kiln.reduce_sum
// CHECK: %[[Q:.+]] = kiln.transpose
// CHECK: %[[QR:.+]] = kiln.rotary %[[Q]], %{{.+}}, %{{.+}}, %[[POS]]
// CHECK: kiln.paged_attention %[[CACHE]], %[[QR]], %[[QR]], %[[Q]] {layer = 0 : i64, scale = 5.000000e-01 : f32} {{.*}} -> tensor<1x2x?x4xf32, #kiln.dims<[tokens]>>
// CHECK: kiln.reshape %{{.+}} : tensor<1x?x2x4xf32, #kiln.dims<[tokens]>> -> tensor<1x?x8xf32, #kiln.dims<[tokens]>>
module {
  kiln.global @emb : tensor<16x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>]
  kiln.global @head : tensor<8x16xf32> [#kiln.blob<"w.bin", offset = 512, size = 512>]
  kiln.global @cos : tensor<32x2xf32> [#kiln.blob<"w.bin", offset = 1024, size = 256>]
  kiln.global @sin : tensor<32x2xf32> [#kiln.blob<"w.bin", offset = 1280, size = 256>]
  func.func @main(%ids: tensor<?x?xi64, #kiln.dims<[b, s]>> {kiln.name = "input_ids"}, %mask: tensor<?x?xi64, #kiln.dims<[b, t]>> {kiln.name = "attention_mask"}, %pk: tensor<?x2x?x?xf32, #kiln.dims<[b, p, d]>> {kiln.name = "past.key"}, %pv: tensor<?x2x?x?xf32, #kiln.dims<[b, p, d]>> {kiln.name = "past.value"}) -> (tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x?xf32, #kiln.dims<[b, p + s, d]>>, tensor<?x2x?x?xf32, #kiln.dims<[b, p + s, d]>>) {
    %c0 = kiln.constant dense<0> : tensor<i64>
    %c1 = kiln.constant dense<1> : tensor<i64>
    %cos = kiln.weight @cos : tensor<32x2xf32>
    %sin = kiln.weight @sin : tensor<32x2xf32>
    %valid = kiln.reduce_sum %mask {axes = array<i64: 1>} : tensor<?x?xi64, #kiln.dims<[b, t]>> -> tensor<?xi64, #kiln.dims<[b]>>
    %e = kiln.weight @emb : tensor<16x8xf32>
    %x = kiln.gather %e, %ids {axis = 0 : i64} : (tensor<16x8xf32>, tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %r = kiln.reshape %x : tensor<?x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %q = kiln.transpose %r {perm = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %n = kiln.dim %q[2] : tensor<?x2x?x4xf32, #kiln.dims<[b, s]>> -> tensor<i64>
    %range = kiln.range %c0, %n, %c1 : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64, #kiln.dims<[s]>>
    %start = kiln.sub %valid, %n : (tensor<?xi64, #kiln.dims<[b]>>, tensor<i64>) -> tensor<?xi64, #kiln.dims<[b]>>
    %start2 = kiln.reshape %start : tensor<?xi64, #kiln.dims<[b]>> -> tensor<?x1xi64, #kiln.dims<[b]>>
    %range2 = kiln.reshape %range : tensor<?xi64, #kiln.dims<[s]>> -> tensor<1x?xi64, #kiln.dims<[s]>>
    %pos = kiln.add %start2, %range2 : (tensor<?x1xi64, #kiln.dims<[b]>>, tensor<1x?xi64, #kiln.dims<[s]>>) -> tensor<?x?xi64, #kiln.dims<[b, s]>>
    %qr = kiln.rotary %q, %cos, %sin, %pos {rotary_dim = 4 : i64} : (tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>, tensor<32x2xf32>, tensor<32x2xf32>, tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %pos3 = kiln.reshape %pos : tensor<?x?xi64, #kiln.dims<[b, s]>> -> tensor<?x?x1xi64, #kiln.dims<[b, s]>>
    %batch3 = kiln.sub %pos3, %pos3 : (tensor<?x?x1xi64, #kiln.dims<[b, s]>>, tensor<?x?x1xi64, #kiln.dims<[b, s]>>) -> tensor<?x?x1xi64, #kiln.dims<[b, s]>>
    %idx = kiln.concat %batch3, %pos3 {axis = 2 : i64} : (tensor<?x?x1xi64, #kiln.dims<[b, s]>>, tensor<?x?x1xi64, #kiln.dims<[b, s]>>) -> tensor<?x?x2xi64, #kiln.dims<[b, s]>>
    %kbuf = kiln.transpose %pk {perm = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x?xf32, #kiln.dims<[b, p, d]>> -> tensor<?x?x2x?xf32, #kiln.dims<[b, p, d]>>
    %knew = kiln.transpose %qr {perm = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %ks = kiln.scatter_nd %kbuf, %idx, %knew : (tensor<?x?x2x?xf32, #kiln.dims<[b, p, d]>>, tensor<?x?x2xi64, #kiln.dims<[b, s]>>, tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x?x2x?xf32, #kiln.dims<[b, p + s, d]>>
    %k = kiln.transpose %ks {perm = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x?xf32, #kiln.dims<[b, p + s, d]>> -> tensor<?x2x?x?xf32, #kiln.dims<[b, p + s, d]>>
    %vbuf = kiln.transpose %pv {perm = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x?xf32, #kiln.dims<[b, p, d]>> -> tensor<?x?x2x?xf32, #kiln.dims<[b, p, d]>>
    %vnew = kiln.transpose %q {perm = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %vs = kiln.scatter_nd %vbuf, %idx, %vnew : (tensor<?x?x2x?xf32, #kiln.dims<[b, p, d]>>, tensor<?x?x2xi64, #kiln.dims<[b, s]>>, tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x?x2x?xf32, #kiln.dims<[b, p + s, d]>>
    %v = kiln.transpose %vs {perm = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x?xf32, #kiln.dims<[b, p + s, d]>> -> tensor<?x2x?x?xf32, #kiln.dims<[b, p + s, d]>>
    %a = kiln.attention %qr, %k, %v key_lengths(%valid) {causal, scale = 5.000000e-01 : f32} : (tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x?xf32, #kiln.dims<[b, p + s, d]>>, tensor<?x2x?x?xf32, #kiln.dims<[b, p + s, d]>>, tensor<?xi64, #kiln.dims<[b]>>) -> tensor<?x2x?x?xf32, #kiln.dims<[b, s, d]>>
    %t = kiln.transpose %a {perm = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x?xf32, #kiln.dims<[b, s, d]>> -> tensor<?x?x2x?xf32, #kiln.dims<[b, s, d]>>
    %f = kiln.reshape %t : tensor<?x?x2x?xf32, #kiln.dims<[b, s, d]>> -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %h = kiln.weight @head : tensor<8x16xf32>
    %l = kiln.matmul %f, %h : (tensor<?x?x8xf32, #kiln.dims<[b, s]>>, tensor<8x16xf32>) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>>
    return %l, %k, %v : tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x?xf32, #kiln.dims<[b, p + s, d]>>, tensor<?x2x?x?xf32, #kiln.dims<[b, p + s, d]>>
  }
}

// -----

// key_lengths computed from something other than the padding mask (here a
// weight) would make the paged cache attend over the wrong keys: refused.
module {
  kiln.global @emb : tensor<16x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>]
  kiln.global @head : tensor<8x16xf32> [#kiln.blob<"w.bin", offset = 512, size = 512>]
  kiln.global @lens : tensor<1xi64> [#kiln.blob<"w.bin", offset = 1024, size = 8>]
  func.func @main(%ids: tensor<?x?xi64, #kiln.dims<[b, s]>> {kiln.name = "input_ids"}, %pk: tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> {kiln.name = "past.key"}, %pv: tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> {kiln.name = "past.value"}) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>> {
    %valid = kiln.weight @lens : tensor<1xi64>
    %e = kiln.weight @emb : tensor<16x8xf32>
    %x = kiln.gather %e, %ids {axis = 0 : i64} : (tensor<16x8xf32>, tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %r = kiln.reshape %x : tensor<?x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %q = kiln.transpose %r {perm = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %idx = kiln.constant dense<0> : tensor<1x1x2xi64>
    %kbuf = kiln.transpose %pk {perm = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, p]>>
    %knew = kiln.transpose %q {perm = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %ks = kiln.scatter_nd %kbuf, %idx, %knew : (tensor<?x?x2x4xf32, #kiln.dims<[b, p]>>, tensor<1x1x2xi64>, tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x?x2x4xf32, #kiln.dims<[b, p]>>
    %k = kiln.transpose %ks {perm = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x4xf32, #kiln.dims<[b, p]>> -> tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>
    %vbuf = kiln.transpose %pv {perm = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, p]>>
    %vs = kiln.scatter_nd %vbuf, %idx, %knew : (tensor<?x?x2x4xf32, #kiln.dims<[b, p]>>, tensor<1x1x2xi64>, tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x?x2x4xf32, #kiln.dims<[b, p]>>
    %v = kiln.transpose %vs {perm = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x4xf32, #kiln.dims<[b, p]>> -> tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>
    // expected-error @+1 {{cannot map the attention mask to the paged cache: it reads a weight}}
    %a = kiln.attention %q, %k, %v key_lengths(%valid) {causal, scale = 5.000000e-01 : f32} : (tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>, tensor<1xi64>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %t = kiln.transpose %a {perm = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %f = kiln.reshape %t : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %h = kiln.weight @head : tensor<8x16xf32>
    %l = kiln.matmul %f, %h : (tensor<?x?x8xf32, #kiln.dims<[b, s]>>, tensor<8x16xf32>) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>>
    return %l : tensor<?x?x16xf32, #kiln.dims<[b, s]>>
  }
}

// -----

// key_lengths over a cache that is neither concatenated nor scattered into.
module {
  kiln.global @emb : tensor<16x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>]
  kiln.global @head : tensor<8x16xf32> [#kiln.blob<"w.bin", offset = 512, size = 512>]
  func.func @main(%ids: tensor<?x?xi64, #kiln.dims<[b, s]>> {kiln.name = "input_ids"}, %mask: tensor<?x?xi64, #kiln.dims<[b, t]>> {kiln.name = "attention_mask"}, %pk: tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> {kiln.name = "past.key"}, %pv: tensor<?x2x?x4xf32, #kiln.dims<[b, p]>> {kiln.name = "past.value"}) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>> {
    %valid = kiln.reduce_sum %mask {axes = array<i64: 1>} : tensor<?x?xi64, #kiln.dims<[b, t]>> -> tensor<?xi64, #kiln.dims<[b]>>
    %e = kiln.weight @emb : tensor<16x8xf32>
    %x = kiln.gather %e, %ids {axis = 0 : i64} : (tensor<16x8xf32>, tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %r = kiln.reshape %x : tensor<?x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %q = kiln.transpose %r {perm = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    // expected-error @+1 {{attention with key_lengths must read a shared buffer that the new keys and values are scattered into}}
    %a = kiln.attention %q, %pk, %pv key_lengths(%valid) {causal, scale = 5.000000e-01 : f32} : (tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p]>>, tensor<?xi64, #kiln.dims<[b]>>) -> tensor<?x2x?x4xf32, #kiln.dims<[b, s]>>
    %t = kiln.transpose %a {perm = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x2x4xf32, #kiln.dims<[b, s]>>
    %f = kiln.reshape %t : tensor<?x?x2x4xf32, #kiln.dims<[b, s]>> -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
    %h = kiln.weight @head : tensor<8x16xf32>
    %l = kiln.matmul %f, %h : (tensor<?x?x8xf32, #kiln.dims<[b, s]>>, tensor<8x16xf32>) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>>
    return %l : tensor<?x?x16xf32, #kiln.dims<[b, s]>>
  }
}

// -----

// Elementwise ops with constants after the logits matmul (a bias, soft-
// capping) run again on the selected rows.
// CHECK-LABEL: func.func @main
// CHECK: %[[SEL:.+]] = kiln.gather %{{.+}}, %{{.+}} {axis = 1 : i64}
// CHECK-NEXT: %[[HEAD:.+]] = kiln.matmul %[[SEL]]
// CHECK-NEXT: %[[B:.+]] = kiln.add %{{.+}}, %[[HEAD]] : (tensor<16xf32>, tensor<1x?x16xf32, #kiln.dims<[logit_rows]>>) -> tensor<1x?x16xf32, #kiln.dims<[logit_rows]>>
// CHECK-NEXT: %[[T:.+]] = kiln.tanh %[[B]] : tensor<1x?x16xf32, #kiln.dims<[logit_rows]>>
// CHECK-NEXT: return %[[T]]
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
    %m = kiln.matmul %f, %h : (tensor<?x?x8xf32, #kiln.dims<[b, s]>>, tensor<8x16xf32>) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>>
    %bias = kiln.constant dense<1.0> : tensor<16xf32>
    %biased = kiln.add %bias, %m : (tensor<16xf32>, tensor<?x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>>
    %l = kiln.tanh %biased : tensor<?x?x16xf32, #kiln.dims<[b, s]>>
    return %l, %k, %v : tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
  }
}


// -----

// What follows the logits matmul must act on each row alone: an op mixing
// two token-shaped values is refused.
module {
  kiln.global @emb : tensor<16x8xf32> [#kiln.blob<"w.bin", offset = 0, size = 512>]
  kiln.global @head : tensor<8x16xf32> [#kiln.blob<"w.bin", offset = 512, size = 512>]
  // expected-error @+1 {{the logits output is not a matmul of the hidden states with a static 2-D matrix (followed by elementwise ops with constants, at most); cannot select logit rows}}
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
    %m = kiln.matmul %f, %h : (tensor<?x?x8xf32, #kiln.dims<[b, s]>>, tensor<8x16xf32>) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>>
    %l = kiln.add %m, %m : (tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>>
    return %l, %k, %v : tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>, tensor<?x2x?x4xf32, #kiln.dims<[b, p + s]>>
  }
}

