// RUN: kiln-opt %s -kiln-raise-rotary -split-input-file | FileCheck %s

// Llama/SmolLM2 (torch.onnx): C = reshape(cos(concat(f, f)) * scale) and S
// alike; x * C + rotate_half(x) * S. The op takes cos(f) * scale, one
// row of 8 per token.
// CHECK-LABEL: func.func @half_split
// CHECK-SAME: (%[[X:[^:]+]]: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, %[[F:[^:]+]]: tensor<?x?x8xf32, #kiln.dims<[b, s]>>)
// CHECK-DAG: %[[SCALE:.+]] = kiln.constant dense<1.500000e+00> : tensor<f32>
// CHECK-DAG: %[[COS:.+]] = kiln.cos %[[F]] : tensor<?x?x8xf32, #kiln.dims<[b, s]>>
// CHECK-DAG: %[[C:.+]] = kiln.mul %[[COS]], %[[SCALE]] : (tensor<?x?x8xf32, #kiln.dims<[b, s]>>, tensor<f32>) -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
// CHECK-DAG: %[[SIN:.+]] = kiln.sin %[[F]] : tensor<?x?x8xf32, #kiln.dims<[b, s]>>
// CHECK-DAG: %[[S:.+]] = kiln.mul %[[SIN]], %[[SCALE]] : (tensor<?x?x8xf32, #kiln.dims<[b, s]>>, tensor<f32>) -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
// CHECK: %[[Y:.+]] = kiln.rotary %[[X]], %[[C]], %[[S]] {rotary_dim = 16 : i64} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
// CHECK-NEXT: return %[[Y]]
// CHECK-NOT: kiln.neg
func.func @half_split(%x: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, %f: tensor<?x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> {
  %ff = kiln.concat %f, %f {axis = 2 : i64} : (tensor<?x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>>
  %k2 = kiln.constant dense<1.5> : tensor<f32>
  %cos = kiln.cos %ff : tensor<?x?x16xf32, #kiln.dims<[b, s]>>
  %cs = kiln.mul %cos, %k2 : (tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<f32>) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>>
  %sin = kiln.sin %ff : tensor<?x?x16xf32, #kiln.dims<[b, s]>>
  %ss = kiln.mul %sin, %k2 : (tensor<?x?x16xf32, #kiln.dims<[b, s]>>, tensor<f32>) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>>
  %c = kiln.reshape %cs : tensor<?x?x16xf32, #kiln.dims<[b, s]>> -> tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>
  %s = kiln.reshape %ss : tensor<?x?x16xf32, #kiln.dims<[b, s]>> -> tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>
  %k9 = kiln.constant dense<0> : tensor<1xi64>
  %k10 = kiln.constant dense<8> : tensor<1xi64>
  %x1 = kiln.slice %x, %k9, %k10 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %k12 = kiln.constant dense<9223372036854775807> : tensor<1xi64>
  %x2 = kiln.slice %x, %k10, %k12 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %nx2 = kiln.neg %x2 : tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %rot = kiln.concat %nx2, %x1 {axis = 3 : i64} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %xc = kiln.mul %x, %c : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %rs = kiln.mul %rot, %s : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %y = kiln.add %xc, %rs : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  return %y : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
}

// -----

// Every operand order, the negation as a product with -1, angles shared by
// the batch ([1, 1, s, d]): cos/sin become [1, s, 8].
// CHECK-LABEL: func.func @operand_orders
// CHECK-SAME: (%[[X:[^:]+]]: tensor<2x4x?x16xf32, #kiln.dims<[s]>>, %[[F:[^:]+]]: tensor<1x1x?x8xf32, #kiln.dims<[s]>>)
// CHECK-DAG: %[[COS:.+]] = kiln.cos %[[F]] : tensor<1x1x?x8xf32, #kiln.dims<[s]>>
// CHECK-DAG: %[[C:.+]] = kiln.reshape %[[COS]] : tensor<1x1x?x8xf32, #kiln.dims<[s]>> -> tensor<1x?x8xf32, #kiln.dims<[s]>>
// CHECK-DAG: %[[SIN:.+]] = kiln.sin %[[F]] : tensor<1x1x?x8xf32, #kiln.dims<[s]>>
// CHECK-DAG: %[[S:.+]] = kiln.reshape %[[SIN]] : tensor<1x1x?x8xf32, #kiln.dims<[s]>> -> tensor<1x?x8xf32, #kiln.dims<[s]>>
// CHECK: %[[Y:.+]] = kiln.rotary %[[X]], %[[C]], %[[S]] {rotary_dim = 16 : i64} : (tensor<2x4x?x16xf32, #kiln.dims<[s]>>, tensor<1x?x8xf32, #kiln.dims<[s]>>, tensor<1x?x8xf32, #kiln.dims<[s]>>) -> tensor<2x4x?x16xf32, #kiln.dims<[s]>>
// CHECK-NEXT: return %[[Y]]
func.func @operand_orders(%x: tensor<2x4x?x16xf32, #kiln.dims<[s]>>, %f: tensor<1x1x?x8xf32, #kiln.dims<[s]>>) -> tensor<2x4x?x16xf32, #kiln.dims<[s]>> {
  %ff = kiln.concat %f, %f {axis = 3 : i64} : (tensor<1x1x?x8xf32, #kiln.dims<[s]>>, tensor<1x1x?x8xf32, #kiln.dims<[s]>>) -> tensor<1x1x?x16xf32, #kiln.dims<[s]>>
  %c = kiln.cos %ff : tensor<1x1x?x16xf32, #kiln.dims<[s]>>
  %s = kiln.sin %ff : tensor<1x1x?x16xf32, #kiln.dims<[s]>>
  %k4 = kiln.constant dense<0> : tensor<1xi64>
  %k5 = kiln.constant dense<8> : tensor<1xi64>
  %x1 = kiln.slice %x, %k4, %k5 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<2x4x?x16xf32, #kiln.dims<[s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<2x4x?x8xf32, #kiln.dims<[s]>>
  %k7 = kiln.constant dense<9223372036854775807> : tensor<1xi64>
  %x2 = kiln.slice %x, %k5, %k7 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<2x4x?x16xf32, #kiln.dims<[s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<2x4x?x8xf32, #kiln.dims<[s]>>
  %k9 = kiln.constant dense<-1.0> : tensor<f32>
  %nx2 = kiln.mul %x2, %k9 : (tensor<2x4x?x8xf32, #kiln.dims<[s]>>, tensor<f32>) -> tensor<2x4x?x8xf32, #kiln.dims<[s]>>
  %rot = kiln.concat %nx2, %x1 {axis = 3 : i64} : (tensor<2x4x?x8xf32, #kiln.dims<[s]>>, tensor<2x4x?x8xf32, #kiln.dims<[s]>>) -> tensor<2x4x?x16xf32, #kiln.dims<[s]>>
  %sr = kiln.mul %s, %rot : (tensor<1x1x?x16xf32, #kiln.dims<[s]>>, tensor<2x4x?x16xf32, #kiln.dims<[s]>>) -> tensor<2x4x?x16xf32, #kiln.dims<[s]>>
  %cx = kiln.mul %c, %x : (tensor<1x1x?x16xf32, #kiln.dims<[s]>>, tensor<2x4x?x16xf32, #kiln.dims<[s]>>) -> tensor<2x4x?x16xf32, #kiln.dims<[s]>>
  %y = kiln.add %sr, %cx : (tensor<2x4x?x16xf32, #kiln.dims<[s]>>, tensor<2x4x?x16xf32, #kiln.dims<[s]>>) -> tensor<2x4x?x16xf32, #kiln.dims<[s]>>
  return %y : tensor<2x4x?x16xf32, #kiln.dims<[s]>>
}

// -----

// A table computed in the graph, cut to its first 32 rows and gathered
// by position ids (older transformers): the slice and the gather are
// rebuilt on the half table.
// CHECK-LABEL: func.func @gathered_table
// CHECK-SAME: (%[[X:[^:]+]]: {{.*}}, %[[F:[^:]+]]: tensor<64x8xf32>, %[[P:[^:]+]]: tensor<?x?xi64, #kiln.dims<[b, s]>>)
// CHECK-DAG: %[[COS:.+]] = kiln.cos %[[F]] : tensor<64x8xf32>
// CHECK-DAG: %[[CT:.+]] = kiln.slice %[[COS]], %{{.+}}, %{{.+}} {axes = array<i64: 0>, steps = array<i64: 1>} : (tensor<64x8xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<32x8xf32>
// CHECK-DAG: %[[C:.+]] = kiln.gather %[[CT]], %[[P]] {axis = 0 : i64} : (tensor<32x8xf32>, tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
// CHECK-DAG: %[[SIN:.+]] = kiln.sin %[[F]] : tensor<64x8xf32>
// CHECK-DAG: %[[ST:.+]] = kiln.slice %[[SIN]]
// CHECK-DAG: %[[S:.+]] = kiln.gather %[[ST]], %[[P]]
// CHECK: kiln.rotary %[[X]], %[[C]], %[[S]] {rotary_dim = 16 : i64}
func.func @gathered_table(%x: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, %f: tensor<64x8xf32>, %pos: tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> {
  %ff = kiln.concat %f, %f {axis = 1 : i64} : (tensor<64x8xf32>, tensor<64x8xf32>) -> tensor<64x16xf32>
  %cosall = kiln.cos %ff : tensor<64x16xf32>
  %k3 = kiln.constant dense<0> : tensor<1xi64>
  %k4 = kiln.constant dense<32> : tensor<1xi64>
  %cos = kiln.slice %cosall, %k3, %k4 {axes = array<i64: 0>, steps = array<i64: 1>} : (tensor<64x16xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<32x16xf32>
  %sinall = kiln.sin %ff : tensor<64x16xf32>
  %sin = kiln.slice %sinall, %k3, %k4 {axes = array<i64: 0>, steps = array<i64: 1>} : (tensor<64x16xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<32x16xf32>
  %cg = kiln.gather %cos, %pos {axis = 0 : i64} : (tensor<32x16xf32>, tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>>
  %sg = kiln.gather %sin, %pos {axis = 0 : i64} : (tensor<32x16xf32>, tensor<?x?xi64, #kiln.dims<[b, s]>>) -> tensor<?x?x16xf32, #kiln.dims<[b, s]>>
  %c = kiln.reshape %cg : tensor<?x?x16xf32, #kiln.dims<[b, s]>> -> tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>
  %s = kiln.reshape %sg : tensor<?x?x16xf32, #kiln.dims<[b, s]>> -> tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>
  %k12 = kiln.constant dense<8> : tensor<1xi64>
  %x1 = kiln.slice %x, %k3, %k12 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %k14 = kiln.constant dense<9223372036854775807> : tensor<1xi64>
  %x2 = kiln.slice %x, %k12, %k14 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %nx2 = kiln.neg %x2 : tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %rot = kiln.concat %nx2, %x1 {axis = 3 : i64} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %xc = kiln.mul %x, %c : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %rs = kiln.mul %rot, %s : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %y = kiln.add %xc, %rs : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  return %y : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
}

// -----

// Partial rotary (GPT-NeoX, Phi): concat(rope(x[:8]), x[8:]) is one
// kiln.rotary of x with rotary_dim = 8.
// CHECK-LABEL: func.func @partial
// CHECK-SAME: (%[[X:[^:]+]]: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
// CHECK: %[[Y:.+]] = kiln.rotary %[[X]], %{{.+}}, %{{.+}} {rotary_dim = 8 : i64} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x?x4xf32, #kiln.dims<[b, s]>>, tensor<?x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
// CHECK-NEXT: return %[[Y]]
func.func @partial(%x: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, %f: tensor<?x1x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> {
  %ff = kiln.concat %f, %f {axis = 3 : i64} : (tensor<?x1x?x4xf32, #kiln.dims<[b, s]>>, tensor<?x1x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>
  %c = kiln.cos %ff : tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>
  %s = kiln.sin %ff : tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>
  %k4 = kiln.constant dense<0> : tensor<1xi64>
  %k5 = kiln.constant dense<8> : tensor<1xi64>
  %xr = kiln.slice %x, %k4, %k5 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %k7 = kiln.constant dense<9223372036854775807> : tensor<1xi64>
  %xp = kiln.slice %x, %k5, %k7 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %k9 = kiln.constant dense<4> : tensor<1xi64>
  %x1 = kiln.slice %xr, %k4, %k9 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x?x4xf32, #kiln.dims<[b, s]>>
  %x2 = kiln.slice %xr, %k9, %k7 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x?x4xf32, #kiln.dims<[b, s]>>
  %nx2 = kiln.neg %x2 : tensor<?x4x?x4xf32, #kiln.dims<[b, s]>>
  %rot = kiln.concat %nx2, %x1 {axis = 3 : i64} : (tensor<?x4x?x4xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %xc = kiln.mul %xr, %c : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %rs = kiln.mul %rot, %s : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %e = kiln.add %xc, %rs : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %y = kiln.concat %e, %xp {axis = 3 : i64} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  return %y : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
}

// -----

// Interleaved pairs (GPT-J rotate_every_two, repeat_interleave of the
// angles): kiln.rotary {interleaved} on cos(f), sin(f).
// CHECK-LABEL: func.func @interleaved
// CHECK-SAME: (%[[X:[^:]+]]: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, %[[F:[^:]+]]: tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>)
// CHECK-DAG: %[[COS:.+]] = kiln.cos %[[F]] : tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>
// CHECK-DAG: %[[C:.+]] = kiln.reshape %[[COS]] : tensor<?x1x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
// CHECK-DAG: %[[SIN:.+]] = kiln.sin %[[F]] : tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>
// CHECK-DAG: %[[S:.+]] = kiln.reshape %[[SIN]] : tensor<?x1x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
// CHECK: %[[Y:.+]] = kiln.rotary %[[X]], %[[C]], %[[S]] {interleaved, rotary_dim = 16 : i64}
// CHECK-NEXT: return %[[Y]]
func.func @interleaved(%x: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, %f: tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> {
  %u = kiln.reshape %f : tensor<?x1x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x1x?x8x1xf32, #kiln.dims<[b, s]>>
  %cc = kiln.concat %u, %u {axis = 4 : i64} : (tensor<?x1x?x8x1xf32, #kiln.dims<[b, s]>>, tensor<?x1x?x8x1xf32, #kiln.dims<[b, s]>>) -> tensor<?x1x?x8x2xf32, #kiln.dims<[b, s]>>
  %fc = kiln.reshape %cc : tensor<?x1x?x8x2xf32, #kiln.dims<[b, s]>> -> tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>
  %fe = kiln.expand %u : (tensor<?x1x?x8x1xf32, #kiln.dims<[b, s]>>) -> tensor<?x1x?x8x2xf32, #kiln.dims<[b, s]>>
  %fs = kiln.reshape %fe : tensor<?x1x?x8x2xf32, #kiln.dims<[b, s]>> -> tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>
  %c = kiln.cos %fc : tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>
  %s = kiln.sin %fs : tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>
  %k8 = kiln.constant dense<0> : tensor<1xi64>
  %k9 = kiln.constant dense<9223372036854775807> : tensor<1xi64>
  %even = kiln.slice %x, %k8, %k9 {axes = array<i64: 3>, steps = array<i64: 2>} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %k11 = kiln.constant dense<1> : tensor<1xi64>
  %odd = kiln.slice %x, %k11, %k9 {axes = array<i64: 3>, steps = array<i64: 2>} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %nodd = kiln.neg %odd : tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %un = kiln.reshape %nodd : tensor<?x4x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8x1xf32, #kiln.dims<[b, s]>>
  %ue = kiln.reshape %even : tensor<?x4x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x8x1xf32, #kiln.dims<[b, s]>>
  %stack = kiln.concat %un, %ue {axis = 4 : i64} : (tensor<?x4x?x8x1xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8x1xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x8x2xf32, #kiln.dims<[b, s]>>
  %rot = kiln.reshape %stack : tensor<?x4x?x8x2xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %xc = kiln.mul %x, %c : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %rs = kiln.mul %rot, %s : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %y = kiln.add %xc, %rs : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  return %y : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
}

// -----

// x in [batch, seq, heads, d] with angles [batch, seq, 1, d] doubled by
// a tile: the rotary reads transpose(x), and the transpose that follows
// cancels against the one after the rotary.
// CHECK-LABEL: func.func @seq_heads_layout
// CHECK-SAME: (%[[X:[^:]+]]: tensor<?x?x4x16xf32, #kiln.dims<[b, s]>>, %[[F:[^:]+]]: tensor<?x?x1x8xf32, #kiln.dims<[b, s]>>)
// CHECK-DAG: %[[COS:.+]] = kiln.cos %[[F]] : tensor<?x?x1x8xf32, #kiln.dims<[b, s]>>
// CHECK-DAG: %[[C:.+]] = kiln.reshape %[[COS]] : tensor<?x?x1x8xf32, #kiln.dims<[b, s]>> -> tensor<?x?x8xf32, #kiln.dims<[b, s]>>
// CHECK-DAG: %[[XT:.+]] = kiln.transpose %[[X]] {perm = array<i64: 0, 2, 1, 3>} : tensor<?x?x4x16xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
// CHECK: %[[Y:.+]] = kiln.rotary %[[XT]], %[[C]], %{{.+}} {rotary_dim = 16 : i64}
// CHECK-NEXT: return %[[Y]]
func.func @seq_heads_layout(%x: tensor<?x?x4x16xf32, #kiln.dims<[b, s]>>, %f: tensor<?x?x1x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> {
  %k1 = kiln.constant dense<[1, 1, 1, 2]> : tensor<4xi64>
  %ff = kiln.tile %f, %k1 : (tensor<?x?x1x8xf32, #kiln.dims<[b, s]>>, tensor<4xi64>) -> tensor<?x?x1x16xf32, #kiln.dims<[b, s]>>
  %c = kiln.cos %ff : tensor<?x?x1x16xf32, #kiln.dims<[b, s]>>
  %s = kiln.sin %ff : tensor<?x?x1x16xf32, #kiln.dims<[b, s]>>
  %k5 = kiln.constant dense<0> : tensor<1xi64>
  %k6 = kiln.constant dense<8> : tensor<1xi64>
  %x1 = kiln.slice %x, %k5, %k6 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x?x4x16xf32, #kiln.dims<[b, s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x?x4x8xf32, #kiln.dims<[b, s]>>
  %k8 = kiln.constant dense<9223372036854775807> : tensor<1xi64>
  %x2 = kiln.slice %x, %k6, %k8 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x?x4x16xf32, #kiln.dims<[b, s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x?x4x8xf32, #kiln.dims<[b, s]>>
  %nx2 = kiln.neg %x2 : tensor<?x?x4x8xf32, #kiln.dims<[b, s]>>
  %rot = kiln.concat %nx2, %x1 {axis = 3 : i64} : (tensor<?x?x4x8xf32, #kiln.dims<[b, s]>>, tensor<?x?x4x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x?x4x16xf32, #kiln.dims<[b, s]>>
  %xc = kiln.mul %x, %c : (tensor<?x?x4x16xf32, #kiln.dims<[b, s]>>, tensor<?x?x1x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x?x4x16xf32, #kiln.dims<[b, s]>>
  %rs = kiln.mul %rot, %s : (tensor<?x?x4x16xf32, #kiln.dims<[b, s]>>, tensor<?x?x1x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x?x4x16xf32, #kiln.dims<[b, s]>>
  %e = kiln.add %xc, %rs : (tensor<?x?x4x16xf32, #kiln.dims<[b, s]>>, tensor<?x?x4x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x?x4x16xf32, #kiln.dims<[b, s]>>
  %y = kiln.transpose %e {perm = array<i64: 0, 2, 1, 3>} : tensor<?x?x4x16xf32, #kiln.dims<[b, s]>> -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  return %y : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
}

// -----

// Must not fire: C = cos(concat(f, g)), whose halves may differ.
// CHECK-LABEL: func.func @halves_differ
// CHECK-NOT: kiln.rotary
// CHECK: kiln.add
func.func @halves_differ(%x: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, %f: tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>, %g: tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>, %y: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, %w: tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> {
  %ff = kiln.concat %f, %g {axis = 3 : i64} : (tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>
  %c = kiln.cos %ff : tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>
  %s = kiln.sin %ff : tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>
  %k4 = kiln.constant dense<0> : tensor<1xi64>
  %k5 = kiln.constant dense<8> : tensor<1xi64>
  %x1 = kiln.slice %x, %k4, %k5 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %k7 = kiln.constant dense<9223372036854775807> : tensor<1xi64>
  %x2 = kiln.slice %x, %k5, %k7 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %nx2 = kiln.neg %x2 : tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %rot = kiln.concat %nx2, %x1 {axis = 3 : i64} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %xc = kiln.mul %x, %c : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %rs = kiln.mul %rot, %s : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %out = kiln.add %xc, %rs : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  return %out : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
}

// -----

// Must not fire: C and S are arguments (a weight, a cache): nothing
// proves their halves equal.
// CHECK-LABEL: func.func @angles_from_argument
// CHECK-NOT: kiln.rotary
// CHECK: kiln.add
func.func @angles_from_argument(%x: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, %f: tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>, %g: tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>, %y: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, %w: tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> {
  %k1 = kiln.constant dense<0> : tensor<1xi64>
  %k2 = kiln.constant dense<8> : tensor<1xi64>
  %x1 = kiln.slice %x, %k1, %k2 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %k4 = kiln.constant dense<9223372036854775807> : tensor<1xi64>
  %x2 = kiln.slice %x, %k2, %k4 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %nx2 = kiln.neg %x2 : tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %rot = kiln.concat %nx2, %x1 {axis = 3 : i64} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %xc = kiln.mul %x, %w : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %rs = kiln.mul %rot, %w : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %out = kiln.add %xc, %rs : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  return %out : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
}

// -----

// Must not fire: the rotated value is not the multiplied one.
// CHECK-LABEL: func.func @mismatched_x
// CHECK-NOT: kiln.rotary
// CHECK: kiln.add
func.func @mismatched_x(%x: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, %f: tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>, %g: tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>, %y: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, %w: tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> {
  %ff = kiln.concat %f, %f {axis = 3 : i64} : (tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>
  %c = kiln.cos %ff : tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>
  %s = kiln.sin %ff : tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>
  %k4 = kiln.constant dense<0> : tensor<1xi64>
  %k5 = kiln.constant dense<8> : tensor<1xi64>
  %x1 = kiln.slice %y, %k4, %k5 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %k7 = kiln.constant dense<9223372036854775807> : tensor<1xi64>
  %x2 = kiln.slice %y, %k5, %k7 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %nx2 = kiln.neg %x2 : tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %rot = kiln.concat %nx2, %x1 {axis = 3 : i64} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %xc = kiln.mul %x, %c : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %rs = kiln.mul %rot, %s : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %out = kiln.add %xc, %rs : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  return %out : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
}

// -----

// Must not fire: concat(x[:8], -x[8:]) is not rotate_half.
// CHECK-LABEL: func.func @not_rotate_half
// CHECK-NOT: kiln.rotary
// CHECK: kiln.add
func.func @not_rotate_half(%x: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, %f: tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>, %g: tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>, %y: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, %w: tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> {
  %ff = kiln.concat %f, %f {axis = 3 : i64} : (tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>
  %c = kiln.cos %ff : tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>
  %s = kiln.sin %ff : tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>
  %k4 = kiln.constant dense<0> : tensor<1xi64>
  %k5 = kiln.constant dense<8> : tensor<1xi64>
  %x1 = kiln.slice %x, %k4, %k5 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %k7 = kiln.constant dense<9223372036854775807> : tensor<1xi64>
  %x2 = kiln.slice %x, %k5, %k7 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %nx2 = kiln.neg %x2 : tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %rot = kiln.concat %x1, %nx2 {axis = 3 : i64} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %xc = kiln.mul %x, %c : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %rs = kiln.mul %rot, %s : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %out = kiln.add %xc, %rs : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  return %out : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
}

// -----

// Must not fire: the angles vary over the heads.
// CHECK-LABEL: func.func @per_head_angles
// CHECK-NOT: kiln.rotary
// CHECK: kiln.add
func.func @per_head_angles(%x: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, %f: tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>, %g: tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>, %y: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, %w: tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>, %h: tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> {
  %ff = kiln.concat %h, %h {axis = 3 : i64} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %c = kiln.cos %ff : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %s = kiln.sin %ff : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %k4 = kiln.constant dense<0> : tensor<1xi64>
  %k5 = kiln.constant dense<8> : tensor<1xi64>
  %x1 = kiln.slice %x, %k4, %k5 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %k7 = kiln.constant dense<9223372036854775807> : tensor<1xi64>
  %x2 = kiln.slice %x, %k5, %k7 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %nx2 = kiln.neg %x2 : tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %rot = kiln.concat %nx2, %x1 {axis = 3 : i64} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %xc = kiln.mul %x, %c : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %rs = kiln.mul %rot, %s : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %out = kiln.add %xc, %rs : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  return %out : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
}

// -----

// Must not fire: rotate_half on axis 2 (the sequence), not the last.
// CHECK-LABEL: func.func @non_last_axis
// CHECK-NOT: kiln.rotary
// CHECK: kiln.add
func.func @non_last_axis(%x: tensor<?x4x16x16xf32, #kiln.dims<[b]>>, %f: tensor<?x1x16x8xf32, #kiln.dims<[b]>>) -> tensor<?x4x16x16xf32, #kiln.dims<[b]>> {
  %ff = kiln.concat %f, %f {axis = 3 : i64} : (tensor<?x1x16x8xf32, #kiln.dims<[b]>>, tensor<?x1x16x8xf32, #kiln.dims<[b]>>) -> tensor<?x1x16x16xf32, #kiln.dims<[b]>>
  %c = kiln.cos %ff : tensor<?x1x16x16xf32, #kiln.dims<[b]>>
  %s = kiln.sin %ff : tensor<?x1x16x16xf32, #kiln.dims<[b]>>
  %k4 = kiln.constant dense<0> : tensor<1xi64>
  %k5 = kiln.constant dense<8> : tensor<1xi64>
  %x1 = kiln.slice %x, %k4, %k5 {axes = array<i64: 2>, steps = array<i64: 1>} : (tensor<?x4x16x16xf32, #kiln.dims<[b]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x8x16xf32, #kiln.dims<[b]>>
  %k7 = kiln.constant dense<16> : tensor<1xi64>
  %x2 = kiln.slice %x, %k5, %k7 {axes = array<i64: 2>, steps = array<i64: 1>} : (tensor<?x4x16x16xf32, #kiln.dims<[b]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x8x16xf32, #kiln.dims<[b]>>
  %nx2 = kiln.neg %x2 : tensor<?x4x8x16xf32, #kiln.dims<[b]>>
  %rot = kiln.concat %nx2, %x1 {axis = 2 : i64} : (tensor<?x4x8x16xf32, #kiln.dims<[b]>>, tensor<?x4x8x16xf32, #kiln.dims<[b]>>) -> tensor<?x4x16x16xf32, #kiln.dims<[b]>>
  %xc = kiln.mul %x, %c : (tensor<?x4x16x16xf32, #kiln.dims<[b]>>, tensor<?x1x16x16xf32, #kiln.dims<[b]>>) -> tensor<?x4x16x16xf32, #kiln.dims<[b]>>
  %rs = kiln.mul %rot, %s : (tensor<?x4x16x16xf32, #kiln.dims<[b]>>, tensor<?x1x16x16xf32, #kiln.dims<[b]>>) -> tensor<?x4x16x16xf32, #kiln.dims<[b]>>
  %out = kiln.add %xc, %rs : (tensor<?x4x16x16xf32, #kiln.dims<[b]>>, tensor<?x4x16x16xf32, #kiln.dims<[b]>>) -> tensor<?x4x16x16xf32, #kiln.dims<[b]>>
  return %out : tensor<?x4x16x16xf32, #kiln.dims<[b]>>
}

// -----

// The rotated piece is raised, but concat(rope(x[:8]), z[8:]) is not a
// partial rotary of one tensor: the concat stays.
// CHECK-LABEL: func.func @partial_other_tail
// CHECK: kiln.rotary %{{.+}}, %{{.+}}, %{{.+}} {rotary_dim = 8 : i64} : (tensor<?x4x?x8xf32
// CHECK: kiln.concat
func.func @partial_other_tail(%x: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, %z: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, %f: tensor<?x1x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> {
  %ff = kiln.concat %f, %f {axis = 3 : i64} : (tensor<?x1x?x4xf32, #kiln.dims<[b, s]>>, tensor<?x1x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>
  %c = kiln.cos %ff : tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>
  %s = kiln.sin %ff : tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>
  %k4 = kiln.constant dense<0> : tensor<1xi64>
  %k5 = kiln.constant dense<8> : tensor<1xi64>
  %xr = kiln.slice %x, %k4, %k5 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %k7 = kiln.constant dense<9223372036854775807> : tensor<1xi64>
  %zp = kiln.slice %z, %k5, %k7 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %k9 = kiln.constant dense<4> : tensor<1xi64>
  %x1 = kiln.slice %xr, %k4, %k9 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x?x4xf32, #kiln.dims<[b, s]>>
  %x2 = kiln.slice %xr, %k9, %k7 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x?x4xf32, #kiln.dims<[b, s]>>
  %nx2 = kiln.neg %x2 : tensor<?x4x?x4xf32, #kiln.dims<[b, s]>>
  %rot = kiln.concat %nx2, %x1 {axis = 3 : i64} : (tensor<?x4x?x4xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x4xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %xc = kiln.mul %xr, %c : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %rs = kiln.mul %rot, %s : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %e = kiln.add %xc, %rs : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %out = kiln.concat %e, %zp {axis = 3 : i64} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  return %out : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
}

// -----

// Must not fire: tile(f, [1, 1, 2, 1]) repeats the sequence axis, not
// the last: nothing says the halves of the last axis are equal.
// CHECK-LABEL: func.func @tile_other_axis
// CHECK-NOT: kiln.rotary
// CHECK: kiln.add
func.func @tile_other_axis(%x: tensor<?x4x8x16xf32, #kiln.dims<[b]>>, %f: tensor<?x1x4x16xf32, #kiln.dims<[b]>>) -> tensor<?x4x8x16xf32, #kiln.dims<[b]>> {
  %k1 = kiln.constant dense<[1, 1, 2, 1]> : tensor<4xi64>
  %ff = kiln.tile %f, %k1 : (tensor<?x1x4x16xf32, #kiln.dims<[b]>>, tensor<4xi64>) -> tensor<?x1x8x16xf32, #kiln.dims<[b]>>
  %c = kiln.cos %ff : tensor<?x1x8x16xf32, #kiln.dims<[b]>>
  %s = kiln.sin %ff : tensor<?x1x8x16xf32, #kiln.dims<[b]>>
  %k5 = kiln.constant dense<0> : tensor<1xi64>
  %k6 = kiln.constant dense<8> : tensor<1xi64>
  %x1 = kiln.slice %x, %k5, %k6 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x4x8x16xf32, #kiln.dims<[b]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x8x8xf32, #kiln.dims<[b]>>
  %k8 = kiln.constant dense<9223372036854775807> : tensor<1xi64>
  %x2 = kiln.slice %x, %k6, %k8 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x4x8x16xf32, #kiln.dims<[b]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x8x8xf32, #kiln.dims<[b]>>
  %nx2 = kiln.neg %x2 : tensor<?x4x8x8xf32, #kiln.dims<[b]>>
  %rot = kiln.concat %nx2, %x1 {axis = 3 : i64} : (tensor<?x4x8x8xf32, #kiln.dims<[b]>>, tensor<?x4x8x8xf32, #kiln.dims<[b]>>) -> tensor<?x4x8x16xf32, #kiln.dims<[b]>>
  %xc = kiln.mul %x, %c : (tensor<?x4x8x16xf32, #kiln.dims<[b]>>, tensor<?x1x8x16xf32, #kiln.dims<[b]>>) -> tensor<?x4x8x16xf32, #kiln.dims<[b]>>
  %rs = kiln.mul %rot, %s : (tensor<?x4x8x16xf32, #kiln.dims<[b]>>, tensor<?x1x8x16xf32, #kiln.dims<[b]>>) -> tensor<?x4x8x16xf32, #kiln.dims<[b]>>
  %out = kiln.add %xc, %rs : (tensor<?x4x8x16xf32, #kiln.dims<[b]>>, tensor<?x4x8x16xf32, #kiln.dims<[b]>>) -> tensor<?x4x8x16xf32, #kiln.dims<[b]>>
  return %out : tensor<?x4x8x16xf32, #kiln.dims<[b]>>
}

// -----

// Must not fire: angles repeated in pairs do not fit rotate_half, which
// needs them repeated as halves.
// CHECK-LABEL: func.func @pairs_with_halves
// CHECK-NOT: kiln.rotary
// CHECK: kiln.add
func.func @pairs_with_halves(%x: tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, %f: tensor<?x1x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>> {
  %u = kiln.reshape %f : tensor<?x1x?x8xf32, #kiln.dims<[b, s]>> -> tensor<?x1x?x8x1xf32, #kiln.dims<[b, s]>>
  %cc = kiln.concat %u, %u {axis = 4 : i64} : (tensor<?x1x?x8x1xf32, #kiln.dims<[b, s]>>, tensor<?x1x?x8x1xf32, #kiln.dims<[b, s]>>) -> tensor<?x1x?x8x2xf32, #kiln.dims<[b, s]>>
  %fc = kiln.reshape %cc : tensor<?x1x?x8x2xf32, #kiln.dims<[b, s]>> -> tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>
  %c = kiln.cos %fc : tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>
  %s = kiln.sin %fc : tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>
  %k6 = kiln.constant dense<0> : tensor<1xi64>
  %k7 = kiln.constant dense<8> : tensor<1xi64>
  %x1 = kiln.slice %x, %k6, %k7 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %k9 = kiln.constant dense<9223372036854775807> : tensor<1xi64>
  %x2 = kiln.slice %x, %k7, %k9 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %nx2 = kiln.neg %x2 : tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>
  %rot = kiln.concat %nx2, %x1 {axis = 3 : i64} : (tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x8xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %xc = kiln.mul %x, %c : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %rs = kiln.mul %rot, %s : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x1x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  %out = kiln.add %xc, %rs : (tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>, tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>) -> tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
  return %out : tensor<?x4x?x16xf32, #kiln.dims<[b, s]>>
}
